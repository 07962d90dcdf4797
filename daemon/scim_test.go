package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestSCIMIsMounted: the daemon serves the synced directory over SCIM with
// the configured tokens, and counts the requests in its metrics.
func TestSCIMIsMounted(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "staff.csv"), people(3))
		sum := sha256.Sum256([]byte("okta-token"))
		cfg := loadConfig(t, dir, "tokens:\n  - name: okta\n    hash: sha256:"+hex.EncodeToString(sum[:])+
			"\n    scopes: [scim:read]\n"+staffConfig("watch: false"))
		h := startConfig(t, st, cfg)
		eventually(t, 30*time.Second, "no first sync", func() bool { return len(h.finished("staff")) == 1 })

		get := func(path, token string) (int, string, string) {
			t.Helper()
			req, _ := http.NewRequest("GET", h.base+path, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
		}
		if code, _, _ := get("/scim/v2/Users", ""); code != 401 {
			t.Fatalf("GET /scim/v2/Users without a token = %d, want 401", code)
		}
		code, ct, body := get("/scim/v2/Users?filter="+url.QueryEscape(`userName eq "USER2"`), "okta-token")
		var list struct {
			TotalResults int `json:"totalResults"`
			Resources    []struct {
				UserName string `json:"userName"`
				Active   bool   `json:"active"`
			} `json:"Resources"`
		}
		if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 || ct != "application/scim+json" {
			t.Fatalf("filter by userName = %d %q %s (%v)", code, ct, body, err)
		}
		if list.TotalResults != 1 || len(list.Resources) != 1 || list.Resources[0].UserName != "user2" || !list.Resources[0].Active {
			t.Fatalf("filter by userName found %+v", list)
		}
		if _, metrics := h.get("/metrics"); !strings.Contains(metrics, `roster_scim_requests_total{code="200",method="GET",resource="Users"} 1`) ||
			!strings.Contains(metrics, `roster_scim_requests_total{code="401",method="GET",resource="Users"} 1`) ||
			!strings.Contains(metrics, "roster_scim_request_duration_seconds_bucket") {
			t.Fatalf("SCIM requests are not counted:\n%s", metrics)
		}
	})
}

// TestSCIMWritesGoToTheSCIMSource: with a source of type scim configured,
// a scim:write token provisions users owned by it, and the synced csv
// users stay read-only.
func TestSCIMWritesGoToTheSCIMSource(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "staff.csv"), people(2))
		sum := sha256.Sum256([]byte("entra-token"))
		cfg := loadConfig(t, dir, "tokens:\n  - name: entra\n    hash: sha256:"+hex.EncodeToString(sum[:])+
			"\n    scopes: [scim:write]\n"+staffConfig("watch: false")+"  - name: entra\n    type: scim\n")
		h := startConfig(t, st, cfg)
		eventually(t, 30*time.Second, "no first sync", func() bool { return len(h.finished("staff")) == 1 })

		send := func(method, path, body string) (int, map[string]any) {
			t.Helper()
			req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer entra-token")
			req.Header.Set("Content-Type", "application/scim+json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			return resp.StatusCode, m
		}
		code, m := send("POST", "/scim/v2/Users", `{"userName":"new.hire","externalId":"n1","password":"long-enough"}`)
		if code != 201 {
			t.Fatalf("POST /Users = %d %v", code, m)
		}
		var u store.User
		if err := st.DB().Where("user_name_key = ?", "new.hire").Take(&u).Error; err != nil || u.Source != "entra" {
			t.Fatalf("created user: %+v %v", u, err)
		}
		var csvUser store.User
		if err := st.DB().Where("user_name_key = ?", "user1").Take(&csvUser).Error; err != nil {
			t.Fatal(err)
		}
		code, m = send("PUT", "/scim/v2/Users/"+csvUser.ID, `{"userName":"user1"}`)
		if d, _ := m["detail"].(string); code != 400 || m["scimType"] != "mutability" || !strings.Contains(d, `source "staff"`) {
			t.Fatalf("PUT on a csv user = %d %v", code, m)
		}
	})
}
