package main

// End-to-end tests of `roster serve`: the real binary on a port of its
// own choosing (listen: 127.0.0.1:0; the address is read from its log),
// on SQLite and on PostgreSQL.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// serveConfig is a config with the csv source staff (watched) on the
// work folder's store, logging JSON.
func serveConfig(w *workdir, extra string) string {
	return fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  driver: %s\n  dsn: %s\n"+
		"sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n    watch: true\n%s", w.driver, yamlQuote(w.dsn), extra)
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveProc is a running `roster serve`.
type serveProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
	code   int
	base   string
}

func startServeProc(t testing.TB, w *workdir) *serveProc {
	t.Helper()
	return startServeWith(t, w, nil)
}

// startServeWith starts `roster serve` with extra environment variables
// and arguments, and waits until it is ready: roster listens before its
// database answers (and before it migrates a new one), so a test that
// reads the store with the CLI right after the start would otherwise find
// none.
func startServeWith(t testing.TB, w *workdir, env []string, args ...string) *serveProc {
	t.Helper()
	p := launchServe(t, w, env, args...)
	p.waitReady(t)
	return p
}

// launchServe starts `roster serve` and returns once it listens, ready or
// not (its database may not answer yet).
func launchServe(t testing.TB, w *workdir, env []string, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{cmd: exec.Command(rosterBin, append([]string{"serve"}, args...)...), stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Dir = w.dir
	p.cmd.Env = append(append(cleanEnv(), w.env...), env...)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait() //nolint:errcheck // the exit code is what counts
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
			t.Logf("roster serve was killed at the end of the test; its log:\n%s", p.stderr)
		}
	})
	p.base = "http://" + p.waitLog(t, 30*time.Second, func(l map[string]any) bool {
		return l["msg"] == "listening" && l["listener"] == "main"
	})["addr"].(string)
	return p
}

// logLines decodes the JSON log lines written so far.
func (p *serveProc) logLines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(p.stderr.String(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not JSON (log.format: json): %q", line)
		}
		out = append(out, m)
	}
	return out
}

// waitLog waits for a log line that match accepts and returns it.
func (p *serveProc) waitLog(t testing.TB, timeout time.Duration, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range p.logLines(t) {
			if match(l) {
				return l
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("roster serve exited with %d; its log:\n%s", p.code, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the awaited log line has not come; the log:\n%s", timeout, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signalAndWait sends sig and waits for the process to exit.
func (p *serveProc) signalAndWait(t testing.TB, sig syscall.Signal, timeout time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("roster serve did not exit within %s of %s; its log:\n%s", timeout, sig, p.stderr)
		return -1
	}
}

func (p *serveProc) get(t testing.TB, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *serveProc) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := p.get(t, "/readyz")
		if code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz is %d %s after 30s; the log:\n%s", code, body, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitTask polls `roster tasks --json` until a task of staff matches.
func waitTask(t *testing.T, w *workdir, p *serveProc, what string, match func(taskJSON) bool) taskJSON {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, tk := range w.tasks(t, "--source", "staff") {
			if match(tk) {
				return tk
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 60s; tasks: %+v\nthe log:\n%s", what, w.tasks(t), p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestServe(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			w := newWorkdir(t, driver)
			people := basePeople()
			w.write(t, "staff.csv", csvOf(people))
			w.write(t, "roster.yaml", serveConfig(w, ""))
			p := startServeProc(t, w)
			p.waitReady(t)
			if code, body := p.get(t, "/healthz"); code != 200 || body != "ok\n" {
				t.Fatalf("/healthz = %d %q", code, body)
			}

			// The source never synced: the daemon syncs it at start.
			first := waitTask(t, w, p, "first sync", func(tk taskJSON) bool { return tk.Status != store.StatusRunning })
			wantTask(t, first, "staff", store.StatusSucceeded, countsJSON{Created: 20})
			if first.Trigger != "schedule" {
				t.Fatalf("the first sync has trigger %s, want schedule", first.Trigger)
			}
			// The task is recorded (committed) before the daemon observes
			// it in the metrics: wait for the counter rather than read once.
			var metrics string
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				_, metrics = p.get(t, "/metrics")
				if strings.Contains(metrics, `roster_sync_tasks_total{source="staff",status="succeeded",trigger="schedule"} 1`) || time.Now().After(deadline) {
					break
				}
			}
			for _, want := range []string{
				`roster_sync_tasks_total{source="staff",status="succeeded",trigger="schedule"} 1`,
				`roster_directory_users{source="staff",state="active"} 20`,
				`roster_config_last_reload_successful 1`,
			} {
				if !strings.Contains(metrics, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			// The duration observed is the task's, from started_at to finished_at.
			took := first.FinishedAt.Sub(*first.StartedAt).Seconds()
			if got := metricSum(metrics, "roster_sync_task_duration_seconds_sum", `source="staff"`); math.Abs(got-took) > 0.001 {
				t.Errorf("roster_sync_task_duration_seconds_sum{source=\"staff\"} is %v; the task ran %v s from started_at to finished_at", got, took)
			}

			// A changed file is synced by the watcher.
			people = append(people, person{ID: ext(21), First: "New", Last: "Person", Login: "user21"})
			w.write(t, "staff.csv", csvOf(people))
			watched := waitTask(t, w, p, "watch task", func(tk taskJSON) bool {
				return tk.Trigger == "watch" && tk.Status != store.StatusRunning
			})
			wantTask(t, watched, "staff", store.StatusSucceeded, countsJSON{Created: 1, Unchanged: 20})

			// SIGHUP: an invalid config is refused and the running one
			// stays; a valid one is taken.
			w.write(t, "roster.yaml", serveConfig(w, "    schedule: \"*/61 * * * *\"\n"))
			p.cmd.Process.Signal(syscall.SIGHUP)
			refused := p.waitLog(t, 30*time.Second, func(l map[string]any) bool {
				return l["msg"] == "configuration reload refused; the running configuration stays"
			})
			if err, _ := refused["err"].(string); !strings.Contains(err, "sources[0].schedule") {
				t.Errorf("the refusal does not name the key: %v", refused)
			}
			if _, metrics := p.get(t, "/metrics"); !strings.Contains(metrics, "roster_config_last_reload_successful 0\n") {
				t.Errorf("/metrics after a refused reload lacks roster_config_last_reload_successful 0")
			}
			w.write(t, "roster.yaml", serveConfig(w, "    schedule: \"@every 1h\"\n"))
			p.cmd.Process.Signal(syscall.SIGHUP)
			p.waitLog(t, 30*time.Second, func(l map[string]any) bool { return l["msg"] == "configuration reloaded" })
			if _, metrics := p.get(t, "/metrics"); !strings.Contains(metrics, "roster_config_last_reload_successful 1\n") {
				t.Errorf("/metrics after a reload lacks roster_config_last_reload_successful 1")
			}

			// One daemon per SQLite file; PostgreSQL takes replicas.
			if driver == store.SQLite {
				r := w.want(t, exitFailed, "serve")
				if !strings.Contains(r.stderr, "another roster serve is already running on "+w.dsn+" (lock "+w.dsn+".daemon.lock") {
					t.Errorf("a second serve on the SQLite file:\n%s", r)
				}
			} else {
				replica := startServeProc(t, w)
				replica.waitReady(t)
				if code := replica.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
					t.Errorf("the replica exited with %d; its log:\n%s", code, replica.stderr)
				}
			}

			if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
				t.Fatalf("SIGTERM: exit %d, want 0; the log:\n%s", code, p.stderr)
			}
			// Every task line names the source and the task.
			n := 0
			for _, l := range p.logLines(t) {
				msg, _ := l["msg"].(string)
				if strings.HasPrefix(msg, "task ") || strings.HasPrefix(msg, "sync skipped") {
					n++
					if l["source"] != "staff" || l["task"] == nil {
						t.Errorf("a task log line lacks its source or task id: %v", l)
					}
				}
			}
			if n < 4 {
				t.Errorf("only %d task log lines; the log:\n%s", n, p.stderr)
			}
			for _, tk := range w.tasks(t) {
				if tk.Status == store.StatusRunning {
					t.Errorf("task %d is still running after the daemon stopped", tk.ID)
				}
			}
		})
	}
}

// TestServeSecondSignalExitsAtOnce: the first SIGTERM waits for the
// running task (held up here by the test holding the source's lock), a
// second one exits without waiting.
func TestServeSecondSignalExitsAtOnce(t *testing.T) {
	w := newWorkdir(t, store.SQLite)
	w.write(t, "staff.csv", csvOf(basePeople()))
	w.write(t, "roster.yaml", serveConfig(w, ""))
	w.want(t, exitOK, "sync", "staff")

	s := w.open(t)
	defer s.Close()
	unlock, err := s.TryLockSource(context.Background(), "staff")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	p := startServeProc(t, w)
	p.waitReady(t)
	w.write(t, "staff.csv", csvOf(basePeople()[:19]))
	p.waitLog(t, 30*time.Second, func(l map[string]any) bool {
		return l["msg"] == "waiting: another task of the source is running" && l["source"] == "staff"
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, 30*time.Second, func(l map[string]any) bool {
		msg, _ := l["msg"].(string)
		return strings.HasPrefix(msg, "stopping: draining")
	})
	select {
	case <-p.exited:
		t.Fatalf("roster serve exited (%d) without waiting for the running task; its log:\n%s", p.code, p.stderr)
	case <-time.After(500 * time.Millisecond):
	}
	if code := p.signalAndWait(t, syscall.SIGTERM, 10*time.Second); code != exitFailed {
		t.Fatalf("second SIGTERM: exit %d, want %d; the log:\n%s", code, exitFailed, p.stderr)
	}
}
