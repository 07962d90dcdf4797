package main

// Acceptance tests of the daemon (SPEC §5 and §7) through the real
// binary: schedules, shutdown during a large sync, replicas on one
// PostgreSQL schema, a database connection cut during a sync, SIGHUP
// adding a source, and /metrics checked by promtool.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// manyPeople are n people without passwords (hashing would dominate the
// sync); round changes every e-mail address so that a new round is a
// different file with n updates.
func manyPeople(n, round int) []person {
	ps := make([]person, n)
	for i := range ps {
		ps[i] = person{ID: fmt.Sprintf("%07d", i+1), First: fmt.Sprintf("Given%d", i+1), Last: "Family",
			Login: fmt.Sprintf("login%07d", i+1), Email: fmt.Sprintf("login%07d.r%d@example.com", i+1, round), Groups: "Staff"}
	}
	return ps
}

// writeAtomic replaces a file by a rename, so that a reader never sees it
// half-written.
func (w *workdir) writeAtomic(t testing.TB, name, content string) {
	t.Helper()
	tmp := w.path("." + name + ".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, w.path(name)); err != nil {
		t.Fatal(err)
	}
}

// waitSourceTask polls `roster tasks --json` until a task of source
// matches.
func waitSourceTask(t *testing.T, w *workdir, p *serveProc, source, what string, timeout time.Duration, match func(taskJSON) bool) taskJSON {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, tk := range w.tasks(t, "--source", source) {
			if match(tk) {
				return tk
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s; tasks: %+v\nthe log:\n%s", what, timeout, w.tasks(t), p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countUsers counts the source's users and fails on two users with one
// login (state already fails on two with one externalId).
func countUsers(t *testing.T, w *workdir, source string) int {
	t.Helper()
	st := w.state(t, source)
	logins := map[string]string{}
	for e, u := range st.Users {
		if other, dup := logins[strings.ToLower(u.UserName)]; dup {
			t.Fatalf("users %s and %s of %s share the login %q", other, e, source, u.UserName)
		}
		logins[strings.ToLower(u.UserName)] = e
	}
	return len(st.Users)
}

func isTaskStarted(source string) func(map[string]any) bool {
	return func(l map[string]any) bool { return l["msg"] == "task started" && l["source"] == source }
}

// TestServeEverySchedule: a source with schedule "@every 2s" gets a
// scheduled task every 2 s.
func TestServeEverySchedule(t *testing.T) {
	w := newWorkdir(t, store.SQLite)
	w.write(t, "staff.csv", csvOf(basePeople()))
	w.write(t, "roster.yaml", serveConfig(w, "    schedule: \"@every 2s\"\n"))
	// Synced before: the daemon's first-sync-at-start does not count.
	w.want(t, exitOK, "sync", "staff")
	p := startServeProc(t, w)
	p.waitReady(t)
	began := time.Now()
	var sched []taskJSON
	for time.Since(began) < 10*time.Second {
		sched = sched[:0]
		for _, tk := range w.tasks(t, "--source", "staff") {
			if tk.Trigger == "schedule" {
				sched = append(sched, tk)
			}
		}
		if len(sched) >= 2 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(sched) < 2 {
		t.Fatalf("%d scheduled tasks within 10s of an @every 2s schedule, want at least 2; the log:\n%s", len(sched), p.stderr)
	}
	for _, tk := range sched {
		if tk.Status != store.StatusSkipped && tk.Status != store.StatusRunning {
			t.Errorf("scheduled task of an unchanged file: %+v, want skipped", tk)
		}
	}
	if gap := sched[0].CreatedAt.Sub(sched[1].CreatedAt); gap < time.Second || gap > 4*time.Second {
		t.Errorf("scheduled tasks %d and %d are %s apart, want about 2s", sched[1].ID, sched[0].ID, gap)
	}
	if code := p.signalAndWait(t, syscall.SIGTERM, 45*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
	}
}

// TestServeSigtermDuringLargeSync: SIGTERM while a sync of 50,000 users
// runs exits 0 within the drain time, and the sync is all or nothing.
func TestServeSigtermDuringLargeSync(t *testing.T) {
	const n = 50000
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			w := newWorkdir(t, driver)
			w.write(t, "staff.csv", csvOf(manyPeople(n, 0)))
			w.write(t, "roster.yaml", strings.Replace(serveConfig(w, ""), "watch: true", "watch: false", 1))
			p := startServeProc(t, w)
			// The source never synced: the daemon syncs it at start.
			p.waitLog(t, 30*time.Second, isTaskStarted("staff"))
			time.Sleep(500 * time.Millisecond)
			began := time.Now()
			// Drain is 30 s; a task still running then is cancelled.
			if code := p.signalAndWait(t, syscall.SIGTERM, 40*time.Second); code != 0 {
				t.Fatalf("SIGTERM during a sync: exit %d, want 0; the log:\n%s", code, p.stderr)
			}
			t.Logf("exited %s after SIGTERM", time.Since(began).Round(time.Millisecond))
			tks := w.tasks(t, "--source", "staff")
			if len(tks) != 1 {
				t.Fatalf("tasks %+v, want the one first sync", tks)
			}
			tk, users := tks[0], countUsers(t, w, "staff")
			switch tk.Status {
			case store.StatusSucceeded:
				wantTask(t, tk, "staff", store.StatusSucceeded, countsJSON{Created: n})
				if users != n {
					t.Errorf("task succeeded, but the directory holds %d users, want %d", users, n)
				}
			case store.StatusFailed:
				if users != 0 {
					t.Errorf("task failed, but the directory holds %d of the %d users: a partial apply", users, n)
				}
			default:
				t.Errorf("after the daemon stopped the task is %s: %+v; the log:\n%s", tk.Status, tk, p.stderr)
			}
			t.Logf("the task ended %s with %d users", tk.Status, users)
		})
	}
}

// checkNoOverlap fails when two tasks' [started_at, finished_at] overlap
// or a task never finished.
func checkNoOverlap(t *testing.T, tks []taskJSON) {
	t.Helper()
	var done []taskJSON
	for _, tk := range tks {
		if tk.StartedAt == nil || tk.FinishedAt == nil {
			t.Errorf("task %d (%s, %s) has started_at %v, finished_at %v", tk.ID, tk.Trigger, tk.Status, tk.StartedAt, tk.FinishedAt)
			continue
		}
		done = append(done, tk)
	}
	slices.SortFunc(done, func(a, b taskJSON) int { return a.StartedAt.Compare(*b.StartedAt) })
	for i := 1; i < len(done); i++ {
		a, b := done[i-1], done[i]
		if b.StartedAt.Before(*a.FinishedAt) {
			t.Errorf("tasks %d (%s %s, %s–%s) and %d (%s %s, %s–%s) of one source ran at the same time",
				a.ID, a.Trigger, a.Status, a.StartedAt.Format(time.StampMilli), a.FinishedAt.Format(time.StampMilli),
				b.ID, b.Trigger, b.Status, b.StartedAt.Format(time.StampMilli), b.FinishedAt.Format(time.StampMilli))
		}
	}
}

// TestServeReplicas: two daemons on one PostgreSQL schema never run the
// source's tasks at once and never run one schedule tick twice.
func TestServeReplicas(t *testing.T) {
	const n = 3000
	w := newWorkdir(t, store.Postgres)
	w.writeAtomic(t, "staff.csv", csvOf(manyPeople(n, 0)))
	w.write(t, "roster.yaml", strings.Replace(serveConfig(w, "    schedule: \"@every 2s\"\n"), "watch: true", "watch: false", 1))
	// Synced before: the first-sync-at-start of each replica is no tick.
	w.want(t, exitOK, "sync", "staff")
	a := startServeProc(t, w)
	b := startServeProc(t, w)
	a.waitReady(t)
	b.waitReady(t)
	for round := 1; round <= 4; round++ {
		time.Sleep(3 * time.Second)
		w.writeAtomic(t, "staff.csv", csvOf(manyPeople(n, round)))
	}
	time.Sleep(2 * time.Second)
	for _, p := range []*serveProc{a, b} {
		if code := p.signalAndWait(t, syscall.SIGTERM, 45*time.Second); code != 0 {
			t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
		}
	}
	tks := w.tasks(t, "--source", "staff", "--limit", "500")
	checkNoOverlap(t, tks)
	var sched []taskJSON
	for _, tk := range tks {
		if tk.Trigger == "schedule" {
			sched = append(sched, tk)
		}
	}
	slices.SortFunc(sched, func(a, b taskJSON) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for i := 1; i < len(sched); i++ {
		if gap := sched[i].CreatedAt.Sub(sched[i-1].CreatedAt); gap < time.Second {
			t.Errorf("scheduled tasks %d and %d were created %s apart: one tick ran twice", sched[i-1].ID, sched[i].ID, gap)
		}
	}
	if len(sched) < 3 {
		t.Errorf("%d scheduled tasks in ~14s of @every 2s on two replicas, want at least 3", len(sched))
	}
	succeeded := 0
	for _, tk := range tks {
		if tk.Status == store.StatusSucceeded && tk.Counts.Updated > 0 {
			succeeded++
		}
	}
	if succeeded < 2 {
		t.Errorf("only %d tasks applied a changed file; tasks: %+v", succeeded, tks)
	}
	if got := countUsers(t, w, "staff"); got != n {
		t.Errorf("%d users, want %d", got, n)
	}
	t.Logf("%d tasks, %d scheduled, %d applied a change", len(tks), len(sched), succeeded)
}

// cutProxy forwards TCP connections to a server until it is cut.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
	cutOff bool
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refused := p.cutOff
		p.mu.Unlock()
		if refused {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src) //nolint:errcheck // a cut ends the copy
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(c, s)
		go pipe(s, c)
	}
}

// cut closes every live connection and refuses new ones until restore.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutOff = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutOff = false
}

// TestServeDatabaseCutDuringSync: the PostgreSQL connection is cut while
// a sync runs; the task fails for a transient reason, is retried
// automatically once the database is back, and the directory ends up
// holding the file's users exactly once.
func TestServeDatabaseCutDuringSync(t *testing.T) {
	const n = 30000
	w, p, firstID := cutDuringSync(t, n)
	// Polled through the store, not the CLI: every CLI command fails
	// running tasks whose source lock is free (Runner.Recover), which
	// would do the daemon's work for it.
	s := w.open(t)
	defer s.Close()
	ctx := context.Background()
	var last *store.Task
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var err error
		if last, err = s.LastTask(ctx, "staff"); err != nil {
			t.Fatal(err)
		}
		if last != nil && last.Status == store.StatusSucceeded {
			break
		}
	}
	first, err := s.GetTask(ctx, firstID)
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != store.StatusFailed {
		t.Errorf("task %d is still %s %s after the cut with the daemon running; the log:\n%s", first.ID, first.Status, time.Since(*first.StartedAt).Round(time.Second), p.stderr)
	}
	if last == nil || last.Status != store.StatusSucceeded {
		t.Fatalf("no task succeeded within 40s of restoring the database; last task %+v; the log:\n%s", last, p.stderr)
	}
	if code := p.signalAndWait(t, syscall.SIGTERM, 45*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
	}
	var ok, firstJ *taskJSON
	for _, tk := range w.tasks(t, "--source", "staff") {
		switch tk.ID {
		case firstID:
			firstJ = &tk
		case last.ID:
			ok = &tk
		}
	}
	if firstJ == nil || ok == nil || firstJ.ID == ok.ID {
		t.Fatalf("task %d (cut) or %d (succeeded) missing, or the same task", firstID, last.ID)
	}
	if firstJ.Status != store.StatusFailed || len(firstJ.Errors) == 0 {
		t.Errorf("task %d is %s (errors %v) after the cut, want failed with its reason", firstJ.ID, firstJ.Status, firstJ.Errors)
	}
	if ok.Trigger == "retry" && (ok.RetryOf == nil || *ok.RetryOf != firstID) {
		t.Errorf("the retry %d has retry_of %s, want %d", ok.ID, deref64(ok.RetryOf), firstID)
	}
	wantTask(t, *ok, "staff", store.StatusSucceeded, countsJSON{Created: n})
	if got := countUsers(t, w, "staff"); got != n {
		t.Errorf("%d users after the cut and the retry, want %d", got, n)
	}
	t.Logf("task %d ended %s (%v); task %d (%s, retry_of %s) succeeded", firstJ.ID, firstJ.Status, firstJ.Errors, ok.ID, ok.Trigger, deref64(ok.RetryOf))
	for line := range strings.SplitSeq(p.stderr.String(), "\n") {
		if !strings.Contains(line, `"level":"INFO"`) && line != "" {
			t.Logf("daemon log: %s", line)
		}
	}
}

func deref64(p *int64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// cutDuringSync starts roster serve on PostgreSQL through a cutProxy,
// with a file of n users, cuts the connection 300 ms after the first sync
// started and restores it 3 s later. It returns the work folder (its DSN
// and roster.yaml direct, for the CLI), the daemon and the cut task's id.
func cutDuringSync(t *testing.T, n int) (*workdir, *serveProc, int64) {
	t.Helper()
	w := newWorkdir(t, store.Postgres)
	u, err := url.Parse(w.dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, u.Host)
	direct := w.dsn
	u.Host = proxy.addr()
	w.dsn = u.String()
	w.write(t, "staff.csv", csvOf(manyPeople(n, 0)))
	w.write(t, "roster.yaml", "tasks:\n  max_retries: 3\n"+strings.Replace(serveConfig(w, ""), "watch: true", "watch: false", 1))
	p := startServeProc(t, w)
	p.waitReady(t)
	started := p.waitLog(t, 30*time.Second, isTaskStarted("staff"))
	time.Sleep(300 * time.Millisecond)
	proxy.cut()
	time.Sleep(3 * time.Second)
	proxy.restore()
	// The CLI and the test read the store directly, not through the proxy.
	w.dsn = direct
	w.write(t, "roster.yaml", "tasks:\n  max_retries: 3\n"+strings.Replace(serveConfig(w, ""), "watch: true", "watch: false", 1))
	return w, p, int64(started["task"].(float64))
}

// TestServeSighupAddsSource: a source added by SIGHUP is synced; a broken
// config is then refused and the added source keeps being served.
func TestServeSighupAddsSource(t *testing.T) {
	w := newWorkdir(t, store.SQLite)
	w.write(t, "staff.csv", csvOf(basePeople()))
	w.write(t, "hr.csv", csvOf(manyPeople(5, 0)))
	w.write(t, "roster.yaml", serveConfig(w, ""))
	p := startServeProc(t, w)
	p.waitReady(t)
	waitSourceTask(t, w, p, "staff", "first sync of staff", 30*time.Second, func(tk taskJSON) bool { return tk.Status == store.StatusSucceeded })

	withHR := serveConfig(w, "  - name: hr\n    type: csv\n    path: hr.csv\n    watch: false\n    schedule: \"@every 1s\"\n")
	w.write(t, "roster.yaml", withHR)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, 30*time.Second, func(l map[string]any) bool { return l["msg"] == "configuration reloaded" })
	hr := waitSourceTask(t, w, p, "hr", "successful task of hr", 30*time.Second, func(tk taskJSON) bool { return tk.Status == store.StatusSucceeded })
	wantTask(t, hr, "hr", store.StatusSucceeded, countsJSON{Created: 5})

	// The CLI reads the config too: it gets a valid copy from now on.
	w.write(t, "cli.yaml", withHR)
	w.write(t, "roster.yaml", withHR+"no_such_key: 1\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	refused := p.waitLog(t, 30*time.Second, func(l map[string]any) bool {
		return l["msg"] == "configuration reload refused; the running configuration stays"
	})
	if err, _ := refused["err"].(string); !strings.Contains(err, "no_such_key") || !strings.Contains(err, "unknown key") {
		t.Errorf("the refusal does not name the unknown key: %v", refused)
	}
	if _, metrics := p.get(t, "/metrics"); !strings.Contains(metrics, "\nroster_config_last_reload_successful 0\n") {
		t.Errorf("/metrics after a refused reload lacks roster_config_last_reload_successful 0")
	}
	before := len(w.tasks(t, "--source", "hr", "--config", "cli.yaml"))
	time.Sleep(3 * time.Second)
	if after := len(w.tasks(t, "--source", "hr", "--config", "cli.yaml")); after <= before {
		t.Errorf("hr had %d tasks when the reload was refused and %d 3s later: its @every 1s schedule stopped", before, after)
	}
	if code, body := p.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz after a refused reload: %d %s", code, body)
	}
	if code := p.signalAndWait(t, syscall.SIGTERM, 45*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
	}
}

// TestMetricsPassPromtool: /metrics after a sync passes
// `promtool check metrics`.
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed under CI=true (.ci/run installs the prometheus package)")
		}
		t.Skip("SKIPPING: promtool is not installed (apt-get install prometheus)")
	}
	w := newWorkdir(t, store.SQLite)
	w.write(t, "staff.csv", csvOf(basePeople()))
	w.write(t, "roster.yaml", serveConfig(w, ""))
	p := startServeProc(t, w)
	p.waitReady(t)
	waitTask(t, w, p, "first sync", func(tk taskJSON) bool { return tk.Status == store.StatusSucceeded })
	p.get(t, "/healthz")
	code, metrics := p.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d %s", code, metrics)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	if code := p.signalAndWait(t, syscall.SIGTERM, 45*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
	}
}
