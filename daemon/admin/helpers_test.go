package admin_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon"
	"github.com/rosterd/roster/daemon/admin"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
)

// The tokens of the test configuration.
const (
	adminToken  = "admin-secret-token"
	readerToken = "reader-secret-token"
)

func hashOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// people returns n CSV rows, people 1..n.
func people(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%05d,Given%d,Family%d,user%d,user%d@example.com,Team,\n", i, i, i, i, i)
	}
	return b.String()
}

// configYAML is the test configuration: the csv source staff (20 people
// synced before the daemon starts), the push source api and the disabled
// csv source off; the tokens admin (scope admin) and reader (scim:read);
// the custom integer attribute floor, for extra_columns: [floor].
func configYAML(extra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
log:
  dir: log
limits:
  request_body: 1KiB
  push_body: 8KiB
attributes:
  custom: [{name: floor, type: integer}]
tokens:
  - name: admin
    hash: %s
    scopes: [admin]
  - name: reader
    hash: %s
    scopes: [scim:read]
sources:
  - name: staff
    type: csv
    path: staff.csv
    watch: false
%s  - name: api
    type: push
  - name: off
    type: csv
    path: off.csv
    enabled: false
`, hashOf(adminToken), hashOf(readerToken), extra)
}

// env is a running daemon on a real store with the admin handler served
// by httptest.
type env struct {
	t        *testing.T
	dir      string
	st       *store.Store
	d        *daemon.Daemon
	srv      *httptest.Server
	mu       sync.Mutex
	finished []int64 // tasks reported to Options.Finished
}

func testLogger() *slog.Logger {
	if os.Getenv("ROSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newEnv writes the configuration (extra: more settings of staff) and 20
// people, syncs staff once, then starts the daemon and the handler.
func newEnv(t *testing.T, st *store.Store, extra string, tune ...func(*admin.Options)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir(), st: st}
	e.write("staff.csv", people(20))
	e.write("roster.yaml", configYAML(extra))
	cfg, err := config.Load(e.path("roster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SyncSources(ctx, []string{"staff", "api", "off"}, []string{"csv", "push", "csv"}); err != nil {
		t.Fatal(err)
	}
	res, err := e.runner(cfg).Sync(ctx, "staff", tasks.Options{Trigger: tasks.TriggerManual})
	if err != nil || res.Task.Status != store.StatusSucceeded {
		t.Fatalf("first sync: %v %+v", err, res)
	}

	d, err := daemon.New(cfg, st, testLogger(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	d.Drain = 10 * time.Second
	e.d = d
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("the daemon did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not get ready within 30s")
	}

	// A slow test machine must not turn answers into {"queued": true}.
	o := admin.Options{Store: st, Config: d.Config, Queue: d, Log: testLogger(), StartWait: 30 * time.Second, Finished: func(t *store.Task) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.finished = append(e.finished, t.ID)
	}}
	for _, f := range tune {
		f(&o)
	}
	e.srv = httptest.NewServer(admin.New(o))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) path(name string) string { return filepath.Join(e.dir, name) }

func (e *env) write(name, content string) {
	e.t.Helper()
	if err := os.WriteFile(e.path(name), []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) read(name string) string {
	e.t.Helper()
	b, err := os.ReadFile(e.path(name))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func (e *env) runner(cfg *config.Config) *tasks.Runner {
	if cfg == nil {
		cfg = e.d.Config()
	}
	return &tasks.Runner{Store: e.st, Config: cfg, Log: testLogger()}
}

// sync runs a task of staff directly, as `roster sync` would.
func (e *env) sync(want string) *store.Task {
	e.t.Helper()
	res, err := e.runner(nil).Sync(context.Background(), "staff", tasks.Options{Trigger: tasks.TriggerManual})
	if err != nil {
		e.t.Fatal(err)
	}
	if res.Task.Status != want {
		e.t.Fatalf("sync: task %d is %s, want %s (errors %s)", res.Task.ID, res.Task.Status, want, res.Task.Errors)
	}
	return res.Task
}

// response is an answer of the handler.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.code, r.body) }

// json decodes the body into a map.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("the body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// decode decodes the body into v.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode the body: %v\n%s", err, r.body)
	}
}

// errorMessage is the "error" of an error answer.
func (r response) errorMessage(t *testing.T) string {
	t.Helper()
	msg, _ := r.json(t)["error"].(string)
	if msg == "" {
		t.Fatalf("the answer has no error message: %s", r)
	}
	return msg
}

// do sends a request with the token ("" for none) and checks what every
// answer must be: JSON.
func (e *env) do(method, path, token string, body io.Reader) response {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	if method != http.MethodHead && !json.Valid(b) {
		e.t.Errorf("%s %s: the body is not JSON: %s", method, path, b)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// admin sends a request with the admin token and fails unless the answer
// has the status want.
func (e *env) admin(want int, method, path string, body io.Reader) response {
	e.t.Helper()
	r := e.do(method, path, adminToken, body)
	if r.code != want {
		e.t.Fatalf("%s %s = %s, want %d", method, path, r, want)
	}
	return r
}

// task is a task as the API shows it (SPEC §8.1).
type task struct {
	ID        int64  `json:"id"`
	Source    string `json:"source"`
	Trigger   string `json:"trigger"`
	Status    string `json:"status"`
	Counts    map[string]int
	Warnings  []string `json:"warnings"`
	Errors    []fieldError
	RetryOf   *int64  `json:"retry_of"`
	RawRecord *string `json:"raw_record"`
	Hold      string  `json:"hold"`
	Removals  []struct {
		Action string `json:"action"`
		After  struct {
			ID         string `json:"id"`
			ExternalID string `json:"externalId"`
		} `json:"after"`
	} `json:"removals"`
}

type fieldError struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// taskKeys are the keys every task object has (SPEC §8.1).
var taskKeys = []string{"id", "source", "trigger", "status", "created_at", "started_at", "finished_at", "counts",
	"warnings", "errors", "retry_of", "raw_record"}

// decodeTask decodes a task object and checks that it has every key.
func decodeTask(t *testing.T, raw []byte) task {
	t.Helper()
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatalf("not a task object: %v\n%s", err, raw)
	}
	for _, k := range taskKeys {
		if _, ok := keys[k]; !ok {
			t.Errorf("the task lacks %q: %s", k, raw)
		}
	}
	var v task
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// waitTask polls GET /api/v1/tasks/{id} until the task has ended.
func (e *env) waitTask(id int64) task {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tk := decodeTask(e.t, e.admin(200, "GET", fmt.Sprintf("/api/v1/tasks/%d", id), nil).body)
		if tk.Status != store.StatusRunning && tk.Status != store.StatusQueued {
			return tk
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %d is still %s after 30s", id, tk.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tasks lists the tasks of staff, newest first.
func (e *env) tasks() []task {
	e.t.Helper()
	var list struct{ Items []json.RawMessage }
	e.admin(200, "GET", "/api/v1/tasks?source=staff&limit=500", nil).decode(e.t, &list)
	out := make([]task, len(list.Items))
	for i, raw := range list.Items {
		out[i] = decodeTask(e.t, raw)
	}
	return out
}

// user reads a user by externalId from the store.
func (e *env) user(source, ext string) store.User {
	e.t.Helper()
	var u store.User
	if err := e.st.DB().Where("source = ? AND external_id = ?", source, ext).Take(&u).Error; err != nil {
		e.t.Fatalf("user %s of %s: %v", ext, source, err)
	}
	return u
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
