package main

// End-to-end tests of the push API (SPEC §3.3, §4.3, §5, §10) through the
// real `roster serve` binary over HTTP on 127.0.0.1, on SQLite and on
// PostgreSQL. The directory is checked as identity platforms see it,
// through the SCIM endpoint with a scim:read token, and the tasks through
// the store.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// The clear tokens of the push tests and their scopes.
const (
	tokPushAll   = "e2e-push-all-token"   // push:*
	tokPushAPI   = "e2e-push-api-token"   // push:api
	tokPushOther = "e2e-push-other-token" // push:other
	tokSCIMRead  = "e2e-scim-read-token"  // scim:read
)

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pushConfig is a config with the csv source staff (not watched), the
// push sources api (on_delete: deactivate, the default) and hr (on_delete:
// delete), the disabled push source off, the push source other (a
// push:NAME scope must name a configured source), the four tokens, and
// limits (a YAML block, may be "").
func pushConfig(w *workdir, limits string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  driver: %s\n  dsn: %s\n", w.driver, yamlQuote(w.dsn))
	b.WriteString(limits)
	b.WriteString("tokens:\n")
	for _, tk := range []struct{ name, token, scope string }{
		{"pusher", tokPushAll, "push:*"},
		{"api-pusher", tokPushAPI, "push:api"},
		{"other-pusher", tokPushOther, "push:other"},
		{"idp", tokSCIMRead, "scim:read"},
	} {
		fmt.Fprintf(&b, "  - name: %s\n    hash: %s\n    scopes: [%q]\n", tk.name, tokenHash(tk.token), tk.scope)
	}
	b.WriteString("sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n    watch: false\n" +
		"  - name: api\n    type: push\n" +
		"  - name: hr\n    type: push\n    on_delete: delete\n" +
		"  - name: off\n    type: push\n    enabled: false\n" +
		"  - name: other\n    type: push\n")
	return b.String()
}

// pushEnv is a running daemon of the push tests and a store on its
// database.
type pushEnv struct {
	w *workdir
	p *serveProc
	s *store.Store
}

// startPush starts `roster serve` on a fresh store of driver with
// pushConfig, the staff file of basePeople, and waits until it is ready.
func startPush(t *testing.T, driver, limits string) *pushEnv {
	t.Helper()
	w := newWorkdir(t, driver)
	w.write(t, "staff.csv", csvOf(basePeople()))
	w.write(t, "roster.yaml", pushConfig(w, limits))
	p := startServeProc(t, w)
	p.waitReady(t)
	s := w.open(t)
	t.Cleanup(func() { s.Close() })
	return &pushEnv{w: w, p: p, s: s}
}

// lostPayload is what a push task stuck in queued without its payload
// shows: a push accepted while a drain ran was once saved back to queued
// after the drain had applied it (TestPushAcceptRace).
const lostPayload = "a queued push task has lost its payload and can never run"

// lostQueued reports whether a queued push task has no payload any more:
// it can never run (see lostPayload).
func lostQueued(t testing.TB, s *store.Store, id int64) bool {
	t.Helper()
	_, err := s.PushPayload(context.Background(), id)
	return errors.Is(err, store.ErrNotFound)
}

// dump ends the daemon with SIGQUIT, so that the Go runtime prints every
// goroutine, and returns its output: what a stuck daemon was doing.
func (e *pushEnv) dump(t *testing.T) string {
	t.Helper()
	select {
	case <-e.p.exited:
	default:
		e.p.cmd.Process.Signal(syscall.SIGQUIT) //nolint:errcheck // it may have exited
		select {
		case <-e.p.exited:
		case <-time.After(10 * time.Second):
		}
	}
	return e.p.stderr.String()
}

// statuses shows the tasks' ids and statuses.
func statuses(tks []store.Task) string {
	var b strings.Builder
	for _, tk := range tks {
		fmt.Fprintf(&b, "%d:%s ", tk.ID, tk.Status)
	}
	return b.String()
}

// restart starts the daemon again on the same folder and config.
func (e *pushEnv) restart(t *testing.T) {
	t.Helper()
	e.p = startServeProc(t, e.w)
	e.p.waitReady(t)
}

// do sends one request with a bearer token ("" sends none) and returns
// the status, the headers and the body.
func (e *pushEnv) do(t *testing.T, token, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.p.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// pushJSON is the body of a push of records.
func pushJSON(t testing.TB, dataType string, records ...map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"dataType": dataType, "records": records})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func pushPath(source string) string { return "/api/v1/sources/" + source + "/push" }

// errorBody is the JSON error of roster's push path.
type errorBody struct {
	Error  string `json:"error"`
	Errors []struct {
		Index   int    `json:"index"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// refuse sends a push that must be refused with code and returns its JSON
// error, checking the content type.
func (e *pushEnv) refuse(t *testing.T, code int, token, source, body string) (errorBody, http.Header) {
	t.Helper()
	got, h, b := e.do(t, token, "POST", pushPath(source), body)
	if got != code {
		t.Fatalf("push to %s: %d %s, want %d; the log:\n%s", source, got, b, code, e.p.stderr)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("push to %s answered %d with Content-Type %q", source, got, ct)
	}
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error == "" {
		t.Fatalf("push to %s answered %d without a JSON error: %v %s", source, got, err, b)
	}
	return eb, h
}

// accept pushes body to source with the push:* token, wants 202 and the
// queued task with its Location, and returns the task.
func (e *pushEnv) accept(t *testing.T, source, body string) taskJSON {
	t.Helper()
	code, h, b := e.do(t, tokPushAll, "POST", pushPath(source), body)
	if code != http.StatusAccepted {
		t.Fatalf("push to %s: %d %s, want 202; the log:\n%s", source, code, b, e.p.stderr)
	}
	tk := decodeTask(t, string(b))
	if tk.Source != source || tk.Trigger != "push" {
		t.Fatalf("the 202 of a push to %s holds the task %+v", source, tk)
	}
	if loc := h.Get("Location"); loc != fmt.Sprintf("/api/v1/tasks/%d", tk.ID) {
		t.Errorf("the 202 of task %d has Location %q", tk.ID, loc)
	}
	if want := filepath.Join("log", "user-data-sync", source, fmt.Sprintf("%d.json", tk.ID)); tk.RawRecord == nil || *tk.RawRecord != want {
		t.Errorf("the 202 of task %d names the raw record %s, want %s", tk.ID, deref(tk.RawRecord), want)
	}
	return tk
}

// waitDone waits until the task has ended and returns it.
func (e *pushEnv) waitDone(t *testing.T, id int64) *store.Task {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		tk, err := e.s.GetTask(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status != store.StatusQueued && tk.Status != store.StatusRunning {
			return tk
		}
		if tk.Status == store.StatusQueued && time.Since(tk.CreatedAt) > 3*time.Second && lostQueued(t, e.s, tk.ID) {
			t.Fatalf("%s: task %d", lostPayload, tk.ID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %d is still %s after 60s; the log and the goroutines:\n%s", id, tk.Status, e.dump(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func taskCounts(t testing.TB, tk *store.Task) reconcile.Counts {
	t.Helper()
	var c reconcile.Counts
	if err := json.Unmarshal([]byte(tk.Counts), &c); err != nil {
		t.Fatalf("task %d counts %q: %v", tk.ID, tk.Counts, err)
	}
	return c
}

// applied pushes, waits for the task and wants it succeeded with counts.
func (e *pushEnv) applied(t *testing.T, source, body string, want reconcile.Counts) *store.Task {
	t.Helper()
	tk := e.waitDone(t, e.accept(t, source, body).ID)
	if got := taskCounts(t, tk); tk.Status != store.StatusSucceeded || got != want {
		t.Fatalf("push task %d: %s %+v, want succeeded %+v; errors %s", tk.ID, tk.Status, got, want, tk.Errors)
	}
	return tk
}

// tasksOf lists the tasks of a source, oldest first.
func (e *pushEnv) tasksOf(t testing.TB, source string) []store.Task {
	t.Helper()
	tks, _, err := e.s.ListTasks(context.Background(), store.TaskFilter{Source: source, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(tks)
	return tks
}

// waitStaff waits for the start sync of the staff file.
func (e *pushEnv) waitStaff(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if tks := e.tasksOf(t, "staff"); len(tks) > 0 {
			if tk := e.waitDone(t, tks[0].ID); tk.Status != store.StatusSucceeded {
				t.Fatalf("the staff sync is %s: %s", tk.Status, tk.Errors)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no staff sync after 60s; the log:\n%s", e.p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --- the directory through SCIM ---

type scimRef struct {
	Value   string `json:"value"`
	Display string `json:"display"`
	Type    string `json:"type"`
}

type scimMeta struct {
	Version string `json:"version"`
}

type scimUserJSON struct {
	ID          string    `json:"id"`
	ExternalID  string    `json:"externalId"`
	UserName    string    `json:"userName"`
	DisplayName string    `json:"displayName"`
	Active      *bool     `json:"active"`
	Groups      []scimRef `json:"groups"`
	Enterprise  *struct {
		Department string `json:"department"`
	} `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
	Meta scimMeta `json:"meta"`
}

func (u *scimUserJSON) department() string {
	if u.Enterprise == nil {
		return ""
	}
	return u.Enterprise.Department
}

type scimGroupJSON struct {
	ID          string    `json:"id"`
	ExternalID  string    `json:"externalId"`
	DisplayName string    `json:"displayName"`
	Members     []scimRef `json:"members"`
	Meta        scimMeta  `json:"meta"`
}

// scim GETs a SCIM path with the scim:read token, wants code and decodes
// the body into v (when not nil). It returns the ETag.
func (e *pushEnv) scim(t *testing.T, path string, code int, v any) string {
	t.Helper()
	got, h, b := e.do(t, tokSCIMRead, "GET", "/scim/v2"+path, "")
	if got != code {
		t.Fatalf("GET /scim/v2%s = %d %s, want %d", path, got, b, code)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET /scim/v2%s: %v\n%s", path, err, b)
		}
	}
	return h.Get("ETag")
}

// scimUsers returns the users whose externalId is ext (every source).
func (e *pushEnv) scimUsers(t *testing.T, ext string) []scimUserJSON {
	t.Helper()
	var list struct {
		TotalResults int            `json:"totalResults"`
		Resources    []scimUserJSON `json:"Resources"`
	}
	e.scim(t, "/Users?filter="+url.QueryEscape(fmt.Sprintf("externalId eq %q", ext)), 200, &list)
	if list.TotalResults != len(list.Resources) {
		t.Fatalf("users with externalId %s: totalResults %d, %d resources", ext, list.TotalResults, len(list.Resources))
	}
	return list.Resources
}

// scimUser returns the one user whose externalId is ext.
func (e *pushEnv) scimUser(t *testing.T, ext string) scimUserJSON {
	t.Helper()
	us := e.scimUsers(t, ext)
	if len(us) != 1 {
		t.Fatalf("%d users with externalId %s, want 1: %+v", len(us), ext, us)
	}
	return us[0]
}

// scimGroups returns every group by displayName.
func (e *pushEnv) scimGroups(t *testing.T) map[string]scimGroupJSON {
	t.Helper()
	var list struct {
		TotalResults int             `json:"totalResults"`
		Resources    []scimGroupJSON `json:"Resources"`
	}
	e.scim(t, "/Groups?count=1000", 200, &list)
	out := map[string]scimGroupJSON{}
	for _, g := range list.Resources {
		if _, dup := out[g.DisplayName]; dup {
			t.Fatalf("two groups are named %q", g.DisplayName)
		}
		out[g.DisplayName] = g
	}
	return out
}

func hasMember(g scimGroupJSON, id, typ string) bool {
	return slices.ContainsFunc(g.Members, func(m scimRef) bool { return m.Value == id && m.Type == typ })
}

func groupIDs(u scimUserJSON) []string {
	var ids []string
	for _, g := range u.Groups {
		ids = append(ids, g.Value)
	}
	slices.Sort(ids)
	return ids
}

// --- the tests ---

// TestPushUsersAndDepartments: users pushed before their departments wait
// for them, departments pushed child before parent wait for the parent,
// three levels deep; and the other order. Then the departments are SCIM
// groups nested as Group members, the users are members, and the
// enterprise department is the isMain or the first department's title.
func TestPushUsersAndDepartments(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "")

			// Users first, on api: the departments are unknown yet.
			e.applied(t, "api", pushJSON(t, "user",
				map[string]any{"uid": "u-1", "username": "ann", "nickname": "Ann A", "email": "ann@example.com", "departments": []any{"d-gc"}},
				map[string]any{"uid": "u-2", "username": "bob", "email": "bob@example.com",
					"departments": []any{map[string]any{"uid": "d-child"}, map[string]any{"uid": "d-root", "isMain": true}}},
				map[string]any{"uid": "u-3", "username": "cid", "email": "cid@example.com"},
			), reconcile.Counts{Created: 3})
			for _, ext := range []string{"u-1", "u-2", "u-3"} {
				if u := e.scimUser(t, ext); len(u.Groups) != 0 || u.department() != "" || u.Active == nil || !*u.Active {
					t.Fatalf("user %s before its departments exist: %+v", ext, u)
				}
			}
			// The grandchild alone (its parent is unknown), then child
			// before root in one payload.
			e.applied(t, "api", pushJSON(t, "department", map[string]any{"uid": "d-gc", "title": "Grandchild", "parentUid": "d-child"}),
				reconcile.Counts{GroupsCreated: 1})
			last := e.accept(t, "api", pushJSON(t, "department",
				map[string]any{"uid": "d-child", "title": "Child", "parentUid": "d-root"},
				map[string]any{"uid": "d-root", "title": "Root"}))
			for _, tk := range e.tasksOf(t, "api") {
				if done := e.waitDone(t, tk.ID); done.Status != store.StatusSucceeded {
					t.Fatalf("task %d: %s %s", tk.ID, done.Status, done.Errors)
				}
			}
			if c := taskCounts(t, e.waitDone(t, last.ID)); c != (reconcile.Counts{GroupsCreated: 2}) {
				t.Errorf("the push of child and root counts %+v, want 2 groups created", c)
			}
			u1, u2, u3 := e.scimUser(t, "u-1"), e.scimUser(t, "u-2"), e.scimUser(t, "u-3")
			checkTree(t, e, [3]string{"Root", "Child", "Grandchild"}, [3]string{"d-root", "d-child", "d-gc"})
			gs := e.scimGroups(t)
			root, child, gc := gs["Root"], gs["Child"], gs["Grandchild"]
			if !hasMember(gc, u1.ID, "User") || !hasMember(child, u2.ID, "User") || !hasMember(root, u2.ID, "User") {
				t.Errorf("the users are not members of their departments: root %+v, child %+v, grandchild %+v", root.Members, child.Members, gc.Members)
			}
			if hasMember(root, u1.ID, "User") || hasMember(child, u1.ID, "User") {
				t.Errorf("u-1 is a direct member of a department it does not list: root %+v, child %+v", root.Members, child.Members)
			}
			if !slices.Contains(groupIDs(u1), gc.ID) || !slices.Contains(groupIDs(u2), root.ID) || !slices.Contains(groupIDs(u2), child.ID) {
				t.Errorf("the users' groups: u-1 %+v, u-2 %+v", u1.Groups, u2.Groups)
			}
			if len(u3.Groups) != 0 {
				t.Errorf("u-3, without departments, has groups %+v", u3.Groups)
			}
			if u1.department() != "Grandchild" || u2.department() != "Root" || u3.department() != "" {
				t.Errorf("enterprise departments: u-1 %q (want Grandchild), u-2 %q (want Root, its isMain), u-3 %q (want none)",
					u1.department(), u2.department(), u3.department())
			}

			// The other order, on hr: departments first (parent first),
			// then users; without isMain the first department is the
			// enterprise department.
			e.applied(t, "hr", pushJSON(t, "department",
				map[string]any{"uid": "h-root", "title": "HR Root"},
				map[string]any{"uid": "h-child", "title": "HR Child", "parentUid": "h-root"},
				map[string]any{"uid": "h-gc", "title": "HR Grandchild", "parentUid": "h-child"}), reconcile.Counts{GroupsCreated: 3})
			e.applied(t, "hr", pushJSON(t, "user",
				map[string]any{"uid": "h-1", "username": "dora", "email": "dora@example.com", "departments": []any{"h-child", "h-root"}},
				map[string]any{"uid": "h-2", "username": "eve", "email": "eve@example.com", "departments": []any{map[string]any{"uid": "h-gc", "isOwner": true}}},
			), reconcile.Counts{Created: 2})
			checkTree(t, e, [3]string{"HR Root", "HR Child", "HR Grandchild"}, [3]string{"h-root", "h-child", "h-gc"})
			gs = e.scimGroups(t)
			h1, h2 := e.scimUser(t, "h-1"), e.scimUser(t, "h-2")
			if !hasMember(gs["HR Child"], h1.ID, "User") || !hasMember(gs["HR Root"], h1.ID, "User") || !hasMember(gs["HR Grandchild"], h2.ID, "User") {
				t.Errorf("hr members: root %+v, child %+v, grandchild %+v", gs["HR Root"].Members, gs["HR Child"].Members, gs["HR Grandchild"].Members)
			}
			if h1.department() != "HR Child" || h2.department() != "HR Grandchild" {
				t.Errorf("enterprise departments: h-1 %q (want HR Child, its first), h-2 %q (want HR Grandchild)", h1.department(), h2.department())
			}
		})
	}
}

// checkTree checks that the three groups named exist with their
// externalIds, each holding the next as a member of type Group, and no
// other group.
func checkTree(t *testing.T, e *pushEnv, names, exts [3]string) {
	t.Helper()
	gs := e.scimGroups(t)
	var ids [3]string
	for i, n := range names {
		g, ok := gs[n]
		if !ok {
			t.Fatalf("no group %q; the groups: %v", n, slices.Sorted(maps.Keys(gs)))
		}
		if g.ExternalID != exts[i] {
			t.Errorf("group %q has externalId %q, want %q", n, g.ExternalID, exts[i])
		}
		ids[i] = g.ID
	}
	for i := range 2 {
		g := gs[names[i]]
		var groups []string
		for _, m := range g.Members {
			if m.Type == "Group" {
				groups = append(groups, m.Value)
			}
		}
		if !slices.Equal(groups, []string{ids[i+1]}) {
			t.Errorf("group %q has the Group members %v, want only %q (%s); members %+v", names[i], groups, names[i+1], ids[i+1], g.Members)
		}
	}
	for _, m := range gs[names[2]].Members {
		if m.Type == "Group" {
			t.Errorf("group %q has a Group member %+v", names[2], m)
		}
	}
	// Each group is also readable by id.
	var one scimGroupJSON
	e.scim(t, "/Groups/"+ids[1], 200, &one)
	if one.DisplayName != names[1] {
		t.Errorf("GET /Groups/%s: %+v", ids[1], one)
	}
}

// TestPushDeleted: isDeleted deactivates a user (on_delete: deactivate,
// still returned by GET) or deletes it (on_delete: delete, 404), and
// removes a department: its group is gone and its members' department is
// cleared.
func TestPushDeleted(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "")
			e.applied(t, "api", pushJSON(t, "department",
				map[string]any{"uid": "d-x", "title": "Dept X"}, map[string]any{"uid": "d-y", "title": "Dept Y"}), reconcile.Counts{GroupsCreated: 2})
			e.applied(t, "api", pushJSON(t, "user",
				map[string]any{"uid": "a-1", "username": "alma", "email": "alma@example.com", "departments": []any{"d-x"}},
				map[string]any{"uid": "a-2", "username": "ben", "email": "ben@example.com", "departments": []any{"d-x", "d-y"}},
			), reconcile.Counts{Created: 2})
			e.applied(t, "hr", pushJSON(t, "user",
				map[string]any{"uid": "h-1", "username": "hugo", "email": "hugo@example.com"}), reconcile.Counts{Created: 1})
			a1, h1 := e.scimUser(t, "a-1"), e.scimUser(t, "h-1")

			// on_delete: deactivate.
			e.applied(t, "api", pushJSON(t, "user", map[string]any{"uid": "a-1", "isDeleted": true}), reconcile.Counts{Deactivated: 1})
			var got scimUserJSON
			e.scim(t, "/Users/"+a1.ID, 200, &got)
			if got.Active == nil || *got.Active || got.UserName != "alma" {
				t.Fatalf("a deactivated user: %+v", got)
			}
			if u := e.scimUser(t, "a-1"); u.ID != a1.ID {
				t.Fatalf("the filter finds %+v", u)
			}

			// on_delete: delete.
			e.applied(t, "hr", pushJSON(t, "user", map[string]any{"uid": "h-1", "isDeleted": true}), reconcile.Counts{Deleted: 1})
			e.scim(t, "/Users/"+h1.ID, 404, nil)
			if us := e.scimUsers(t, "h-1"); len(us) != 0 {
				t.Fatalf("a deleted user is still listed: %+v", us)
			}

			// A department removed: the group goes, a-2's membership and
			// enterprise department with it (cleared, not replaced by its
			// other department: no push named one).
			gx := e.scimGroups(t)["Dept X"]
			if a2 := e.scimUser(t, "a-2"); a2.department() != "Dept X" || len(a2.Groups) != 2 {
				t.Fatalf("a-2 before its department is removed: %+v", a2)
			}
			tk := e.applied(t, "api", pushJSON(t, "department", map[string]any{"uid": "d-x", "isDeleted": true}), reconcile.Counts{GroupsDeleted: 1})
			e.scim(t, "/Groups/"+gx.ID, 404, nil)
			if _, ok := e.scimGroups(t)["Dept X"]; ok {
				t.Fatalf("task %d: the removed department's group is still listed", tk.ID)
			}
			a2 := e.scimUser(t, "a-2")
			if slices.Contains(groupIDs(a2), gx.ID) || len(a2.Groups) != 1 || a2.department() != "" {
				t.Fatalf("a-2 after its department was removed: %+v (department %q, want cleared)", a2, a2.department())
			}
			if a1 := e.scimUser(t, "a-1"); len(a1.Groups) != 0 || a1.department() != "" {
				t.Fatalf("a-1 after its department was removed: %+v (department %q)", a1, a1.department())
			}
			// Only department: cleared.
			e.applied(t, "api", pushJSON(t, "department", map[string]any{"uid": "d-y", "isDeleted": true}), reconcile.Counts{GroupsDeleted: 1})
			if a2 := e.scimUser(t, "a-2"); len(a2.Groups) != 0 || a2.department() != "" {
				t.Fatalf("a-2 after both departments were removed: %+v (department %q)", a2, a2.department())
			}
		})
	}
}

// TestPushRepeated: the same payload twice changes nothing the second
// time: nothing created or updated, the versions and ETags unchanged.
func TestPushRepeated(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "")
			depts := pushJSON(t, "department",
				map[string]any{"uid": "r-child", "title": "Repeat Child", "parentUid": "r-root"},
				map[string]any{"uid": "r-root", "title": "Repeat Root"})
			users := pushJSON(t, "user",
				map[string]any{"uid": "r-1", "username": "rita", "nickname": "Rita R", "email": "rita@example.com", "phone": "+49 30 1", "departments": []any{"r-child"}},
				map[string]any{"uid": 2002, "username": "sam", "email": "sam@example.com", "departments": []any{"r-root", "r-child"}})
			e.applied(t, "api", depts, reconcile.Counts{GroupsCreated: 2})
			e.applied(t, "api", users, reconcile.Counts{Created: 2})

			type seen struct{ version, etag string }
			snapshot := func() map[string]seen {
				out := map[string]seen{}
				for _, ext := range []string{"r-1", "2002"} {
					u := e.scimUser(t, ext)
					var one scimUserJSON
					etag := e.scim(t, "/Users/"+u.ID, 200, &one)
					if one.Meta.Version == "" || etag == "" || etag != one.Meta.Version {
						t.Fatalf("user %s: meta.version %q, ETag %q", ext, one.Meta.Version, etag)
					}
					out["user "+ext] = seen{one.Meta.Version, etag}
				}
				for name, g := range e.scimGroups(t) {
					if !strings.HasPrefix(name, "Repeat ") {
						continue
					}
					var one scimGroupJSON
					etag := e.scim(t, "/Groups/"+g.ID, 200, &one)
					out["group "+name] = seen{one.Meta.Version, etag}
				}
				return out
			}
			before := snapshot()
			if len(before) != 4 {
				t.Fatalf("want 2 users and 2 groups, got %v", before)
			}
			for _, body := range []string{depts, users} {
				tk := e.waitDone(t, e.accept(t, "api", body).ID)
				c := taskCounts(t, tk)
				want := reconcile.Counts{Unchanged: 2}
				if tk.Status != store.StatusSucceeded || c != want {
					t.Errorf("the same payload again: task %d %s %+v, want succeeded with %+v; errors %s", tk.ID, tk.Status, c, want, tk.Errors)
				}
			}
			if after := snapshot(); !maps.Equal(before, after) {
				t.Errorf("the same payloads again changed versions:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// nocobaseJSON is NocoBase's answer.
type nocobaseJSON struct {
	Code    *int   `json:"code"`
	Message string `json:"message"`
	Result  []struct {
		TaskID   int64             `json:"taskId"`
		Status   string            `json:"status"`
		DataType string            `json:"dataType"`
		Counts   *reconcile.Counts `json:"counts"`
		Failed   []struct {
			Index   int    `json:"index"`
			UID     string `json:"uid"`
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"failed"`
	} `json:"result"`
}

func (e *pushEnv) nocobase(t *testing.T, token string, want int, body string) nocobaseJSON {
	t.Helper()
	code, h, b := e.do(t, token, "POST", "/api/userData:push", body)
	if code != want {
		t.Fatalf("POST /api/userData:push = %d %s, want %d; the log:\n%s", code, b, want, e.p.stderr)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("POST /api/userData:push answered with Content-Type %q", ct)
	}
	var a nocobaseJSON
	if err := json.Unmarshal(b, &a); err != nil || a.Code == nil || len(a.Result) != 1 {
		t.Fatalf("POST /api/userData:push: not NocoBase's shape (%v): %s", err, b)
	}
	return a
}

// TestPushNocoBase: NocoBase's path answers in NocoBase's shape after the
// push is applied, takes the source from "sourceName" (default api) and
// reports a failed push as a failure (422, code 422) naming the
// conflicting record by its index.
func TestPushNocoBase(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "")
			e.waitStaff(t)

			a := e.nocobase(t, tokPushAll, 200, `{"sourceName": "hr", "dataType": "user", "records": [
				{"uid": "n-1", "username": "nina", "email": "nina@example.com"},
				{"uid": "n-2", "username": "otto", "email": "otto@example.com"}]}`)
			r := a.Result[0]
			if *a.Code != 0 || a.Message != "success" || r.TaskID <= 0 || r.Status != store.StatusSucceeded ||
				r.DataType != "user" || r.Counts == nil || *r.Counts != (reconcile.Counts{Created: 2}) || r.Failed == nil || len(r.Failed) != 0 {
				t.Fatalf("a NocoBase push: %+v", a)
			}
			if tk := e.waitDone(t, r.TaskID); tk.Source != "hr" || tk.Trigger != "push" || tk.Status != store.StatusSucceeded {
				t.Fatalf("the task of the NocoBase push: %+v", tk)
			}
			if u := e.scimUser(t, "n-1"); u.UserName != "nina" {
				t.Fatalf("n-1: %+v", u)
			}

			// Without sourceName: the source api.
			a = e.nocobase(t, tokPushAll, 200, `{"dataType": "department", "records": [{"uid": "nd-1", "title": "Noco Dept"}]}`)
			r = a.Result[0]
			if *a.Code != 0 || a.Message != "success" || r.Status != store.StatusSucceeded || r.DataType != "department" ||
				r.Counts == nil || *r.Counts != (reconcile.Counts{GroupsCreated: 1}) {
				t.Fatalf("a NocoBase push without sourceName: %+v", a)
			}
			if tk := e.waitDone(t, r.TaskID); tk.Source != "api" {
				t.Fatalf("a NocoBase push without sourceName went to %s, want api", tk.Source)
			}
			if g, ok := e.scimGroups(t)["Noco Dept"]; !ok || g.ExternalID != "nd-1" {
				t.Fatalf("the department of the NocoBase push: %+v", g)
			}
			// A token for api only may push there without sourceName.
			a = e.nocobase(t, tokPushAPI, 200, `{"dataType": "user", "records": [{"uid": "n-3", "username": "paul"}]}`)
			if a.Result[0].Status != store.StatusSucceeded {
				t.Fatalf("a push:api token without sourceName: %+v", a)
			}

			// Record 1's login is held by the staff file's user05: the
			// task fails and names the record.
			// NocoBase's answer says so: a non-zero code, not success.
			a = e.nocobase(t, tokPushAll, 422, `{"sourceName": "hr", "dataType": "user", "records": [
				{"uid": "n-4", "username": "quinn"},
				{"uid": "n-5", "username": "user05"}]}`)
			r = a.Result[0]
			if *a.Code != 422 || !strings.Contains(a.Message, "failed") || r.Status != store.StatusFailed || len(r.Failed) == 0 {
				t.Fatalf("a conflicting NocoBase push: %+v", a)
			}
			if f := r.Failed[0]; f.Index != 1 || f.Field != "username" || !strings.Contains(f.Message, "records[1]") {
				t.Errorf("the failed record: %+v, want index 1, field username", f)
			}
			if len(e.scimUsers(t, "n-4")) != 0 || len(e.scimUsers(t, "n-5")) != 0 {
				t.Errorf("a failed push created users")
			}
			if u := e.scimUser(t, ext(5)); u.UserName != "user05" {
				t.Errorf("the staff user: %+v", u)
			}
		})
	}
}

// TestPushAuth: tokens need push:NAME or push:*.
func TestPushAuth(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "")
			body := pushJSON(t, "user", map[string]any{"uid": "z-1", "username": "zoe"})

			_, h := e.refuse(t, 401, "", "api", body)
			if wa := h.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer") {
				t.Errorf("401 without a token: WWW-Authenticate %q", wa)
			}
			_, h = e.refuse(t, 401, "not-a-token", "api", body)
			if wa := h.Get("WWW-Authenticate"); !strings.Contains(wa, "invalid_token") {
				t.Errorf("401 with a wrong token: WWW-Authenticate %q", wa)
			}
			for _, tok := range []string{tokPushOther, tokSCIMRead} {
				eb, h := e.refuse(t, 403, tok, "api", body)
				if wa := h.Get("WWW-Authenticate"); !strings.Contains(wa, "insufficient_scope") || !strings.Contains(wa, `scope="push:api"`) {
					t.Errorf("403: WWW-Authenticate %q", wa)
				}
				if !strings.Contains(eb.Error, "push:api") {
					t.Errorf("403: %q does not name the scope", eb.Error)
				}
			}
			// push:api is refused on hr, also on NocoBase's path.
			e.refuse(t, 403, tokPushAPI, "hr", body)
			if a := e.nocobase(t, tokPushAPI, 403, `{"sourceName": "hr", "dataType": "user", "records": []}`); *a.Code != 403 {
				t.Errorf("NocoBase path, wrong scope: %+v", a)
			}
			if a := e.nocobase(t, "", 401, `{"dataType": "user", "records": []}`); *a.Code != 401 {
				t.Errorf("NocoBase path, no token: %+v", a)
			}
			if n := len(e.tasksOf(t, "api")) + len(e.tasksOf(t, "hr")); n != 0 {
				t.Fatalf("refused pushes recorded %d tasks", n)
			}
			if us := e.scimUsers(t, "z-1"); len(us) != 0 {
				t.Fatalf("a refused push created %+v", us)
			}

			// push:api and push:* work.
			code, _, b := e.do(t, tokPushAPI, "POST", pushPath("api"), body)
			if code != 202 {
				t.Fatalf("push:api on api: %d %s", code, b)
			}
			e.waitDone(t, decodeTask(t, string(b)).ID)
			e.applied(t, "hr", pushJSON(t, "user", map[string]any{"uid": "z-1", "username": "zack"}), reconcile.Counts{Created: 1})
			if us := e.scimUsers(t, "z-1"); len(us) != 2 {
				t.Fatalf("z-1 of api and of hr: %+v", us)
			}
			for _, l := range e.p.logLines(t) {
				if s := fmt.Sprint(l); strings.Contains(s, "e2e-push-") || strings.Contains(s, tokenHash(tokPushAll)) {
					t.Fatalf("a token is in the log: %v", l)
				}
			}
		})
	}
}

// TestPushTooLarge: a payload above limits.push_body is 413 with a JSON
// error and nothing is stored.
func TestPushTooLarge(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "limits:\n  push_body: 2KiB\n")
			var recs []map[string]any
			for i := range 40 {
				recs = append(recs, map[string]any{"uid": fmt.Sprintf("big-%d", i), "username": fmt.Sprintf("big%d", i), "email": fmt.Sprintf("big%d@example.com", i)})
			}
			big := pushJSON(t, "user", recs...)
			if len(big) <= 2048 {
				t.Fatalf("the big payload is only %d bytes", len(big))
			}
			eb, _ := e.refuse(t, 413, tokPushAll, "api", big)
			if !strings.Contains(eb.Error, "push_body") {
				t.Errorf("413: %q does not name limits.push_body", eb.Error)
			}
			if a := e.nocobase(t, tokPushAll, 413, big); *a.Code != 413 {
				t.Errorf("NocoBase path, too large: %+v", a)
			}
			if tks := e.tasksOf(t, "api"); len(tks) != 0 {
				t.Fatalf("a refused payload recorded tasks %+v", tks)
			}
			if us := e.scimUsers(t, "big-0"); len(us) != 0 {
				t.Fatalf("a refused payload created %+v", us)
			}
			if files := e.w.rawFiles(t, "api"); len(files) != 0 {
				t.Fatalf("a refused payload left raw records %v", files)
			}
			// Below the limit: accepted.
			e.applied(t, "api", pushJSON(t, "user", recs[:3]...), reconcile.Counts{Created: 3})
		})
	}
}

// TestPushInvalidRecord: one bad record in the middle refuses the whole
// payload with 400 naming its index and field; nothing is stored.
func TestPushInvalidRecord(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "")
			body := pushJSON(t, "user",
				map[string]any{"uid": "v-0", "username": "val0", "email": "val0@example.com"},
				map[string]any{"uid": "v-1", "username": "val1", "email": "not-an-email"},
				map[string]any{"uid": "v-2", "username": "val2", "email": "val2@example.com"})
			eb, _ := e.refuse(t, 400, tokPushAll, "api", body)
			if len(eb.Errors) != 1 || eb.Errors[0].Index != 1 || eb.Errors[0].Field != "email" ||
				!strings.Contains(eb.Errors[0].Message, "records[1] (email)") || !strings.Contains(eb.Errors[0].Message, "not-an-email") {
				t.Fatalf("400: %+v", eb)
			}
			// NocoBase's path too, in its shape.
			a := e.nocobase(t, tokPushAll, 400, body)
			if *a.Code != 400 || len(a.Result[0].Failed) != 1 || a.Result[0].Failed[0].Index != 1 || a.Result[0].Failed[0].Field != "email" {
				t.Fatalf("NocoBase path, a bad record: %+v", a)
			}
			if tks := e.tasksOf(t, "api"); len(tks) != 0 {
				t.Fatalf("an invalid payload recorded tasks %+v", tks)
			}
			for _, ext := range []string{"v-0", "v-1", "v-2"} {
				if us := e.scimUsers(t, ext); len(us) != 0 {
					t.Fatalf("an invalid payload created %+v", us)
				}
			}
			if _, err := os.Stat(e.w.path("log/user-data-sync/api")); err == nil {
				if files := e.w.rawFiles(t, "api"); len(files) != 0 {
					t.Fatalf("an invalid payload left raw records %v", files)
				}
			}
		})
	}
}

// TestPushTooManyDepartments: a user record may list 1,000 departments;
// one with more is refused with a 400 naming the record and the field,
// and nothing is stored.
func TestPushTooManyDepartments(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "")
			depts := func(n int) []string {
				var d []string
				for i := range n {
					d = append(d, fmt.Sprintf("wide-%d", i))
				}
				return d
			}
			eb, _ := e.refuse(t, 400, tokPushAll, "api", pushJSON(t, "user",
				map[string]any{"uid": "w-0", "username": "wide0", "departments": depts(3)},
				map[string]any{"uid": "w-1", "username": "wide1", "departments": depts(1001)}))
			want := "records[1] (departments): lists 1001 departments; a user may have at most 1000"
			if len(eb.Errors) != 1 || eb.Errors[0].Index != 1 || eb.Errors[0].Field != "departments" || eb.Errors[0].Message != want {
				t.Fatalf("400: %+v, want the error %q", eb, want)
			}
			if tks := e.tasksOf(t, "api"); len(tks) != 0 {
				t.Fatalf("a refused payload recorded tasks %+v", tks)
			}
			tk := e.accept(t, "api", pushJSON(t, "user", map[string]any{"uid": "w-1", "username": "wide1", "departments": depts(1000)}))
			if done := e.waitDone(t, tk.ID); done.Status != store.StatusSucceeded {
				t.Fatalf("a user with 1,000 departments: %s %s", done.Status, done.Errors)
			}
		})
	}
}

// TestPushDisabledAndUnknown: a disabled push source refuses with 409, a
// csv source too; an unknown source is 404 to a token that could push to
// it (push:*) and 403 to one whose scopes name other sources (push:api),
// which learns nothing about which sources exist.
func TestPushDisabledAndUnknown(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "")
			body := pushJSON(t, "user", map[string]any{"uid": "o-1", "username": "olga"})
			if eb, _ := e.refuse(t, 409, tokPushAll, "off", body); !strings.Contains(eb.Error, "disabled") {
				t.Errorf("409 of a disabled source: %q", eb.Error)
			}
			if eb, _ := e.refuse(t, 409, tokPushAll, "staff", body); !strings.Contains(eb.Error, "csv") {
				t.Errorf("409 of a csv source: %q", eb.Error)
			}
			if eb, _ := e.refuse(t, 404, tokPushAll, "nope", body); !strings.Contains(eb.Error, "nope") {
				t.Errorf("404 of an unknown source: %q", eb.Error)
			}
			if eb, _ := e.refuse(t, 403, tokPushAPI, "nope", body); !strings.Contains(eb.Error, "push:nope") {
				t.Errorf("403 of an unknown source to a push:api token: %q", eb.Error)
			}
			if a := e.nocobase(t, tokPushAPI, 403, `{"sourceName": "nope", "dataType": "user", "records": []}`); *a.Code != 403 {
				t.Errorf("NocoBase path, unknown source, push:api token: %+v", a)
			}
			if a := e.nocobase(t, tokPushAll, 409, `{"sourceName": "off", "dataType": "user", "records": [{"uid": "o-1", "username": "olga"}]}`); *a.Code != 409 {
				t.Errorf("NocoBase path, disabled source: %+v", a)
			}
			if a := e.nocobase(t, tokPushAll, 404, `{"sourceName": "nope", "dataType": "user", "records": [{"uid": "o-1", "username": "olga"}]}`); *a.Code != 404 {
				t.Errorf("NocoBase path, unknown source: %+v", a)
			}
			if tks := e.tasksOf(t, "off"); len(tks) != 0 {
				t.Fatalf("a disabled source recorded tasks %+v", tks)
			}
			if us := e.scimUsers(t, "o-1"); len(us) != 0 {
				t.Fatalf("a refused push created %+v", us)
			}
		})
	}
}

// TestPushKill: a push answered 202 survives kill -9 (SPEC §10). First
// the daemon is killed right after the 202 of the last of many pushes
// (some may be running then); then while the test holds the source's lock,
// so that none of the accepted pushes can have been applied. After each
// restart every accepted push is applied exactly once and in order, and
// its raw record is kept with mode 0600.
func TestPushKill(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "")
			var accepted []taskJSON
			users := map[string]bool{} // every uid a 202 holds
			round := func(from, n int) []taskJSON {
				var tks []taskJSON
				for i := from; i < from+n; i++ {
					var recs []map[string]any
					for j := range 5 {
						uid := fmt.Sprintf("k-%03d-%d", i, j)
						users[uid] = true
						recs = append(recs, map[string]any{"uid": uid, "username": fmt.Sprintf("kill%03d%d", i, j)})
					}
					// The shared user is updated by every push: the last
					// push's nickname must win.
					recs = append(recs, map[string]any{"uid": "k-shared", "username": "shared", "nickname": fmt.Sprintf("Push %03d", i)})
					tks = append(tks, e.accept(t, "api", pushJSON(t, "user", recs...)))
				}
				return tks
			}

			// 1. Many pushes, SIGKILL right after the last 202.
			first := round(0, 30)
			if err := e.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-e.p.exited
			accepted = append(accepted, first...)
			pending := 0
			for _, tk := range first {
				if cur, err := e.s.GetTask(context.Background(), tk.ID); err == nil && cur.Status != store.StatusSucceeded {
					pending++
				}
			}
			t.Logf("%s: %d of %d accepted pushes were not applied yet at the kill", driver, pending, len(first))
			e.restart(t)
			checkPushesApplied(t, e, accepted, users, "Push 029")

			// 2. The test holds the source's lock: nothing can be
			// applied before the kill. Every push is applied by now, but
			// the daemon may still be in a drain that finds nothing (the
			// follow-up a later push's trigger queued while the first
			// drain ran) and hold the lock for a moment: wait for it
			// rather than try once (a single TryLockSource failed here
			// with "another task of this source is running").
			lockCtx, cancelLock := context.WithTimeout(context.Background(), 30*time.Second)
			unlock, err := e.s.LockSource(lockCtx, "api")
			cancelLock()
			if err != nil {
				t.Fatalf("the source's lock: %v; the log:\n%s", err, e.p.stderr)
			}
			second := round(30, 10)
			if err := e.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-e.p.exited
			accepted = append(accepted, second...)
			for _, tk := range second {
				cur, err := e.s.GetTask(context.Background(), tk.ID)
				if err != nil || cur.Status != store.StatusQueued {
					t.Fatalf("task %d under the test's lock: %+v %v", tk.ID, cur, err)
				}
			}
			for i := 30; i < 40; i++ {
				if n := e.scimUsersDB(t, fmt.Sprintf("k-%03d-0", i)); n != 0 {
					t.Fatalf("push %d was applied while the test held the source's lock", i)
				}
			}
			unlock()
			e.restart(t)
			checkPushesApplied(t, e, accepted, users, "Push 039")
			if code := e.p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
				t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, e.p.stderr)
			}
		})
	}
}

// scimUsersDB counts the users of api with an externalId, tombstones
// included, in the store (the daemon may be down).
func (e *pushEnv) scimUsersDB(t *testing.T, ext string) int {
	t.Helper()
	var n int
	if err := e.s.DB().Raw(`SELECT COUNT(*) FROM users WHERE source = ? AND external_id = ?`, "api", ext).Row().Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkPushesApplied waits until no push of api is queued or running and
// checks that every accepted push succeeded (itself or through its
// retries), that every user exists once, that the last nickname won, and
// the raw records.
func checkPushesApplied(t *testing.T, e *pushEnv, accepted []taskJSON, users map[string]bool, lastNick string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var tks []store.Task
	for {
		tks = e.tasksOf(t, "api")
		busy := slices.ContainsFunc(tks, func(tk store.Task) bool {
			if tk.Status == store.StatusQueued && time.Since(tk.CreatedAt) > 3*time.Second && lostQueued(t, e.s, tk.ID) {
				t.Fatalf("%s: task %d", lostPayload, tk.ID)
			}
			return tk.Status == store.StatusQueued || tk.Status == store.StatusRunning
		})
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pushes of api still queued or running after 60s: %v; the log and the goroutines:\n%s", statuses(tks), e.dump(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
	byID := map[int64]store.Task{}
	retries := map[int64]int64{} // retry_of -> retry
	for _, tk := range tks {
		byID[tk.ID] = tk
		if tk.RetryOf != nil {
			if prev, dup := retries[*tk.RetryOf]; dup {
				t.Errorf("task %d is retried twice: %d and %d", *tk.RetryOf, prev, tk.ID)
			}
			retries[*tk.RetryOf] = tk.ID
		}
	}
	for _, a := range accepted {
		id := a.ID
		for hops := 0; ; hops++ {
			tk, ok := byID[id]
			if !ok {
				t.Fatalf("accepted task %d (via %d) is not in the store", a.ID, id)
			}
			if tk.Status == store.StatusSucceeded {
				if id != a.ID && !strings.Contains(tk.Trigger, "retry") {
					t.Errorf("task %d retries %d with trigger %s", id, a.ID, tk.Trigger)
				}
				break
			}
			next, ok := retries[id]
			if tk.Status != store.StatusFailed || !ok || hops > 3 {
				t.Fatalf("accepted push %d ended %s at task %d without a successful retry (errors %s); the log:\n%s", a.ID, tk.Status, id, tk.Errors, e.p.stderr)
			}
			t.Logf("accepted push %d: task %d was %s (%s), retried as %d", a.ID, id, tk.Status, tk.Errors, next)
			id = next
		}
		raw := e.w.path(filepath.Join("log", "user-data-sync", "api", fmt.Sprintf("%d.json", a.ID)))
		fi, err := os.Stat(raw)
		if err != nil {
			t.Errorf("the raw record of accepted push %d: %v", a.ID, err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("the raw record %s has mode %v, want 0600", raw, fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(e.w.path("log/user-data-sync/api")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the raw record folder: %v %v, want mode 0700", fi.Mode(), err)
	}
	// Every user once, live and active.
	rows, err := e.s.DB().Raw(`SELECT external_id, COUNT(*) FROM users WHERE source = ? GROUP BY external_id`, "api").Rows()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var ext string
		var n int
		if err := rows.Scan(&ext, &n); err != nil {
			t.Fatal(err)
		}
		got[ext] = n
	}
	rows.Close()
	for uid := range users {
		if got[uid] != 1 {
			t.Errorf("user %s of an accepted push is in the store %d times", uid, got[uid])
		}
	}
	if len(got) != len(users)+1 || got["k-shared"] != 1 {
		t.Errorf("the store holds %d users of api, want %d", len(got), len(users)+1)
	}
	for _, uid := range []string{"k-000-0", "k-shared"} {
		if u := e.scimUser(t, uid); u.Active == nil || !*u.Active {
			t.Errorf("user %s: %+v", uid, u)
		}
	}
	if u := e.scimUser(t, "k-shared"); u.DisplayName != lastNick {
		t.Errorf("the shared user's displayName is %q, want %q (the last push's nickname): pushes were applied out of order", u.DisplayName, lastNick)
	}
}

// TestPushAcceptRace: pushes accepted while the source's drain runs end
// with the status of their apply, with their raw record recorded. Many
// pushes in quick succession make a drain pick up a push that is still
// being accepted.
func TestPushAcceptRace(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "")
			var ids []int64
			for i := range 60 {
				body := pushJSON(t, "user", map[string]any{"uid": fmt.Sprintf("race-%d", i), "username": fmt.Sprintf("race%d", i)},
					map[string]any{"uid": "race-shared", "username": "raceshared", "nickname": fmt.Sprintf("Race %d", i)})
				ids = append(ids, e.accept(t, "api", body).ID)
			}
			deadline := time.Now().Add(30 * time.Second)
			for _, id := range ids {
				tk, err := e.s.GetTask(context.Background(), id)
				for err == nil && (tk.Status == store.StatusQueued || tk.Status == store.StatusRunning) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
					tk, err = e.s.GetTask(context.Background(), id)
				}
				if err != nil {
					t.Fatal(err)
				}
				c := taskCounts(t, tk)
				if tk.Status != store.StatusSucceeded || c.Created+c.Updated == 0 || tk.StartedAt == nil || tk.FinishedAt == nil {
					t.Errorf("task %d: %s, counts %+v, started %v, finished %v", id, tk.Status, c, tk.StartedAt, tk.FinishedAt)
				}
				if want := filepath.Join("log", "user-data-sync", "api", fmt.Sprintf("%d.json", id)); tk.RawRecord != want {
					t.Errorf("task %d records the raw record %q, want %q", id, tk.RawRecord, want)
				}
			}
		})
	}
}

// TestPushQueueBound: while a source has limits.push_queue records
// accepted and not applied, a further push is refused with 503 and
// Retry-After and nothing of it is stored; once the queue drains, pushes
// are accepted again.
func TestPushQueueBound(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := startPush(t, driver, "limits:\n  push_queue: 3\n")
			// The test holds the source's lock: nothing is applied meanwhile.
			unlock, err := e.s.LockSource(context.Background(), "api")
			if err != nil {
				t.Fatal(err)
			}
			user := func(i int) map[string]any {
				return map[string]any{"uid": fmt.Sprintf("q-%d", i), "username": fmt.Sprintf("q%d", i)}
			}
			first := e.accept(t, "api", pushJSON(t, "user", user(1), user(2)))
			before := len(e.tasksOf(t, "api"))
			eb, h := e.refuse(t, http.StatusServiceUnavailable, tokPushAll, "api", pushJSON(t, "user", user(3), user(4)))
			if h.Get("Retry-After") == "" || !strings.Contains(eb.Error, "limits.push_queue is 3") {
				t.Fatalf("503 without Retry-After or reason: %v %+v", h, eb)
			}
			if after := len(e.tasksOf(t, "api")); after != before {
				t.Fatalf("a refused push recorded a task: %d tasks, were %d", after, before)
			}
			// One more record still fits.
			e.accept(t, "api", pushJSON(t, "user", user(5)))
			unlock()
			if tk := e.waitDone(t, first.ID); tk.Status != store.StatusSucceeded {
				t.Fatalf("first push: %s", tk.Status)
			}
			last := e.accept(t, "api", pushJSON(t, "user", user(3), user(4)))
			if tk := e.waitDone(t, last.ID); tk.Status != store.StatusSucceeded {
				t.Fatalf("push after the drain: %s", tk.Status)
			}
		})
	}
}
