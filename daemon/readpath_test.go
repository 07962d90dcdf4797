package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestReadsDoNotWaitForWriters: while a sync holds a write transaction
// open (on SQLite the database's only write lock, for as long as a large
// plan takes to apply), every route that only reads answers at once: the
// health and readiness checks, the metrics, the admin API's and the admin
// page's lists (with the session check) and SCIM reads. A read path that
// writes, as the admin page's session check did, would wait for the
// writer up to the busy timeout (30 s) on SQLite.
func TestReadsDoNotWaitForWriters(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "staff.csv"), people(5))
		admin := sha256.Sum256([]byte("admin-token"))
		reader := sha256.Sum256([]byte("reader-token"))
		cfg := loadConfig(t, dir, "tokens:\n"+
			"  - name: ops\n    hash: sha256:"+hex.EncodeToString(admin[:])+"\n    scopes: [admin]\n"+
			"  - name: okta\n    hash: sha256:"+hex.EncodeToString(reader[:])+"\n    scopes: [scim:read]\n"+
			staffConfig("watch: false"))
		h := startConfig(t, st, cfg)
		eventually(t, 30*time.Second, "no first sync", func() bool { return len(h.finished("staff")) == 1 })
		h.waitQuiet()
		cookie := adminLogin(t, h.base, "admin-token")

		release := storetest.HoldWrite(t, st)
		defer release()
		var slowest time.Duration
		var slowestPath string
		for _, rt := range []struct{ path, token string }{
			{"/healthz", ""},
			{"/readyz", ""},
			{"/metrics", ""},
			{"/api/v1/sources", "admin-token"},
			{"/api/v1/tasks", "admin-token"},
			{"/api/v1/tasks/1", "admin-token"},
			{"/admin", "cookie"},
			{"/admin/tasks", "cookie"},
			{"/admin/tasks/1", "cookie"},
			{"/admin/users?q=user1", "cookie"},
			{"/scim/v2/Users", "reader-token"},
			{`/scim/v2/Users?filter=userName%20eq%20%22user1%22`, "reader-token"},
			{"/scim/v2/Groups", "reader-token"},
		} {
			req, _ := http.NewRequest("GET", h.base+rt.path, nil)
			switch rt.token {
			case "":
			case "cookie":
				req.AddCookie(cookie)
			default:
				req.Header.Set("Authorization", "Bearer "+rt.token)
			}
			client := &http.Client{Timeout: 40 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			start := time.Now()
			resp, err := client.Do(req)
			took := time.Since(start)
			if err != nil {
				t.Errorf("GET %s during a write: %v", rt.path, err)
				continue
			}
			resp.Body.Close()
			if took > slowest {
				slowest, slowestPath = took, rt.path
			}
			if resp.StatusCode != 200 || took > time.Second {
				t.Errorf("GET %s during a write: %d after %s, want 200 within 1s", rt.path, resp.StatusCode, took)
			}
		}
		t.Logf("during the write the slowest read route was GET %s: %s", slowestPath, slowest.Round(time.Microsecond))
	})
}
