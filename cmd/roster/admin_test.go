package main

// End-to-end test of the admin API (/api/v1) of the real `roster serve`
// binary, on SQLite and on PostgreSQL, driven with plain net/http as an
// operator's curl would.

import (
	"context"
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

// apiCall sends one request to the admin API with a bearer token and
// returns the status and the body, checking that the answer is JSON.
func apiCall(t *testing.T, p *serveProc, token, method, path, body string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" || !json.Valid(b) {
		t.Fatalf("%s %s: %d with Content-Type %q, not JSON: %s", method, path, resp.StatusCode, ct, b)
	}
	return resp.StatusCode, b
}

func TestAdminAPI(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			w := newWorkdir(t, driver)
			const token = "e2e-admin-token"
			hash := strings.TrimSpace(runRoster(t, w.dir, token, nil, "token").stdout)
			if !strings.HasPrefix(hash, "sha256:") {
				t.Fatalf("roster token printed %q", hash)
			}
			people := basePeople()
			w.write(t, "staff.csv", csvOf(people))
			w.write(t, "roster.yaml", fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\n"+
				"store:\n  driver: %s\n  dsn: %s\ntokens:\n  - name: ops\n    hash: %s\n    scopes: [admin]\n"+
				"sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n    watch: false\n  - name: api\n    type: push\n",
				w.driver, yamlQuote(w.dsn), hash))
			p := startServeProc(t, w)
			p.waitReady(t)
			call := func(want int, method, path, body string) []byte {
				t.Helper()
				code, b := apiCall(t, p, token, method, path, body)
				if code != want {
					t.Fatalf("%s %s = %d %s, want %d; the log:\n%s", method, path, code, b, want, p.stderr)
				}
				return b
			}
			waitTask := func(id int64) taskJSON {
				t.Helper()
				deadline := time.Now().Add(60 * time.Second)
				for {
					tk := decodeTask(t, string(call(200, "GET", fmt.Sprintf("/api/v1/tasks/%d", id), "")))
					if tk.Status != store.StatusRunning {
						return tk
					}
					if time.Now().After(deadline) {
						t.Fatalf("task %d still runs after 60s; the log:\n%s", id, p.stderr)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}

			if code, _ := apiCall(t, p, "wrong-token", "GET", "/api/v1/sources", ""); code != 401 {
				t.Fatalf("a wrong token: %d", code)
			}

			// The daemon syncs the never-synced source at start.
			first := waitTask(waitFirstTask(t, p, call))
			wantTask(t, first, "staff", store.StatusSucceeded, countsJSON{Created: 20})

			var sources struct {
				Items []struct {
					Name, Type, State string
					Running           bool
					LastTask          *taskJSON `json:"last_task"`
				}
				Total int
			}
			if err := json.Unmarshal(call(200, "GET", "/api/v1/sources", ""), &sources); err != nil {
				t.Fatal(err)
			}
			if sources.Total != 2 || sources.Items[0].Name != "staff" || sources.Items[0].State != "succeeded" ||
				sources.Items[0].LastTask == nil || sources.Items[0].LastTask.ID != first.ID ||
				sources.Items[1].Name != "api" || sources.Items[1].State != "never synced" {
				t.Fatalf("sources: %+v", sources)
			}

			// An invalid file: 400 with every error, the file stays.
			bad := csvOf(people) + "99,No,Login,,bad@,,\n" + "01001,Dup,Id,dup,,,\n"
			var refused struct {
				Error  string
				Errors []fieldErrorJSON
			}
			if err := json.Unmarshal(call(400, "PUT", "/api/v1/sources/staff/file", bad), &refused); err != nil {
				t.Fatal(err)
			}
			if refused.Error != "the file is invalid: 3 errors; nothing was changed" || len(refused.Errors) != 3 {
				t.Fatalf("an invalid upload: %+v", refused)
			}
			for _, e := range refused.Errors {
				checkFieldError(t, e)
			}
			if w.read(t, "staff.csv") != csvOf(people) {
				t.Fatal("an invalid upload changed the file")
			}

			// A valid file replaces it and is synced.
			people = append(without(people, ext(20)), person{ID: ext(21), First: "New", Last: "Person", Login: "user21"})
			uploaded := decodeTask(t, string(call(202, "PUT", "/api/v1/sources/staff/file", csvOf(people))))
			if uploaded.Trigger != "manual" || w.read(t, "staff.csv") != csvOf(people) {
				t.Fatalf("the upload: %+v", uploaded)
			}
			wantTask(t, waitTask(uploaded.ID), "staff", store.StatusSucceeded, countsJSON{Created: 1, Unchanged: 19, Deactivated: 1})

			// An operator deactivates a user.
			user := w.state(t, "staff").Users[ext(5)]
			var patched map[string]any
			if err := json.Unmarshal(call(200, "PATCH", "/api/v1/users/"+user.ID, `{"active": false}`), &patched); err != nil {
				t.Fatal(err)
			}
			if patched["id"] != user.ID || patched["userName"] != "user05" || patched["source"] != "staff" ||
				patched["active"] != false || patched["state"] != "inactive" {
				t.Fatalf("PATCH: %v", patched)
			}
			if u := w.state(t, "staff").Users[ext(5)]; u.Active || u.StateReason != "admin" {
				t.Fatalf("the user after PATCH: %+v", u)
			}

			// A forced sync keeps the operator's choice.
			forced := decodeTask(t, string(call(202, "POST", "/api/v1/sources/staff/sync?force=true", "")))
			wantTask(t, waitTask(forced.ID), "staff", store.StatusSucceeded, countsJSON{Unchanged: 20})
			if u := w.state(t, "staff").Users[ext(5)]; u.Active {
				t.Fatal("the sync re-activated the user an operator deactivated")
			}

			var list struct {
				Items         []json.RawMessage
				Total         int
				Limit, Offset int
			}
			if err := json.Unmarshal(call(200, "GET", "/api/v1/tasks?source=staff&limit=2", ""), &list); err != nil {
				t.Fatal(err)
			}
			if list.Total != 3 || len(list.Items) != 2 || list.Limit != 2 || list.Offset != 0 {
				t.Fatalf("tasks: %+v", list)
			}
			if tk := decodeTask(t, string(list.Items[0])); tk.ID != forced.ID {
				t.Fatalf("the newest task is %d, want %d", tk.ID, forced.ID)
			}

			if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
				t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
			}
			for _, l := range p.logLines(t) {
				if strings.Contains(fmt.Sprint(l), token) {
					t.Fatalf("the token is in the log: %v", l)
				}
			}
		})
	}
}

// waitFirstTask waits until GET /api/v1/tasks lists a task and returns
// its id.
func waitFirstTask(t *testing.T, p *serveProc, call func(int, string, string, string) []byte) int64 {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list struct{ Items []taskJSON }
		if err := json.Unmarshal(call(200, "GET", "/api/v1/tasks?source=staff", ""), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) > 0 {
			return list.Items[len(list.Items)-1].ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("no task after 60s; the log:\n%s", p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
