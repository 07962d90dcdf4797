package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/ldap/ldaptest"
)

// TestScheduledLDAPSource: the daemon syncs an ldap source at start and on
// its schedule; the scheduled reads after the first full one read what
// changed only.
func TestScheduledLDAPSource(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		srv := ldaptest.Start(t, ldaptest.WithLDIF(`dn: uid=jdoe,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: jdoe
cn: Jane Doe
sn: Doe
`))
		dir := t.TempDir()
		cfg := loadConfig(t, dir, `sources:
  - name: corp
    type: ldap
    url: `+srv.URL+`
    bind_dn: cn=reader,dc=example,dc=com
    bind_password: reader-password
    base_dn: ou=people,dc=example,dc=com
    schedule: "@every 1s"
`)
		h := startConfig(t, st, cfg)
		eventually(t, 30*time.Second, "the schedule made no tasks", func() bool { return len(h.finished("corp")) >= 3 })
		changed := 0
		for i, tk := range h.finished("corp") {
			if tk.Trigger != tasks.TriggerSchedule || (i == 0 && tk.Status != store.StatusSucceeded) ||
				(tk.Status != store.StatusSucceeded && tk.Status != store.StatusSkipped) {
				t.Fatalf("task %d is %s/%s: %s", tk.ID, tk.Trigger, tk.Status, tk.Errors)
			}
			if tk.RawRecord == "" {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(dir, tk.RawRecord))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), "# roster-read: changed since ") {
				changed++
				if i == 0 {
					t.Errorf("the first read was changed-only")
				}
			}
		}
		if changed == 0 {
			t.Errorf("no scheduled read was changed-only")
		}
	})
}

// TestLDAPSourceInAdminAPIAndMetrics: an ldap source is listed by the
// admin API with its type, its dry run and sync actions read the server,
// and /metrics counts its tasks.
func TestLDAPSourceInAdminAPIAndMetrics(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		srv := ldaptest.Start(t, ldaptest.WithLDIF(`dn: uid=jdoe,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: jdoe
cn: Jane Doe
sn: Doe
`))
		dir := t.TempDir()
		sum := sha256.Sum256([]byte("admin-token"))
		cfg := loadConfig(t, dir, "tokens:\n  - name: ops\n    hash: sha256:"+hex.EncodeToString(sum[:])+"\n    scopes: [admin]\n"+
			`sources:
  - name: corp
    type: ldap
    url: `+srv.URL+`
    bind_dn: cn=reader,dc=example,dc=com
    bind_password: reader-password
    base_dn: ou=people,dc=example,dc=com
`)
		h := startConfig(t, st, cfg)
		eventually(t, 30*time.Second, "no first sync", func() bool { return len(h.finished("corp")) == 1 })
		h.waitQuiet()
		do := func(method, path, body string) (int, map[string]any) {
			t.Helper()
			req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer admin-token")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			return resp.StatusCode, out
		}

		code, list := do("GET", "/api/v1/sources", "")
		items, _ := list["items"].([]any)
		if code != 200 || len(items) != 1 {
			t.Fatalf("GET /api/v1/sources = %d %v", code, list)
		}
		if src := items[0].(map[string]any); src["name"] != "corp" || src["type"] != "ldap" {
			t.Errorf("the source is listed as %v", src)
		}

		srv.Apply("dn: uid=bsmith,ou=people,dc=example,dc=com\nchangetype: add\nobjectClass: inetOrgPerson\nuid: bsmith\ncn: Bob Smith\nsn: Smith\n")
		code, dry := do("POST", "/api/v1/sources/corp/sync", `{"dry_run": true}`)
		if counts, _ := dry["counts"].(map[string]any); code != 200 || counts["created"] != 1.0 {
			t.Fatalf("dry run = %d %v", code, dry)
		}
		code, task := do("POST", "/api/v1/sources/corp/sync", "")
		id, _ := task["id"].(float64)
		if code != 202 || task["trigger"] != tasks.TriggerManual || id == 0 {
			t.Fatalf("sync = %d %v", code, task)
		}
		eventually(t, 30*time.Second, "the sync did not finish", func() bool { return len(h.finished("corp")) == 2 })
		code, task = do("GET", fmt.Sprintf("/api/v1/tasks/%d", int64(id)), "")
		if counts, _ := task["counts"].(map[string]any); code != 200 || task["status"] != store.StatusSucceeded || counts["created"] != 1.0 {
			t.Fatalf("the sync's task = %d %v", code, task)
		}

		// The daemon counts a task once its run returns, after the store
		// has it finished.
		h.waitQuiet()
		code, body := h.get("/metrics")
		for _, want := range []string{
			`roster_sync_tasks_total{source="corp",status="succeeded",trigger="schedule"} 1`,
			`roster_sync_tasks_total{source="corp",status="succeeded",trigger="manual"} 1`,
			`roster_directory_users{source="corp",state="active"} 2`,
		} {
			if code != 200 || !strings.Contains(body, want) {
				t.Errorf("/metrics (%d) lacks %s:\n%s", code, want, grepLines(body, `source="corp"`))
			}
		}
	})
}

func grepLines(text, sub string) string {
	var out []string
	for l := range strings.Lines(text) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
