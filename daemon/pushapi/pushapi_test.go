package pushapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/pushapi"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/sources/push"
)

const secret = "push-token"

// fakeTasks stores accepted pushes as tasks and ends them the way a test
// says, as the daemon's runner would.
type fakeTasks struct {
	mu    sync.Mutex
	tasks map[int64]*store.Task
	// end turns a queued task into what a test wants it to become; nil
	// leaves it queued forever.
	end func(t *store.Task)
}

func (f *fakeTasks) accept(_ context.Context, source string, _ *push.Payload) (*store.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &store.Task{ID: int64(len(f.tasks) + 1), Source: source, Trigger: "push", Status: store.StatusQueued}
	f.tasks[t.ID] = t
	return t, nil
}

func (f *fakeTasks) task(_ context.Context, id int64) (*store.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tasks[id]
	if f.end != nil && t.Status == store.StatusQueued {
		f.end(t)
	}
	c := *t
	return &c, nil
}

func serve(t *testing.T, wait config.Duration, end func(*store.Task)) *httptest.Server {
	t.Helper()
	cfg := config.Default(t.TempDir())
	cfg.Limits.PushWait = wait
	sum := sha256.Sum256([]byte(secret))
	cfg.Tokens = []config.Token{{Name: "hr", Hash: "sha256:" + hex.EncodeToString(sum[:]), Scopes: []string{"push:*"}}}
	cfg.Sources = []config.Source{{Name: "api", Type: config.TypePush, Enabled: true}}
	f := &fakeTasks{tasks: map[int64]*store.Task{}, end: end}
	srv := httptest.NewServer(pushapi.New(pushapi.Options{
		Config: func() *config.Config { return cfg },
		Accept: f.accept,
		Task:   f.task,
	}))
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	Code    *int   `json:"code"`
	Message string `json:"message"`
	Result  []struct {
		TaskID  int64  `json:"taskId"`
		Status  string `json:"status"`
		Records []struct {
			Index  int      `json:"index"`
			UID    string   `json:"uid"`
			Status string   `json:"status"`
			Errors []string `json:"errors"`
		} `json:"records"`
		Failed []push.RecordError `json:"failed"`
	} `json:"result"`
}

func post(t *testing.T, srv *httptest.Server, body string) (int, answer) {
	t.Helper()
	req, err := http.NewRequest("POST", srv.URL+"/api/userData:push", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.Code == nil || len(a.Result) != 1 {
		t.Fatalf("not NocoBase's envelope (%v): %+v", err, a)
	}
	return resp.StatusCode, a
}

const twoUsers = `{"dataType": "user", "records": [{"uid": "1", "username": "ann"}, {"uid": "2", "username": "bob"}]}`

// TestNocoBaseOutcome: NocoBase's path answers with the push's outcome:
// code 0 only when applied, the task's errors with a non-zero code when it
// failed, and the task id with a non-zero code when limits.push_wait ran out.
func TestNocoBaseOutcome(t *testing.T) {
	conflict := `[{"field":"username","message":"records[1] (username): \"bob\" is already used by a user of source \"staff\""}]`
	cases := []struct {
		name     string
		wait     time.Duration
		end      func(*store.Task)
		status   int
		code     int
		message  string
		records  []string // each record's status
		failedAt int
	}{
		{"applied", time.Second, func(t *store.Task) { t.Status, t.Counts = store.StatusSucceeded, `{"created":2}` },
			http.StatusOK, 0, "success", []string{"applied", "applied"}, -1},
		{"failed", time.Second, func(t *store.Task) { t.Status, t.Errors = store.StatusFailed, conflict },
			http.StatusUnprocessableEntity, 422, "task 1, and its task failed: records[1] (username)", []string{"not_applied", "failed"}, 1},
		{"failed for a transient reason", time.Second,
			func(t *store.Task) {
				t.Status, t.Transient, t.Errors = store.StatusFailed, true, `[{"message":"the database is unavailable"}]`
			},
			http.StatusServiceUnavailable, 503, "applied again automatically", []string{"not_applied", "not_applied"}, -1},
		{"wait ran out", 50 * time.Millisecond, nil,
			http.StatusAccepted, 202, "not applied within limits.push_wait (50ms): task 1 is queued; follow it at /api/v1/tasks/1", []string{"queued", "queued"}, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, config.Duration(c.wait), c.end)
			status, a := post(t, srv, twoUsers)
			if status != c.status || *a.Code != c.code || !strings.Contains(a.Message, c.message) {
				t.Fatalf("answer %d code %d %q, want %d code %d containing %q", status, *a.Code, a.Message, c.status, c.code, c.message)
			}
			r := a.Result[0]
			if r.TaskID != 1 {
				t.Errorf("taskId %d, want 1", r.TaskID)
			}
			if len(r.Records) != len(c.records) {
				t.Fatalf("records %+v, want %v", r.Records, c.records)
			}
			for i, want := range c.records {
				if got := r.Records[i]; got.Index != i || got.UID != []string{"1", "2"}[i] || got.Status != want {
					t.Errorf("records[%d] = %+v, want status %s", i, got, want)
				}
			}
			if c.failedAt >= 0 {
				if len(r.Failed) != 1 || r.Failed[0].Index != c.failedAt || r.Failed[0].Field != "username" ||
					len(r.Records[c.failedAt].Errors) != 1 {
					t.Errorf("failed %+v, records %+v: want record %d named", r.Failed, r.Records, c.failedAt)
				}
			}
		})
	}
}

// countingBody is a request body that counts what the handler read of it.
type countingBody struct {
	r    *strings.Reader
	read int
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *countingBody) Close() error { return nil }

// TestPushBodyOverLimit: a push announced (Content-Length) as larger than
// limits.push_body is refused with 413 before any of it is read; a chunked
// one, whose size nobody announced, is read up to the limit and refused
// with the same answer.
func TestPushBodyOverLimit(t *testing.T) {
	const limit = 1 << 10
	cfg := config.Default(t.TempDir())
	cfg.Limits.PushBody = limit
	sum := sha256.Sum256([]byte(secret))
	cfg.Tokens = []config.Token{{Name: "hr", Hash: "sha256:" + hex.EncodeToString(sum[:]), Scopes: []string{"push:*"}}}
	cfg.Sources = []config.Source{{Name: "api", Type: config.TypePush, Enabled: true}}
	f := &fakeTasks{tasks: map[int64]*store.Task{}}
	h := pushapi.New(pushapi.Options{Config: func() *config.Config { return cfg }, Accept: f.accept, Task: f.task})
	big := `{"dataType": "user", "records": [{"uid": "1", "username": "` + strings.Repeat("a", 4*limit) + `"}]}`
	for _, tc := range []struct {
		name     string
		length   int64
		readMost int
	}{
		{"announced", int64(len(big)), 0},
		{"chunked", -1, limit + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := &countingBody{r: strings.NewReader(big)}
			req := httptest.NewRequest("POST", "/api/userData:push", nil)
			req.Header.Set("Authorization", "Bearer "+secret)
			req.ContentLength = tc.length
			w := httptest.NewRecorder()
			// The daemon bounds every push body so (daemon.HandleUpload).
			req.Body = http.MaxBytesReader(w, body, limit)
			h.ServeHTTP(w, req)
			if w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413: %s", w.Code, w.Body)
			}
			if !strings.Contains(w.Body.String(), "larger than limits.push_body (1KiB)") {
				t.Errorf("answer does not name the limit: %s", w.Body)
			}
			if body.read > tc.readMost {
				t.Errorf("read %d bytes of the body, want at most %d", body.read, tc.readMost)
			}
			if len(f.tasks) != 0 {
				t.Errorf("%d pushes stored, want none", len(f.tasks))
			}
		})
	}
}
