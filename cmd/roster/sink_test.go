package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

const sinkToken = "e2e-sink-token-not-for-logs"

// sinkPeople are n people in five teams.
func sinkPeople(n int, given string) []person {
	var ps []person
	for i := range n {
		ps = append(ps, person{ID: fmt.Sprintf("%05d", i), First: given, Last: fmt.Sprintf("Family%d", i),
			Login: fmt.Sprintf("user%05d", i), Email: fmt.Sprintf("user%05d@example.com", i), Groups: fmt.Sprintf("team%d", i%5)})
	}
	return ps
}

type heldUser struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	Name     struct {
		GivenName string `json:"givenName"`
	} `json:"name"`
	Active *bool `json:"active"`
}

// scimCall sends one request with the sink token to a roster's SCIM API.
func scimCall(t *testing.T, base, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+"/scim/v2"+path, rd)
	req.Header.Set("Authorization", "Bearer "+sinkToken)
	req.Header.Set("Content-Type", "application/scim+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return res.StatusCode
}

// heldBy lists a roster's users as "userName given active".
func heldBy(t *testing.T, base string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for start := 1; ; start += 1000 {
		var page struct {
			TotalResults int        `json:"totalResults"`
			Resources    []heldUser `json:"Resources"`
		}
		if code := scimCall(t, base, "GET", fmt.Sprintf("/Users?startIndex=%d&count=1000", start), nil, &page); code != 200 {
			t.Fatalf("list users: %d", code)
		}
		for _, u := range page.Resources {
			out[u.UserName] = fmt.Sprintf("%s %v", u.Name.GivenName, u.Active == nil || *u.Active)
		}
		if start+1000 > page.TotalResults {
			return out
		}
	}
}

// converged waits until the service holds exactly the directory's users
// (those who left deactivated), and fails with the difference otherwise.
func converged(t *testing.T, what, upstream, service string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		want, got := heldBy(t, upstream), heldBy(t, service)
		diff := 0
		var first string
		for k, v := range want {
			if got[k] != v {
				if diff++; first == "" {
					first = fmt.Sprintf("%s is %q on the service, %q in the directory", k, got[k], v)
				}
			}
		}
		for k, v := range got {
			// Users who left the directory stay, deactivated
			// (on_remove: deactivate).
			if _, ok := want[k]; !ok && !strings.HasSuffix(v, " false") {
				if diff++; first == "" {
					first = k + " is active on the service only"
				}
			}
		}
		if diff == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d users differ, such as: %s", what, diff, first)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// partly reports whether fewer than n of the service's users have the
// given name given yet.
func partly(held map[string]string, n int, given string) bool {
	have := 0
	for _, v := range held {
		if strings.HasPrefix(v, given+" ") {
			have++
		}
	}
	return have < n
}

// TestSinkToAnotherRoster provisions a second `roster serve` (SQLite, a
// writable scim source) from a roster on each store: a service that
// already holds half of 1,000 users, roster killed with SIGKILL in the
// middle of the first delivery and of a later one, updates and removals
// upstream; each time the service ends up equal to the directory, without
// duplicates, and no log holds the token.
func TestSinkToAnotherRoster(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			sum := sha256.Sum256([]byte(sinkToken))
			hash := "sha256:" + hex.EncodeToString(sum[:])

			svcDir := newWorkdir(t, store.SQLite)
			svcDir.write(t, "roster.yaml", fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  dsn: %s\n"+
				"tokens:\n  - {name: up, hash: '%s', scopes: [scim:read, scim:write]}\nsources:\n  - {name: idp, type: scim}\n",
				yamlQuote(svcDir.dsn), hash))
			svc := startServeProc(t, svcDir)
			svc.waitLog(t, time.Minute, func(l map[string]any) bool { return l["msg"] == "roster is running" })
			people := sinkPeople(1000, "Given")
			for _, p := range people[:500] {
				if code := scimCall(t, svc.base, "POST", "/Users", map[string]any{"userName": p.Login,
					"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "name": map[string]string{"givenName": "Old"}}, nil); code != 201 {
					t.Fatalf("seed the service: %d", code)
				}
			}

			up := newWorkdir(t, driver)
			up.write(t, "staff.csv", csvOf(people))
			up.write(t, "roster.yaml", serveConfig(up, "")+fmt.Sprintf(
				"tokens:\n  - {name: check, hash: '%s', scopes: [scim:read]}\n"+
					"sinks:\n  - name: svc\n    url: %s/scim/v2\n    auth: {bearer: %s}\n    interval: 200ms\n    limits: {rate: 400/s, concurrency: 2}\n",
				hash, svc.base, sinkToken))
			proc := startServeProc(t, up)
			// Killed in the middle of the first delivery.
			deadline := time.Now().Add(2 * time.Minute)
			for len(heldBy(t, svc.base)) < 700 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			proc.signalAndWait(t, syscall.SIGKILL, 10*time.Second)
			if !partly(heldBy(t, svc.base), 1000, "Given") {
				t.Fatal("the first delivery was over before roster was killed: the test proves nothing")
			}
			logs := proc.stderr.String()
			proc = startServeProc(t, up)
			proc.waitLog(t, time.Minute, func(l map[string]any) bool { return l["msg"] == "roster is running" })
			converged(t, "after a kill during the first delivery", proc.base, svc.base)
			if n := len(heldBy(t, svc.base)); n != 1000 {
				t.Fatalf("the service holds %d users, want 1000", n)
			}

			// Updates and removals, killed again while they are delivered.
			changed := sinkPeople(1000, "Renamed")[:950]
			up.write(t, "staff.csv", csvOf(changed))
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if strings.HasPrefix(heldBy(t, svc.base)["user00000"], "Renamed") {
					break
				}
			}
			proc.signalAndWait(t, syscall.SIGKILL, 10*time.Second)
			if !partly(heldBy(t, svc.base), 950, "Renamed") {
				t.Fatal("the delivery of the changes was over before roster was killed: the test proves nothing")
			}
			logs += proc.stderr.String()
			proc = startServeProc(t, up)
			proc.waitLog(t, time.Minute, func(l map[string]any) bool { return l["msg"] == "roster is running" })
			converged(t, "after a kill during updates", proc.base, svc.base)
			held := heldBy(t, svc.base)
			if held["user00999"] != "Given false" || held["user00001"] != "Renamed true" {
				t.Fatalf("user00999 is %q, user00001 %q on the service", held["user00999"], held["user00001"])
			}
			logs += proc.stderr.String()
			proc.signalAndWait(t, syscall.SIGTERM, 30*time.Second)
			if strings.Contains(logs, sinkToken) {
				t.Fatal("a log holds the sink's token")
			}

			// The operator's view, once roster has stopped.
			var rows []struct {
				Name      string  `json:"name"`
				State     string  `json:"state"`
				Queue     int64   `json:"queue"`
				Lag       float64 `json:"lag_seconds"`
				LastRunAt *string `json:"last_run_at"`
			}
			if err := json.Unmarshal([]byte(up.want(t, 0, "sinks", "--json").stdout), &rows); err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].Name != "svc" || rows[0].State != "ok" || rows[0].Queue != 0 || rows[0].Lag != 0 || rows[0].LastRunAt == nil {
				t.Fatalf("roster sinks: %+v", rows)
			}
			if out := up.want(t, 0, "sink", "svc").stdout; !strings.Contains(out, "state:      ok") || !strings.Contains(out, "queue:      0 changes") {
				t.Fatalf("roster sink svc:\n%s", out)
			}
			up.want(t, 4, "sink", "nosuch")
			if r := up.want(t, 4, "sink", "svc", "--approve"); !strings.Contains(r.stderr, "holds no removals") {
				t.Fatalf("approving a sink that holds nothing:\n%s", r)
			}
			if out := up.want(t, 0, "sinks").stdout; strings.Contains(out, sinkToken) || !strings.Contains(out, "svc") {
				t.Fatalf("roster sinks:\n%s", out)
			}
		})
	}
}
