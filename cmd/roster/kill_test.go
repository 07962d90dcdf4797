package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

const (
	bigUsers = 100_000
	// killBudget bounds the kill points tried per store; the first two
	// always run.
	killBudget = 40 * time.Second
)

// bigRow is person i of the big file: 1,000 departments and 7 sites make
// 1,007 groups.
func bigRow(i int) person {
	return person{ID: fmt.Sprintf("%07d", i), First: fmt.Sprintf("Given%d", i), Last: fmt.Sprintf("Family%d", i),
		Login: fmt.Sprintf("user%07d", i), Email: fmt.Sprintf("user%07d@example.com", i),
		Groups: fmt.Sprintf("Group%03d|Site%d", i%1000, i%7)}
}

func writeBig(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	for i := range bigUsers {
		bw.WriteString(bigRow(i).row())
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// smallPeople is the known state before the kills: ten people of the big
// file, five of them with another e-mail and three in a group the big file
// lacks, one with a password, and three people the big file lacks (three
// deactivations: the safety valve lets them through).
func smallPeople() []person {
	var ps []person
	for i := range 10 {
		p := bigRow(i)
		if i < 5 {
			p.Email = fmt.Sprintf("old%07d@example.com", i)
		}
		if i < 3 {
			p.Groups = "Group000|Legacy"
		}
		ps = append(ps, p)
	}
	ps[0].Password = "Kill-Test-Pass-1"
	for i := 1; i <= 3; i++ {
		ps = append(ps, person{ID: fmt.Sprintf("900000%d", i), First: "Gone", Last: strconv.Itoa(i), Login: fmt.Sprintf("gone%d", i)})
	}
	return ps
}

// TestKillDuringSync starts `roster sync` of 100,000 users (creates,
// updates, deactivations, group creates and deletes in one plan), kills it
// with SIGKILL at several points, most inside the apply transaction, and
// checks after each kill that the directory is exactly what it was before
// and that the next command marks the task failed as interrupted
// (SPEC §4.1, §5, §10).
func TestKillDuringSync(t *testing.T) {
	if testing.Short() {
		t.Skip("the kill test syncs 100,000 users; skipped with -short")
	}
	big := filepath.Join(t.TempDir(), "big.csv")
	writeBig(t, big)
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			killDuringSync(t, newWorkdir(t, driver), big)
		})
	}
}

// killPoint says when to kill: delay after the "task started" log line or,
// when inApply, after the apply transaction has begun.
type killPoint struct {
	name    string
	inApply bool
	delay   time.Duration
}

func killDuringSync(t *testing.T, w *workdir, big string) {
	start := time.Now()
	w.env = []string{"TZ=UTC"}
	w.writeConfig(t, settings{})
	small := smallPeople()
	w.write(t, "staff.csv", csvOf(small))
	first := w.task(t, 0, "sync", "staff", "--json")
	wantTask(t, first, "staff", "succeeded", countsJSON{Created: 13})
	want := w.state(t, "staff")
	if len(want.Users) != 13 || len(want.Hashes) != 1 || !slices.Contains(want.Groups, "Legacy") {
		t.Fatalf("state before the kills: %d users, %d hashes, groups %v", len(want.Users), len(want.Hashes), want.Groups)
	}
	copyFile(t, big, w.path("staff.csv"))

	// The apply of 100,000 users takes seconds; the delays stay inside it,
	// and a kill point that comes too late is noticed before the kill.
	ms := func(from, to int) time.Duration { return time.Duration(from+rand.IntN(to-from)) * time.Millisecond }
	points := []killPoint{
		{"apply begins", true, 0},
		{"apply under way", true, ms(200, 600)},
		{"reading the file", false, ms(0, 300)},
		{"late in apply", true, ms(800, 1500)},
	}
	for i, p := range points {
		if i >= 2 && time.Since(start) > killBudget {
			t.Logf("time budget spent: skipping kill point %q", p.name)
			continue
		}
		missed := false
		t.Run(p.name, func(t *testing.T) {
			c := startSync(t, w)
			id := c.waitStarted(t)
			if p.inApply {
				pr := newProbe(t, w)
				defer pr.close()
				began := time.Now()
				c.waitForApply(t, w, pr, id)
				t.Logf("task %d: apply seen %s after the task started; killing %s later", id, time.Since(began).Round(time.Millisecond), p.delay)
				time.Sleep(p.delay)
				if !pr.applying(t) {
					missed = true
					c.wait(t)
					t.Skipf("kill point missed: the apply of task %d ended within %s; the directory has the big file now", id, p.delay)
				}
			} else {
				time.Sleep(p.delay)
			}
			c.kill(t)
			checkInterrupted(t, w, id)
			sameState(t, "after kill -9 ("+p.name+")", want, w.state(t, "staff"))
		})
		if t.Failed() || missed {
			return
		}
	}

	// The directory works: a small change applies normally.
	small[9].Email = "changed@example.com"
	w.write(t, "staff.csv", csvOf(small))
	wantTask(t, w.task(t, 0, "sync", "staff", "--json"), "staff", "succeeded", countsJSON{Updated: 1, Unchanged: 12})
	if running := w.tasks(t, "--status", "running"); len(running) > 0 {
		t.Errorf("tasks still running: %+v", running)
	}
	t.Logf("%s: kill test took %s", w.driver, time.Since(start).Round(time.Millisecond))
}

var taskStarted = regexp.MustCompile(`msg="task started" source=staff task=(\d+)`)

// child is a running `roster sync staff -v`.
type child struct {
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	started chan int64
	exited  chan struct{}
	waitErr error
	stdout  strings.Builder
	mu      sync.Mutex
	log     strings.Builder
}

func startSync(t *testing.T, w *workdir) *child {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	c := &child{cancel: cancel, started: make(chan int64, 1), exited: make(chan struct{})}
	t.Cleanup(func() {
		cancel() // kills the process if a check failed before the kill
		<-c.exited
	})
	c.cmd = exec.CommandContext(ctx, rosterBin, "sync", "staff", "-v")
	c.cmd.Dir = w.dir
	c.cmd.Env = append(cleanEnv(), w.env...)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout = &c.stdout
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.log.WriteString(line + "\n")
			c.mu.Unlock()
			if m := taskStarted.FindStringSubmatch(line); m != nil {
				id, _ := strconv.ParseInt(m[1], 10, 64)
				c.started <- id
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-scanned
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	return c
}

// fail kills the process and fails the test with its output.
func (c *child) fail(t *testing.T, format string, args ...any) {
	t.Helper()
	c.cancel()
	<-c.exited
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf(format+"\n--- stdout:\n%s--- stderr:\n%s", append(args, c.stdout.String(), c.log.String())...)
}

func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// waitStarted returns the id of the task the process started.
func (c *child) waitStarted(t *testing.T) int64 {
	t.Helper()
	select {
	case id := <-c.started:
		return id
	case <-c.exited:
		c.fail(t, "roster sync ended before it started a task: %v", c.waitErr)
	case <-time.After(3 * time.Minute):
		c.fail(t, "no task started within 3 minutes")
	}
	return 0
}

// wait waits for the process to end on its own.
func (c *child) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(5 * time.Minute):
		c.fail(t, "roster sync did not end within 5 minutes")
	}
}

// kill sends SIGKILL and checks that the process died of it.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if !c.running() {
		c.fail(t, "the sync ended before it was killed: %v", c.waitErr)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.fail(t, "kill: %v", err)
	}
	<-c.exited
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		c.fail(t, "the sync was not killed by SIGKILL but ended with %v", c.waitErr)
	}
}

// waitForApply waits until task id has written its raw record and its
// apply transaction is open: the write lock is held for a while on SQLite
// (short task updates hold it for milliseconds), the users table is
// locked by the process's session on PostgreSQL.
func (c *child) waitForApply(t *testing.T, w *workdir, pr *probe, id int64) {
	t.Helper()
	raw := w.path(fmt.Sprintf("log/user-data-sync/staff/%d.csv", id))
	var heldSince time.Time
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if !c.running() {
			c.fail(t, "the sync ended before it was seen applying its plan: %v", c.waitErr)
		}
		time.Sleep(5 * time.Millisecond)
		if _, err := os.Stat(raw); err != nil {
			continue
		}
		switch {
		case !pr.applying(t):
			heldSince = time.Time{}
		case w.driver == store.Postgres:
			return
		case heldSince.IsZero():
			heldSince = time.Now()
		case time.Since(heldSince) > 150*time.Millisecond:
			return
		}
	}
	c.fail(t, "task %d was not seen applying its plan within 3 minutes", id)
}

// probe tells from outside whether roster's apply transaction is open.
type probe struct {
	driver string
	s      *store.Store
	conn   *sql.Conn
}

func newProbe(t *testing.T, w *workdir) *probe {
	t.Helper()
	p := &probe{driver: w.driver, s: w.open(t)}
	if w.driver == store.SQLite {
		db, err := p.s.DB().DB()
		if err != nil {
			t.Fatal(err)
		}
		if p.conn, err = db.Conn(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := p.conn.ExecContext(context.Background(), `PRAGMA busy_timeout = 0`); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func (p *probe) close() {
	if p.conn != nil {
		p.conn.Close()
	}
	p.s.Close()
}

// applying reports whether a write transaction of another process is
// open: on SQLite, BEGIN IMMEDIATE finds the write lock taken (when it is
// free the probe takes it for an instant and gives it back); on
// PostgreSQL, another session holds a write lock on the users table.
func (p *probe) applying(t *testing.T) bool {
	t.Helper()
	ctx := context.Background()
	if p.driver == store.SQLite {
		_, err := p.conn.ExecContext(ctx, `BEGIN IMMEDIATE`)
		if err == nil {
			if _, err := p.conn.ExecContext(ctx, `ROLLBACK`); err != nil {
				t.Fatal(err)
			}
			return false
		}
		if msg := strings.ToLower(err.Error()); strings.Contains(msg, "busy") || strings.Contains(msg, "locked") {
			return true
		}
		t.Fatalf("probe the write lock: %v", err)
	}
	var n int64
	err := p.s.DB().Raw(`SELECT count(*) FROM pg_locks l
		JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace ns ON ns.oid = c.relnamespace
		WHERE ns.nspname = current_schema() AND c.relname = 'users' AND l.mode = 'RowExclusiveLock'
		AND l.granted AND l.pid <> pg_backend_pid()`).Scan(&n).Error
	if err != nil {
		t.Fatalf("look for the apply transaction: %v", err)
	}
	return n > 0
}

// TestKillAfterCommit kills roster sync right after its apply
// transaction committed, before the task is recorded as succeeded: on
// SQLite the commit of a large plan is followed by a checkpoint of the
// write-ahead log, so that window lasts a noticeable time. The task's
// record must agree with the directory: succeeded when the plan is in the
// directory, failed only when it is not.
func TestKillAfterCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs 100,000 users; skipped with -short")
	}
	w := newWorkdir(t, store.SQLite)
	w.env = []string{"TZ=UTC"}
	w.writeConfig(t, settings{})
	w.write(t, "staff.csv", csvOf(smallPeople()))
	w.task(t, 0, "sync", "staff", "--json")
	before := w.state(t, "staff")
	writeBig(t, w.path("staff.csv"))

	c := startSync(t, w)
	id := c.waitStarted(t)
	pr := newProbe(t, w)
	defer pr.close()
	c.waitForApply(t, w, pr, id)
	for pr.applying(t) {
		if !c.running() {
			c.fail(t, "the sync ended while its apply seemed open: %v", c.waitErr)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !c.running() {
		t.Skip("the sync finished before it could be killed after its commit")
	}
	c.kill(t)

	r := w.want(t, 0, "tasks", "--json")
	var tk *taskJSON
	for _, x := range decodeTasks(t, r.stdout) {
		if x.ID == id {
			tk = &x
		}
	}
	if tk == nil {
		t.Fatalf("task %d is not listed:\n%s", id, r)
	}
	after := w.state(t, "staff")
	applied := after.Revision != before.Revision
	t.Logf("task %d: %s %v; directory revision %d → %d, %d users", id, tk.Status, tk.Errors, before.Revision, after.Revision, len(after.Users))
	switch {
	case applied && tk.Status != "succeeded":
		t.Errorf("the plan of task %d is in the directory (%d users, revision %d → %d) but the task is %s: %v",
			id, len(after.Users), before.Revision, after.Revision, tk.Status, tk.Errors)
	case !applied && tk.Status != "failed":
		t.Errorf("task %d is %s but the directory is unchanged", id, tk.Status)
	}
	if applied && tk.Status != "succeeded" {
		// What an operator sees next: the same file is skipped as if the
		// failed task had never been.
		next := w.task(t, 0, "sync", "staff", "--json")
		t.Logf("the next sync of the same file is %s", next.Status)
	}
}

// checkInterrupted checks that the next command marks the killed task
// failed with an "interrupted" error. On PostgreSQL the server may take a
// moment to end the dead process's session and release its advisory lock;
// until it does the task is left running, so the check polls briefly.
func checkInterrupted(t *testing.T, w *workdir, id int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for try := 1; ; try++ {
		r := w.want(t, 0, "tasks", "--json")
		list := decodeTasks(t, r.stdout)
		var tk *taskJSON
		for i := range list {
			if list[i].ID == id {
				tk = &list[i]
			}
		}
		if tk == nil {
			t.Fatalf("the killed task %d is not listed:\n%s", id, r)
		}
		if tk.Status == "running" && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if tk.Status != "failed" || len(tk.Errors) == 0 || !strings.Contains(tk.Errors[0].Message, "interrupted") || tk.FinishedAt == nil {
			t.Fatalf("killed task %d after %d tries: %+v", id, try, *tk)
		}
		if try == 1 && !strings.Contains(r.stderr, "interrupted") {
			t.Errorf("the command that marked task %d failed did not say so:\n%s", id, r)
		}
		if try > 1 {
			t.Logf("task %d was marked failed at the %d. command", id, try)
		}
		return
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Fatal(err)
	}
}
