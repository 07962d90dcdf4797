package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestSinkDryRunCommand runs `roster sink NAME --dry-run` on each store
// against a service that records writes: it lists the creates of a first
// contact with their bodies (no password, though the sink asks for them),
// sends no write, keeps the passwords for the real run, prints JSON with
// --json, and exits 1 when the service cannot be read, 4 for an unknown
// sink.
func TestSinkDryRunCommand(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			var writes, reads atomic.Int64
			svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer "+sinkToken {
					http.Error(w, "no token", http.StatusUnauthorized)
					return
				}
				if r.Method != http.MethodGet {
					writes.Add(1)
					http.Error(w, "a dry run must not write", http.StatusForbidden)
					return
				}
				reads.Add(1)
				if strings.HasSuffix(r.URL.Path, "/ServiceProviderConfig") {
					io.WriteString(w, `{"patch":{"supported":true}}`)
					return
				}
				io.WriteString(w, `{"totalResults":0,"Resources":[]}`)
			}))
			defer svc.Close()

			people := sinkPeople(3, "Given")
			for i := range people {
				people[i].Password = fmt.Sprintf("Dry-run-secret-%d-xyz", i)
			}
			up := newWorkdir(t, driver)
			up.write(t, "staff.csv", csvOf(people))
			up.write(t, "key", hex.EncodeToString(make([]byte, 32)))
			config := func(url string) string {
				return fmt.Sprintf("log:\n  dir: log\nstore:\n  driver: %s\n  dsn: %s\nsecrets: {key: '${file:key}'}\n"+
					"sources:\n  - {name: staff, type: csv, path: staff.csv}\n"+
					"sinks:\n  - {name: svc, url: '%s/scim/v2', auth: {bearer: %s}, passwords: true}\n",
					driver, yamlQuote(up.dsn), url, sinkToken)
			}
			up.write(t, "roster.yaml", config(svc.URL))
			up.want(t, 0, "sync", "staff")

			out := up.want(t, 0, "sink", "svc", "--dry-run").stdout
			for _, p := range people {
				if strings.Contains(out, p.Password) {
					t.Fatalf("the dry run shows a password:\n%s", out)
				}
				if !strings.Contains(out, `"userName":"`+p.Login+`"`) {
					t.Fatalf("the dry run does not show the creation of %s:\n%s", p.Login, out)
				}
			}
			if !strings.Contains(out, "first contact") || strings.Count(out, "create     POST /Users ") != 3 ||
				!strings.Contains(out, "would create 6, adopt 0, update 0, deactivate 0, delete 0") {
				t.Fatalf("roster sink svc --dry-run:\n%s", out)
			}
			var res struct {
				Sink    string `json:"sink"`
				Compare bool   `json:"compare"`
				Planned []struct {
					Action, Method, Path string
					Body                 map[string]any
				} `json:"planned"`
			}
			if err := json.Unmarshal([]byte(up.want(t, 0, "sink", "svc", "--dry-run", "--json").stdout), &res); err != nil {
				t.Fatal(err)
			}
			if res.Sink != "svc" || !res.Compare || len(res.Planned) != 6 || res.Planned[0].Action != "create" || res.Planned[0].Body["password"] != nil {
				t.Fatalf("--json: %+v", res)
			}
			if writes.Load() != 0 || reads.Load() == 0 {
				t.Fatalf("the dry runs sent %d writes and %d reads", writes.Load(), reads.Load())
			}
			st := up.open(t)
			kept, err := st.InitialPasswordsKept(context.Background())
			st.Close()
			if err != nil || kept != 3 {
				t.Fatalf("after the dry runs %d passwords are kept (%v), want 3 for the real run", kept, err)
			}

			up.want(t, 4, "sink", "nosuch", "--dry-run")
			up.want(t, 2, "sink", "svc", "--dry-run", "--approve")
			svc.Close()
			if r := up.want(t, 1, "sink", "svc", "--dry-run"); strings.Contains(r.stderr+r.stdout, sinkToken) {
				t.Fatalf("the error shows the token:\n%s", r)
			}
		})
	}
}
