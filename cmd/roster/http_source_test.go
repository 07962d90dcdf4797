package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestHTTPSourceServe: `roster serve` pulls an http source from an API on
// 127.0.0.1 at start and on an operator's request, three pages by Link
// header behind an OAuth2 token, and `roster sync` does the same from the
// shell; a failing upstream fails the task and changes nothing.
func TestHTTPSourceServe(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			var people atomic.Int32
			people.Store(6)
			var failing atomic.Bool
			mux := http.NewServeMux()
			mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
				if id, secret, ok := r.BasicAuth(); !ok || id != "roster" || secret != "s3cret" {
					http.Error(w, "bad client", http.StatusUnauthorized)
					return
				}
				fmt.Fprint(w, `{"access_token":"tok-1","token_type":"Bearer","expires_in":3600}`)
			})
			mux.HandleFunc("GET /people", func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tok-1" {
					http.Error(w, "no", http.StatusUnauthorized)
					return
				}
				if failing.Load() {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				var page int
				fmt.Sscan(r.URL.Query().Get("page"), &page)
				n := int(people.Load())
				var recs []map[string]any
				for i := page * 2; i < min(page*2+2, n); i++ {
					recs = append(recs, map[string]any{"id": i + 1, "login": fmt.Sprintf("h%d", i+1), "first": "Hanna", "last": fmt.Sprint(i + 1)})
				}
				if page*2+2 < n {
					w.Header().Set("Link", fmt.Sprintf(`</people?page=%d>; rel="next"`, page+1))
				}
				json.NewEncoder(w).Encode(recs)
			})
			up := httptest.NewServer(mux)
			defer up.Close()

			w := newWorkdir(t, driver)
			const token = "e2e-http-admin"
			hash := strings.TrimSpace(runRoster(t, w.dir, token, nil, "token").stdout)
			w.write(t, "staff.csv", "s1,Sam,Smith,sam,,,\n")
			w.write(t, "roster.yaml", serveConfig(w, fmt.Sprintf(`  - name: hr
    type: http
    url: %s/people?page=0
    auth: {oauth2: {token_url: %s/token, client_id: roster, client_secret: s3cret}}
    map: {externalId: /id, userName: /login, givenName: /first, familyName: /last}
    retries: 0
    orphans: delete
`, up.URL, up.URL))+fmt.Sprintf("tokens:\n  - {name: ops, hash: %q, scopes: [admin]}\n", hash))
			p := startServeProc(t, w)
			first := waitHTTPTask(t, w, func(tk taskJSON) bool { return tk.Status == "succeeded" })
			if first.Counts.Created != 6 || first.Trigger != "schedule" {
				t.Fatalf("first sync: %+v", first)
			}

			// An operator's sync while the upstream fails: failed, nothing changed.
			failing.Store(true)
			people.Store(4)
			if code, body := apiCall(t, p, token, "POST", "/api/v1/sources/hr/sync", ""); code != http.StatusAccepted {
				t.Fatalf("sync: %d %s", code, body)
			}
			failed := waitHTTPTask(t, w, func(tk taskJSON) bool { return tk.Status == "failed" })
			if len(failed.Errors) == 0 || !strings.Contains(failed.Errors[0].Message, "503") {
				t.Fatalf("failed task: %+v", failed)
			}
			if n := w.state(t, "hr"); len(n.Users) != 6 {
				t.Fatalf("a failed fetch changed the directory: %d users", len(n.Users))
			}
			if code := p.signalAndWait(t, 15, 30*time.Second); code != 0 {
				t.Fatalf("SIGTERM: %d", code)
			}

			// From the shell, once the upstream is back: two orphans deleted
			// (under the safety valve's five).
			failing.Store(false)
			tk := w.task(t, 0, "sync", "hr", "--json")
			if tk.Status != "succeeded" || tk.Counts.Deleted != 2 {
				t.Fatalf("roster sync hr: %+v", tk)
			}
			if tk = w.task(t, 0, "sync", "hr", "--json"); tk.Status != "skipped" {
				t.Fatalf("unchanged upstream: %+v", tk)
			}
		})
	}
}

func waitHTTPTask(t *testing.T, w *workdir, match func(taskJSON) bool) taskJSON {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, tk := range w.tasks(t, "--source", "hr") {
			if match(tk) {
				return tk
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no such task of hr; tasks: %+v", w.tasks(t))
	return taskJSON{}
}
