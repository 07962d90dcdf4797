package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/push"
)

func TestHealthReadinessMetricsAndBodyLimits(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "staff.csv"), people(3))
		cfg := loadConfig(t, dir, "limits:\n  request_body: 1KiB\n  push_body: 4KiB\n"+staffConfig("watch: false")+
			"  - name: api\n    type: push\n")
		d, reg := newDaemon(t, st, cfg)
		echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
				return
			}
			w.Write(b)
		})
		d.Handle("POST /echo", echo)
		d.HandleUpload("POST /upload", echo)
		h := start(t, d, st, reg)

		if code, body := h.get("/healthz"); code != 200 || body != "ok\n" {
			t.Fatalf("/healthz = %d %q", code, body)
		}
		code, body := h.get("/readyz")
		if code != 200 || !strings.Contains(body, `"status":"ready"`) {
			t.Fatalf("/readyz = %d %s", code, body)
		}

		// The first sync of a source that never synced runs at start.
		eventually(t, 30*time.Second, "no first sync", func() bool { return len(h.finished("staff")) == 1 })
		h.waitQuiet()
		if got := statuses(h.tasks("staff")); len(got) != 1 || got[0] != "schedule/succeeded" {
			t.Fatalf("tasks = %v, want the first sync only", got)
		}
		if got := h.tasks("api"); len(got) != 0 {
			t.Fatalf("the push source got tasks: %v", statuses(got))
		}

		code, body = h.get("/metrics")
		if code != 200 {
			t.Fatalf("/metrics = %d\n%s", code, body)
		}
		for _, want := range []string{
			`roster_sync_tasks_total{source="staff",status="succeeded",trigger="schedule"} 1`,
			`roster_sync_task_duration_seconds_count{source="staff"} 1`,
			`roster_sync_last_success_timestamp_seconds{source="staff"} `,
			`roster_sync_records_total{action="created",source="staff"} 3`,
			`roster_sync_running{source="staff"} 0`,
			`roster_directory_users{source="staff",state="active"} 3`,
			`roster_directory_users{source="staff",state="inactive"} 0`,
			`roster_directory_users{source="api",state="active"} 0`,
			`roster_directory_groups{source="staff"} 1`,
			`roster_sync_tasks_waiting{source="staff",status="held"} 0`,
			`roster_sync_tasks_waiting{source="api",status="queued"} 0`,
			`roster_config_last_reload_successful 1`,
			`roster_build_info{goversion="go`,
			`go_goroutines `,
			`process_cpu_seconds_total `,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}

		post := func(path string, n int) int {
			t.Helper()
			resp, err := http.Post(h.base+path, "text/plain", strings.NewReader(strings.Repeat("x", n)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for _, c := range []struct {
			path string
			n    int
			want int
		}{
			{"/echo", 1024, 200}, {"/echo", 1025, 413}, {"/upload", 4096, 200}, {"/upload", 4097, 413},
		} {
			if got := post(c.path, c.n); got != c.want {
				t.Errorf("POST %s with %d bytes = %d, want %d", c.path, c.n, got, c.want)
			}
		}

		// Not ready once the database is gone, saying so without the
		// driver's words, which name the driver, host, user and database.
		st.Close()
		code, body = h.get("/readyz")
		var reason struct{ Status, Reason string }
		if err := json.Unmarshal([]byte(body), &reason); err != nil || code != 503 || reason.Status != "not ready" ||
			reason.Reason != "database unreachable" {
			t.Fatalf("/readyz with the store closed = %d %s (%v)", code, body, err)
		}
		for _, detail := range []string{st.Driver(), "sql:", "closed"} {
			if strings.Contains(body, detail) {
				t.Errorf("/readyz shows %q to anyone: %s", detail, body)
			}
		}
		if code, _ := h.get("/healthz"); code != 200 {
			t.Fatalf("/healthz with the store closed = %d, want 200: the process still runs", code)
		}
	})
}

func TestTriggerWhileBusyQueuesExactlyOneFollowUp(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "staff.csv"), people(3))
		cfg := loadConfig(t, dir, staffConfig("watch: false")+"  - name: api\n    type: push\n")
		if err := st.SyncSources(ctx, []string{"staff"}, []string{"csv"}); err != nil {
			t.Fatal(err)
		}
		// The test holds the source, as another process's task would: the
		// daemon's first sync starts and waits for it.
		unlock, err := st.TryLockSource(ctx, "staff")
		if err != nil {
			t.Fatal(err)
		}
		h := startConfig(t, st, cfg)
		q := h.queue("staff")
		eventually(t, 10*time.Second, "the first sync did not start", func() bool {
			q.mu.Lock()
			defer q.mu.Unlock()
			return q.busy
		})
		for _, trigger := range []string{tasks.TriggerManual, tasks.TriggerWatch, tasks.TriggerSchedule, tasks.TriggerManual} {
			if err := h.d.Trigger("staff", trigger); err != nil {
				t.Fatalf("Trigger(%s): %v", trigger, err)
			}
		}
		q.mu.Lock()
		next := q.next
		q.mu.Unlock()
		if next == nil || next.trigger != tasks.TriggerManual {
			t.Fatalf("the follow-up is %+v, want the first trigger that came while busy (manual)", next)
		}
		unlock()
		h.waitQuiet()
		got := statuses(h.tasks("staff"))
		if want := []string{"schedule/succeeded", "manual/skipped"}; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("tasks = %v, want %v: one task and exactly one follow-up", got, want)
		}

		if err := h.d.Trigger("api", tasks.TriggerManual); !errors.Is(err, tasks.ErrUsage) {
			t.Errorf("Trigger of a push source = %v, want a usage error", err)
		}
		if err := h.d.Trigger("nope", tasks.TriggerManual); !errors.Is(err, tasks.ErrUsage) {
			t.Errorf("Trigger of an unknown source = %v, want a usage error", err)
		}
	})
}

// flaky is a task runner whose first fail calls (Sync or Retry) end in a
// task failed for a transient reason; then it runs the real runner.
type flaky struct {
	real  *tasks.Runner
	st    *store.Store
	fail  int
	calls chan time.Time
}

func (f *flaky) Recover(ctx context.Context) ([]int64, error) { return f.real.Recover(ctx) }

func (f *flaky) Sync(ctx context.Context, source string, opt tasks.Options) (*tasks.Result, error) {
	f.calls <- time.Now()
	if f.fail > 0 {
		f.fail--
		return f.failed(ctx, source, opt.Trigger, nil, 0)
	}
	return f.real.Sync(ctx, source, opt)
}

func (f *flaky) Retry(ctx context.Context, id int64, trigger string) (*tasks.Result, error) {
	f.calls <- time.Now()
	if f.fail > 0 {
		f.fail--
		old, err := f.st.GetTask(ctx, id)
		if err != nil {
			return nil, err
		}
		return f.failed(ctx, old.Source, trigger, &id, old.Attempt+1)
	}
	return f.real.Retry(ctx, id, trigger)
}

func (f *flaky) failed(ctx context.Context, source, trigger string, retryOf *int64, attempt int) (*tasks.Result, error) {
	now := time.Now().UTC()
	t := &store.Task{Source: source, Trigger: trigger, Status: store.StatusFailed, StartedAt: &now, FinishedAt: &now,
		RetryOf: retryOf, Attempt: attempt, Transient: true, Errors: `[{"message":"connection refused"}]`}
	if err := f.st.CreateTask(ctx, t); err != nil {
		return nil, err
	}
	return &tasks.Result{Task: t}, nil
}

func startFlaky(t *testing.T, st *store.Store, fail int, yaml string, backoff time.Duration) (*harness, *flaky) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "staff.csv"), people(3))
	cfg := loadConfig(t, dir, yaml)
	f := &flaky{st: st, fail: fail, calls: make(chan time.Time, 100)}
	h := startConfig(t, st, cfg, func(d *Daemon) {
		d.RetryBackoff = backoff
		d.newRunner = func(c *config.Config) taskRunner {
			f.real = &tasks.Runner{Store: st, Config: c, Log: d.log}
			return f
		}
		d.runner = d.newRunner(cfg)
	})
	return h, f
}

func TestTransientFailureIsRetriedWithBackoff(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		const backoff = 200 * time.Millisecond
		h, f := startFlaky(t, st, 2, "tasks:\n  max_retries: 3\n"+staffConfig("watch: false"), backoff)
		eventually(t, 30*time.Second, "no successful retry", func() bool {
			ts := h.finished("staff")
			return len(ts) > 0 && ts[len(ts)-1].Status == store.StatusSucceeded
		})
		h.waitQuiet()
		ts := h.tasks("staff")
		if got := statuses(ts); strings.Join(got, " ") != "schedule/failed retry/failed retry/succeeded" {
			t.Fatalf("tasks = %v", got)
		}
		for i := 1; i < len(ts); i++ {
			if ts[i].RetryOf == nil || *ts[i].RetryOf != ts[i-1].ID || ts[i].Attempt != i {
				t.Errorf("task %d: retry_of %v attempt %d, want retry_of %d attempt %d", ts[i].ID, ts[i].RetryOf, ts[i].Attempt, ts[i-1].ID, i)
			}
		}
		var calls []time.Time
		for len(f.calls) > 0 {
			calls = append(calls, <-f.calls)
		}
		if len(calls) != 3 {
			t.Fatalf("the runner was called %d times, want 3", len(calls))
		}
		// Exponential: the first retry waits the backoff, the second twice as long.
		for i, want := range []time.Duration{backoff, 2 * backoff} {
			if gap := calls[i+1].Sub(calls[i]); gap < want || gap > want+5*time.Second {
				t.Errorf("retry %d came %s after the failure, want %s", i+1, gap, want)
			}
		}
		_, body := h.get("/metrics")
		for _, want := range []string{
			`roster_sync_tasks_total{source="staff",status="failed",trigger="schedule"} 1`,
			`roster_sync_tasks_total{source="staff",status="failed",trigger="retry"} 1`,
			`roster_sync_tasks_total{source="staff",status="succeeded",trigger="retry"} 1`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

func TestAutomaticRetriesStopAtMaxRetries(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		h, f := startFlaky(t, st, 100, "tasks:\n  max_retries: 2\n"+staffConfig("watch: false"), 20*time.Millisecond)
		eventually(t, 30*time.Second, "retries did not run", func() bool { return len(h.finished("staff")) == 3 })
		h.waitQuiet() // no retry waits any more
		if got := statuses(h.tasks("staff")); strings.Join(got, " ") != "schedule/failed retry/failed retry/failed" {
			t.Fatalf("tasks = %v, want the task and max_retries (2) retries", got)
		}
		if n := len(f.calls); n != 3 {
			t.Fatalf("the runner was called %d times, want 3", n)
		}
	})
}

func TestRetryIsDroppedAfterANewerTask(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		// The retry would wait an hour; a manual sync comes first and
		// reads newer input, so the retry must not run the old one.
		h, _ := startFlaky(t, st, 1, staffConfig("watch: false"), time.Hour)
		eventually(t, 30*time.Second, "no failed first task", func() bool { return len(h.finished("staff")) == 1 })
		if err := h.d.Trigger("staff", tasks.TriggerManual); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "no manual sync", func() bool { return len(h.finished("staff")) == 2 })
		var timer *time.Timer
		h.d.mu.Lock()
		for tm := range h.d.timers {
			timer = tm
		}
		h.d.mu.Unlock()
		if timer == nil {
			t.Fatal("no retry is waiting")
		}
		timer.Reset(0) // the hour is over
		h.waitQuiet()
		if got := statuses(h.tasks("staff")); strings.Join(got, " ") != "schedule/failed manual/succeeded" {
			t.Fatalf("tasks = %v: the stale retry ran", got)
		}
	})
}

func TestWatcherImportsAFileOnlyOnceItIsStable(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		dir := t.TempDir()
		file := filepath.Join(dir, "staff.csv")
		writeFile(t, file, people(2))
		cfg := loadConfig(t, dir, staffConfig("watch: true"))
		h := startConfig(t, st, cfg, func(d *Daemon) { d.Debounce = time.Second })
		eventually(t, 30*time.Second, "no first sync", func() bool { return len(h.finished("staff")) == 1 })
		h.waitQuiet()

		// A slow writer: half of the file, a pause shorter than the
		// debounce, the rest. Only the complete file may be imported.
		content := people(10)
		half := len(content)/2 + 7 // in the middle of a line
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(content[:half]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(h.d.Debounce / 5)
		if _, err := f.WriteString(content[half:]); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "no watch task", func() bool { return len(h.finished("staff")) == 2 })
		h.waitQuiet()
		ts := h.tasks("staff")
		if got := statuses(ts); strings.Join(got, " ") != "schedule/succeeded watch/succeeded" {
			t.Fatalf("tasks = %v, want one watch task", got)
		}
		if c := tasks.ViewOf(&ts[1], nil).Counts; c.Created != 8 || c.Unchanged != 2 {
			t.Fatalf("the watch task's counts = %+v, want the complete file (8 created, 2 unchanged)", c)
		}

		// A new file renamed into place is a change too.
		writeFile(t, file+".new", people(11))
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "no watch task after the rename", func() bool { return len(h.finished("staff")) == 3 })
		h.waitQuiet()
		ts = h.tasks("staff")
		if c := tasks.ViewOf(&ts[2], nil).Counts; ts[2].Trigger != tasks.TriggerWatch || c.Created != 1 || len(ts) != 3 {
			t.Fatalf("after the rename: tasks %v, counts %+v", statuses(ts), c)
		}
	})
}

func TestScheduleTriggersTasks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "staff.csv"), people(2))
		cfg := loadConfig(t, dir, staffConfig("watch: false", `schedule: "@every 1s"`))
		h := startConfig(t, st, cfg)
		// The first sync at start, then the schedule's.
		eventually(t, 20*time.Second, "the schedule made no tasks", func() bool { return len(h.finished("staff")) >= 3 })
		for i, tk := range h.finished("staff") {
			want := store.StatusSkipped // the file does not change
			if i == 0 {
				want = store.StatusSucceeded
			}
			if tk.Trigger != tasks.TriggerSchedule || tk.Status != want {
				t.Fatalf("task %d is %s/%s, want schedule/%s", tk.ID, tk.Trigger, tk.Status, want)
			}
		}
	})
}

func TestShutdownDrainsRunningTasks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "staff.csv"), people(3))
		cfg := loadConfig(t, dir, staffConfig("watch: false"))
		if err := st.SyncSources(ctx, []string{"staff"}, []string{"csv"}); err != nil {
			t.Fatal(err)
		}
		busy := func(h *harness) {
			q := h.queue("staff")
			eventually(t, 10*time.Second, "the first sync did not start", func() bool {
				q.mu.Lock()
				defer q.mu.Unlock()
				return q.busy
			})
		}

		// A task that ends within the drain time is waited for.
		unlock, err := st.TryLockSource(ctx, "staff")
		if err != nil {
			t.Fatal(err)
		}
		h := startConfig(t, st, cfg, func(d *Daemon) { d.Drain = 20 * time.Second })
		busy(h)
		addr := h.d.Addr().String()
		stopped := make(chan error, 1)
		go func() { stopped <- h.stop() }()
		eventually(t, 10*time.Second, "the listener still accepts connections", func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
		unlock()
		if err := <-stopped; err != nil {
			t.Fatalf("Run = %v", err)
		}
		if got := statuses(h.tasks("staff")); strings.Join(got, " ") != "schedule/succeeded" {
			t.Fatalf("tasks = %v, want the drained task to have finished", got)
		}

		// A task that does not end within the drain time is cancelled, and
		// Run returns in time.
		if err := st.DB().Exec(`UPDATE sources SET last_success_at = NULL`).Error; err != nil {
			t.Fatal(err)
		}
		unlock, err = st.TryLockSource(ctx, "staff")
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		const drain = 300 * time.Millisecond
		h = startConfig(t, st, cfg, func(d *Daemon) { d.Drain = drain })
		busy(h)
		began := time.Now()
		if err := h.stop(); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if took := time.Since(began); took > drain+2*time.Second {
			t.Fatalf("Run returned %s after the cancel, want about the drain time %s", took, drain)
		}
	})
}

func TestSecondDaemonOnOneSQLiteFileIsRefused(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "staff.csv"), people(1))
	cfg := loadConfig(t, dir, staffConfig("watch: false"))
	startConfig(t, st, cfg)

	second, err := store.Open(context.Background(), store.SQLite, st.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	d, _ := newDaemon(t, second, cfg)
	err = d.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "another roster serve is already running on "+st.Path()) ||
		!strings.Contains(err.Error(), st.Path()+".daemon.lock") {
		t.Fatalf("second Run = %v, want a clear refusal naming the database and its lock", err)
	}
}

func (f *flaky) DrainPush(ctx context.Context, source string) (*tasks.Result, error) {
	return f.real.DrainPush(ctx, source)
}

func (f *flaky) AcceptPush(ctx context.Context, source string, p *push.Payload) (*store.Task, error) {
	return f.real.AcceptPush(ctx, source, p)
}
