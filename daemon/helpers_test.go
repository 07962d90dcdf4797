package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
)

// people returns n CSV rows, people 1..n.
func people(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%05d,Given%d,Family%d,user%d,user%d@example.com,Team,\n", i, i, i, i, i)
	}
	return b.String()
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// loadConfig writes roster.yaml into dir and loads it. The listener is
// 127.0.0.1:0 unless the YAML says otherwise.
func loadConfig(t testing.TB, dir, yaml string) *config.Config {
	t.Helper()
	if !strings.Contains(yaml, "listen:") {
		yaml = "listen: 127.0.0.1:0\n" + yaml
	}
	if !strings.Contains(yaml, "log:") {
		yaml = "log:\n  dir: log\n" + yaml
	}
	path := filepath.Join(dir, "roster.yaml")
	writeFile(t, path, yaml)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// staffConfig is one csv source, staff, reading staff.csv; extra lines
// are added to the source.
func staffConfig(extra ...string) string {
	y := "sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n"
	for _, e := range extra {
		y += "    " + e + "\n"
	}
	return y
}

func testLogger() *slog.Logger {
	if os.Getenv("ROSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// harness is a running daemon on a real store and a real listener.
type harness struct {
	t      testing.TB
	d      *Daemon
	st     *store.Store
	reg    *prometheus.Registry
	base   string
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

// newDaemon builds a daemon with test timings.
func newDaemon(t testing.TB, st *store.Store, cfg *config.Config) (*Daemon, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	d, err := New(cfg, st, testLogger(), reg)
	if err != nil {
		t.Fatal(err)
	}
	d.PollInterval = 20 * time.Millisecond
	d.Debounce = 300 * time.Millisecond
	d.RetryBackoff = 100 * time.Millisecond
	d.Drain = 10 * time.Second
	return d, reg
}

// start runs d until the test ends, and waits until it is ready.
func start(t testing.TB, d *Daemon, st *store.Store, reg *prometheus.Registry) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, d: d, st: st, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-h.done:
		cancel()
		t.Fatalf("Run ended before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("the daemon did not get ready within 30s")
	}
	scheme := "http"
	if d.Config().TLS.Enabled() {
		scheme = "https"
	}
	h.base = scheme + "://" + d.Addr().String()
	t.Cleanup(func() { h.stop() })
	return h
}

// startConfig builds and starts a daemon for cfg.
func startConfig(t testing.TB, st *store.Store, cfg *config.Config, tune ...func(*Daemon)) *harness {
	t.Helper()
	d, reg := newDaemon(t, st, cfg)
	for _, f := range tune {
		f(d)
	}
	return start(t, d, st, reg)
}

// stop cancels Run and returns its error; it may be called again.
func (h *harness) stop() error {
	if h.ended {
		return h.err
	}
	h.cancel()
	select {
	case h.err = <-h.done:
	case <-time.After(time.Minute):
		h.t.Fatal("Run did not return within a minute of being cancelled")
	}
	h.ended = true
	return h.err
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tasks returns the source's tasks, oldest first.
func (h *harness) tasks(source string) []store.Task {
	h.t.Helper()
	list, _, err := h.st.ListTasks(context.Background(), store.TaskFilter{Source: source, Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	slices.Reverse(list)
	return list
}

// finished returns the source's tasks that have ended.
func (h *harness) finished(source string) []store.Task {
	var out []store.Task
	for _, t := range h.tasks(source) {
		if t.Status != store.StatusRunning && t.Status != store.StatusQueued {
			out = append(out, t)
		}
	}
	return out
}

func (h *harness) queue(source string) *queue {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	return h.d.queues[source]
}

// quiet reports whether nothing runs, waits in a queue, waits for a retry
// or waits for a file to settle.
func (h *harness) quiet() bool {
	h.d.mu.Lock()
	qs := make([]*queue, 0, len(h.d.queues))
	for _, q := range h.d.queues {
		qs = append(qs, q)
	}
	timers := len(h.d.timers)
	h.d.mu.Unlock()
	for _, q := range qs {
		if !q.idle() {
			return false
		}
	}
	return timers == 0 && !h.d.watching.pending()
}

func (h *harness) waitQuiet() {
	h.t.Helper()
	eventually(h.t, 60*time.Second, "the daemon is still busy", h.quiet)
}

// get fetches a path from the main listener.
func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	return get(h.t, http.DefaultClient, h.base+path)
}

func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// statuses lists "trigger/status" of tasks, for messages and comparisons.
func statuses(ts []store.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Trigger+"/"+t.Status)
	}
	return out
}
