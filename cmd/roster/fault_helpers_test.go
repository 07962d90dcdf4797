package main

// Helpers of the fault and load suite (fault_test.go, load_test.go): a
// config with a csv, a push and a scim source, an HTTP client that times
// every request, checks of SCIM answers, the bookkeeping of acknowledged
// pushes and SCIM writes, and the daemon's memory and CPU from /proc.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
)

// The clear tokens of the fault and load suite.
const (
	fltTokPush  = "fault-push-token"  // push:*
	fltTokSCIM  = "fault-scim-token"  // scim:read and scim:write
	fltTokAdmin = "fault-admin-token" // admin
)

const (
	scimListSchema  = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	scimUserSchema  = "urn:ietf:params:scim:schemas:core:2.0:User"
	scimErrorSchema = "urn:ietf:params:scim:api:messages:2.0:Error"
	scimPatchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// faultSoak is ROSTER_SOAK (any Go duration), 0 when unset.
func faultSoak(t testing.TB) time.Duration {
	t.Helper()
	v := os.Getenv("ROSTER_SOAK")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("ROSTER_SOAK=%q is not a positive Go duration (e.g. 1h): %v", v, err)
	}
	return d
}

// faultConfig is a config with the csv source staff (staffExtra are its
// further keys; watch is off unless staffExtra turns it on), the push
// source api, the scim source entra and the three tokens; head is put
// first (e.g. tasks: or limits: blocks).
func faultConfig(w *workdir, head, staffExtra string) string {
	var b strings.Builder
	b.WriteString(head)
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  driver: %s\n  dsn: %s\n", w.driver, yamlQuote(w.dsn))
	b.WriteString("tokens:\n")
	for _, tk := range []struct{ name, token, scopes string }{
		{"pusher", fltTokPush, `["push:*"]`},
		{"idp", fltTokSCIM, `["scim:read", "scim:write"]`},
		{"ops", fltTokAdmin, `["admin"]`},
	} {
		fmt.Fprintf(&b, "  - name: %s\n    hash: %s\n    scopes: %s\n", tk.name, tokenHash(tk.token), tk.scopes)
	}
	b.WriteString("sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n")
	if !strings.Contains(staffExtra, "watch:") {
		b.WriteString("    watch: false\n")
	}
	b.WriteString(staffExtra)
	b.WriteString("  - name: api\n    type: push\n  - name: entra\n    type: scim\n")
	return b.String()
}

// fltResp is one answer, or the transport error instead.
type fltResp struct {
	code   int
	header http.Header
	body   []byte
	err    error
	took   time.Duration
}

func (r fltResp) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	b := string(r.body)
	if len(b) > 400 {
		b = b[:400] + "..."
	}
	return fmt.Sprintf("%d %s", r.code, b)
}

// fltClient talks to one running daemon.
type fltClient struct {
	base string
	hc   *http.Client
}

func newFltClient(base string, timeout time.Duration) *fltClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &fltClient{base: base, hc: &http.Client{Transport: tr, Timeout: timeout}}
}

func (c *fltClient) close() { c.hc.CloseIdleConnections() }

// do sends a request with a bearer token and times it.
func (c *fltClient) do(method, path, token, ctype, body string) fltResp {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		return fltResp{err: err}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	began := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return fltResp{err: err, took: time.Since(began)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return fltResp{code: resp.StatusCode, header: resp.Header, body: b, err: err, took: time.Since(began)}
}

func (c *fltClient) scim(method, path, body string) fltResp {
	ct := ""
	if body != "" {
		ct = "application/scim+json"
	}
	return c.do(method, "/scim/v2"+path, fltTokSCIM, ct, body)
}

// checkSCIMBody checks a SCIM answer's shape: Content-Type
// application/scim+json, a JSON body whose schemas hold want, and for an
// error the status as a string equal to the code (RFC 7644 §3.12). A 204
// has no body.
func checkSCIMBody(r fltResp, want string) error {
	if r.err != nil {
		return r.err
	}
	if r.code == http.StatusNoContent {
		if len(r.body) != 0 {
			return fmt.Errorf("204 with a body %q", r.body)
		}
		return nil
	}
	if r.code >= 400 {
		want = scimErrorSchema
	}
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || mt != "application/scim+json" {
		return fmt.Errorf("%d with Content-Type %q, want application/scim+json", r.code, r.header.Get("Content-Type"))
	}
	var m struct {
		Schemas []string `json:"schemas"`
		Status  any      `json:"status"`
		Detail  string   `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &m); err != nil {
		return fmt.Errorf("%d with a body that is not JSON: %v: %q", r.code, err, r.body)
	}
	if !slices.Contains(m.Schemas, want) {
		return fmt.Errorf("%d with schemas %v, want %s: %s", r.code, m.Schemas, want, r)
	}
	if want == scimErrorSchema {
		if s, ok := m.Status.(string); !ok || s != strconv.Itoa(r.code) {
			return fmt.Errorf("%d with an error whose status is %#v, want the string %q: %s", r.code, m.Status, strconv.Itoa(r.code), r)
		}
		if m.Detail == "" {
			return fmt.Errorf("%d error without a detail: %s", r.code, r)
		}
	}
	return nil
}

// --- pushes ---

// fltPushUser is one pushed user, with the values it must end up with.
type fltPushUser struct{ UID, UserName, Email, Nick string }

// fltPushBody is a push of n users whose uids start with prefix (unique
// per push).
func fltPushBody(prefix string, n int) (string, []fltPushUser) {
	users := make([]fltPushUser, n)
	recs := make([]map[string]any, n)
	for i := range users {
		u := fltPushUser{UID: fmt.Sprintf("%s-%04d", prefix, i), UserName: fmt.Sprintf("%s-%04d", prefix, i),
			Email: fmt.Sprintf("%s-%04d@example.com", prefix, i), Nick: fmt.Sprintf("Nick %s %d", prefix, i)}
		users[i] = u
		recs[i] = map[string]any{"uid": u.UID, "username": u.UserName, "email": u.Email, "nickname": u.Nick}
	}
	b, _ := json.Marshal(map[string]any{"dataType": "user", "records": recs})
	return string(b), users
}

// fltPushes records every push answered 202 and the pushes whose answer
// was lost (they may or may not have been stored).
type fltPushes struct {
	mu       sync.Mutex
	accepted map[int64][]fltPushUser
	unknown  [][]fltPushUser
	refused  [][]fltPushUser // answered, but not 202: must not be applied
}

func newFltPushes() *fltPushes { return &fltPushes{accepted: map[int64][]fltPushUser{}} }

// send pushes users and records the outcome; it returns the answer.
func (ps *fltPushes) send(c *fltClient, body string, users []fltPushUser) fltResp {
	r := c.do("POST", pushPath("api"), fltTokPush, "application/json", body)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	switch {
	case r.err != nil:
		ps.unknown = append(ps.unknown, users)
	case r.code == http.StatusAccepted:
		var tk struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(r.body, &tk); err != nil || tk.ID == 0 {
			r.err = fmt.Errorf("a 202 without a task id: %q", r.body)
			ps.unknown = append(ps.unknown, users)
			return r
		}
		ps.accepted[tk.ID] = users
	default:
		ps.refused = append(ps.refused, users)
	}
	return r
}

// tasksOf lists every task of source in the store, by id.
func fltTasks(t testing.TB, s *store.Store, source string) map[int64]store.Task {
	t.Helper()
	tks, _, err := s.ListTasks(context.Background(), store.TaskFilter{Source: source, Limit: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]store.Task{}
	for _, tk := range tks {
		out[tk.ID] = tk
	}
	return out
}

// waitQuiet waits until no task of source is queued or running.
func waitQuiet(t testing.TB, s *store.Store, source string, timeout time.Duration, log func() string) map[int64]store.Task {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		tks := fltTasks(t, s, source)
		var busy []string
		for _, tk := range tks {
			if tk.Status == store.StatusQueued || tk.Status == store.StatusRunning {
				busy = append(busy, fmt.Sprintf("%d (%s, %s, retry_of %s, created %s)", tk.ID, tk.Status, tk.Trigger, deref64(tk.RetryOf), tk.CreatedAt.Format(time.StampMilli)))
			}
		}
		if len(busy) == 0 {
			return tks
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks of %s still queued or running after %s: %s; the log:\n%s", source, timeout, strings.Join(busy, ", "), log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verifyPushes checks that every push answered 202 was applied exactly
// once: its task, or a retry of it, succeeded, and its users exist once
// with the pushed values. Pushes whose answer was lost may be applied or
// not, but correctly; pushes refused must not be. It returns how many
// accepted pushes needed a retry.
func verifyPushes(t testing.TB, w *workdir, s *store.Store, ps *fltPushes) (retried int) {
	t.Helper()
	tks := fltTasks(t, s, "api")
	retries := map[int64][]int64{}
	for _, tk := range tks {
		if tk.RetryOf != nil {
			retries[*tk.RetryOf] = append(retries[*tk.RetryOf], tk.ID)
		}
	}
	var succeeded func(id int64, depth int) bool
	succeeded = func(id int64, depth int) bool {
		tk, ok := tks[id]
		if !ok || depth > 20 {
			return false
		}
		if tk.Status == store.StatusSucceeded {
			return true
		}
		return slices.ContainsFunc(retries[id], func(r int64) bool { return succeeded(r, depth+1) })
	}
	st := w.state(t, "api")
	checkUser := func(u fltPushUser, what string) bool {
		got, ok := st.Users[u.UID]
		if !ok {
			return false
		}
		if got.UserName != u.UserName || got.Email != u.Email || got.State != reconcile.StateActive {
			t.Errorf("%s user %s: %+v, want userName %s, e-mail %s, active", what, u.UID, got, u.UserName, u.Email)
		}
		return true
	}
	for id, users := range ps.accepted {
		if tks[id].Status != store.StatusSucceeded {
			retried++
		}
		if !succeeded(id, 0) {
			t.Errorf("push task %d was answered 202, but neither it nor a retry of it succeeded: %+v (retries %v)", id, tks[id], retries[id])
		}
		for _, u := range users {
			if !checkUser(u, "202-pushed") {
				t.Errorf("user %s of push task %d (answered 202) is not in the directory", u.UID, id)
			}
		}
	}
	for _, users := range ps.unknown {
		for _, u := range users {
			checkUser(u, "maybe-pushed")
		}
	}
	for _, users := range ps.refused {
		for _, u := range users {
			if _, ok := st.Users[u.UID]; ok {
				t.Errorf("user %s of a push that was NOT answered 202 is in the directory", u.UID)
			}
		}
	}
	logins := map[string]string{}
	for e, u := range st.Users {
		k := strings.ToLower(u.UserName)
		if other, dup := logins[k]; dup {
			t.Errorf("users %s and %s of api share the login %q", other, e, u.UserName)
		}
		logins[k] = e
	}
	return retried
}

// --- SCIM writes ---

// fltSCIMUser is what acknowledged SCIM writes say of one user.
type fltSCIMUser struct {
	ID, UserName string
	Display      string // last acknowledged displayName
	Pending      string // a displayName sent whose answer was lost
	Deleted      bool   // a DELETE was answered 204
	MaybeDeleted bool   // a DELETE whose answer was lost
}

// fltSCIMWrites records every SCIM write answered 2xx.
type fltSCIMWrites struct {
	mu      sync.Mutex
	users   map[string]*fltSCIMUser // by userName
	unknown []string                // creates whose answer was lost
	acked   int
}

func newFltSCIMWrites() *fltSCIMWrites { return &fltSCIMWrites{users: map[string]*fltSCIMUser{}} }

func scimCreateBody(login, display string) string {
	b, _ := json.Marshal(map[string]any{"schemas": []string{scimUserSchema}, "userName": login, "externalId": login,
		"displayName": display, "emails": []map[string]any{{"value": login + "@example.com", "type": "work", "primary": true}}})
	return string(b)
}

func scimPatchBody(display string) string {
	b, _ := json.Marshal(map[string]any{"schemas": []string{scimPatchSchema},
		"Operations": []map[string]any{{"op": "replace", "path": "displayName", "value": display}}})
	return string(b)
}

// create POSTs a user; it returns the answer and, on 201, the user.
func (sw *fltSCIMWrites) create(c *fltClient, login string) (fltResp, *fltSCIMUser) {
	display := "Created " + login
	r := c.scim("POST", "/Users", scimCreateBody(login, display))
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if r.err != nil {
		sw.unknown = append(sw.unknown, login)
		return r, nil
	}
	if r.code != http.StatusCreated {
		return r, nil
	}
	var u struct {
		ID       string `json:"id"`
		UserName string `json:"userName"`
	}
	if err := json.Unmarshal(r.body, &u); err != nil || u.ID == "" || u.UserName != login {
		r.err = fmt.Errorf("a 201 without the user: %q", r.body)
		return r, nil
	}
	su := &fltSCIMUser{ID: u.ID, UserName: login, Display: display}
	sw.users[login] = su
	sw.acked++
	return r, su
}

func (sw *fltSCIMWrites) patch(c *fltClient, u *fltSCIMUser, display string) fltResp {
	sw.mu.Lock()
	u.Pending = display
	sw.mu.Unlock()
	r := c.scim("PATCH", "/Users/"+u.ID, scimPatchBody(display))
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if r.err == nil && r.code/100 == 2 {
		u.Display, u.Pending = display, ""
		sw.acked++
	} else if r.err == nil {
		u.Pending = "" // answered and refused: not applied
	}
	return r
}

func (sw *fltSCIMWrites) delete(c *fltClient, u *fltSCIMUser) fltResp {
	sw.mu.Lock()
	u.MaybeDeleted = true
	sw.mu.Unlock()
	r := c.scim("DELETE", "/Users/"+u.ID, "")
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if r.err == nil && r.code == http.StatusNoContent {
		u.Deleted = true
		sw.acked++
	} else if r.err == nil {
		u.MaybeDeleted = false
	}
	return r
}

// verify checks the directory of the scim source against every
// acknowledged write: created users exist once with the last acknowledged
// (or the lost, later) displayName, deleted ones are gone (tombstones
// are not served: GET answers 404), no userName twice.
func (sw *fltSCIMWrites) verify(t testing.TB, w *workdir, c *fltClient) {
	t.Helper()
	st := w.state(t, "entra")
	live := 0
	for login, u := range sw.users {
		got, ok := st.Users[login]
		switch {
		case !ok:
			t.Errorf("SCIM user %s (%s) was created with 201 but is not in the directory", login, u.ID)
		case got.ID != u.ID:
			t.Errorf("SCIM user %s has id %s, but its 201 said %s", login, got.ID, u.ID)
		case u.Deleted:
			if got.State != reconcile.StateDeleted {
				t.Errorf("SCIM user %s was deleted with 204 but is %s", login, got.State)
			}
		case got.State == reconcile.StateDeleted && !u.MaybeDeleted:
			t.Errorf("SCIM user %s is deleted though no DELETE was sent", login)
		case got.State != reconcile.StateDeleted && got.DisplayName != u.Display && (u.Pending == "" || got.DisplayName != u.Pending):
			t.Errorf("SCIM user %s has displayName %q, want the acknowledged %q (or the unacknowledged %q)", login, got.DisplayName, u.Display, u.Pending)
		default:
			if got.State != reconcile.StateDeleted {
				live++
			}
		}
	}
	// A sample of the deleted ones through SCIM: 404 with an error body.
	n := 0
	for _, u := range sw.users {
		if !u.Deleted || n >= 20 || c == nil {
			continue
		}
		n++
		r := c.scim("GET", "/Users/"+u.ID, "")
		if r.err != nil || r.code != http.StatusNotFound {
			t.Errorf("GET of the deleted SCIM user %s: %s, want 404", u.ID, r)
		} else if err := checkSCIMBody(r, scimErrorSchema); err != nil {
			t.Errorf("GET of the deleted SCIM user %s: %v", u.ID, err)
		}
	}
	logins := map[string]bool{}
	for _, u := range st.Users {
		k := strings.ToLower(u.UserName)
		if logins[k] {
			t.Errorf("two users of entra are named %q", u.UserName)
		}
		logins[k] = true
	}
	_ = live
}

// --- figures ---

// latencies collects the durations and outcomes of one kind of request.
type latencies struct {
	mu     sync.Mutex
	took   []time.Duration
	errors int
	bad    []string // first problems seen
}

func (l *latencies) add(d time.Duration, failed bool, problem string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.took = append(l.took, d)
	if failed {
		l.errors++
	}
	if problem != "" && len(l.bad) < 5 {
		l.bad = append(l.bad, problem)
	}
}

func (l *latencies) summary(elapsed time.Duration) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.took)
	if n == 0 {
		return "no requests"
	}
	s := slices.Clone(l.took)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration { return s[min(n-1, int(p*float64(n)))].Round(10 * time.Microsecond) }
	return fmt.Sprintf("%6d req %7.1f req/s  errors %5.2f%%  p50 %-9s p95 %-9s p99 %-9s max %s",
		n, float64(n)/elapsed.Seconds(), 100*float64(l.errors)/float64(n), q(0.50), q(0.95), q(0.99), s[n-1].Round(time.Millisecond))
}

// procFigures reads a process's peak resident memory (VmHWM, KiB) and
// the CPU time it used (user + system).
func procFigures(pid int) (hwmKiB int64, cpu time.Duration) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				hwmKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// The fields after the command name, which is in parentheses.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 13 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				cpu = time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
			}
		}
	}
	return hwmKiB, cpu
}

// randDur is a random duration in [from, to).
func randDur(from, to time.Duration) time.Duration {
	return from + time.Duration(rand.Int64N(int64(to-from)))
}
