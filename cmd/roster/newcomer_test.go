package main

// What a newcomer meets first: the listen address given on the command
// line or in the environment, the order of the stop log, exit codes that
// tell a usage error from a wrong state, read-only commands that leave an
// empty folder empty.

import (
	"bytes"
	"image"
	"image/png"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon"
	"github.com/rosterd/roster/daemon/store"
)

// TestServeListenOverride: --listen beats $ROSTER_LISTEN beats the
// config's listen; a bad address is a configuration error (exit 2) naming
// where it came from; a reload keeps the override; on SIGTERM the log says
// why before it says "stopped". The address does not touch the store, so
// SQLite is enough.
func TestServeListenOverride(t *testing.T) {
	// The config's own address is taken, so a serve that used it would fail.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := busy.Addr().String()

	w := newWorkdir(t, store.SQLite)
	w.write(t, "staff.csv", csvOf(basePeople()))
	cfg := strings.Replace(serveConfig(w, ""), "listen: 127.0.0.1:0", "listen: "+taken, 1)
	w.write(t, "roster.yaml", cfg)

	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string // in the error
	}{
		{"flag", nil, []string{"--listen", "localhost"}, `--listen: listen: "localhost" is not a host:port address`},
		{"env", []string{"ROSTER_LISTEN=127.0.0.1:99999"}, nil, `$ROSTER_LISTEN: listen: port "99999" is not a number`},
	} {
		r := runRoster(t, w.dir, "", c.env, append([]string{"serve"}, c.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: want exit %d and %q, got:\n%s", c.name, exitUsage, c.want, r)
		}
	}

	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		{"env beats the config", []string{"ROSTER_LISTEN=127.0.0.1:0"}, nil},
		{"flag beats env", []string{"ROSTER_LISTEN=" + taken}, []string{"--listen", "127.0.0.1:0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startServeWith(t, w, c.env, c.args...)
			if p.base == "http://"+taken {
				t.Fatalf("serve listens on the config's address %s", taken)
			}
			p.waitReady(t)
			if l := clearTextWarning(p.logLines(t)); l != nil {
				t.Errorf("a loopback listener was warned about as beyond loopback: %v", l)
			}

			// A reload re-reads the file; the address given outside it stays
			// and is no change that needs a restart.
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			p.waitLog(t, 30*time.Second, func(l map[string]any) bool { return l["msg"] == "configuration reloaded" })
			for _, l := range p.logLines(t) {
				if l["key"] == "listen" {
					t.Errorf("the reload took the overridden address for a change: %v", l)
				}
			}
			if code, _ := p.get(t, "/healthz"); code != 200 {
				t.Fatalf("/healthz after the reload: %d", code)
			}

			if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
				t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
			}
			order := map[string]int{}
			for i, l := range p.logLines(t) {
				msg, _ := l["msg"].(string)
				for _, prefix := range []string{"signal received", "stopping: draining", "stopped"} {
					if strings.HasPrefix(msg, prefix) {
						order[prefix] = i
					}
				}
			}
			if len(order) != 3 || order["signal received"] > order["stopping: draining"] || order["stopping: draining"] > order["stopped"] {
				t.Errorf("the stop log is out of order (line of each: %v):\n%s", order, p.stderr)
			}
		})
	}

	// Every interface, without TLS: tokens would cross the network in
	// clear text, and the log says so at start.
	t.Run("beyond loopback warns", func(t *testing.T) {
		p := startServeWith(t, w, nil, "--listen", "0.0.0.0:0")
		l := clearTextWarning(p.logLines(t))
		if l == nil || l["level"] != "WARN" || l["listen"] != "0.0.0.0:0" {
			t.Errorf("no warning of a listener beyond loopback without TLS (got %v); the log:\n%s", l, p.stderr)
		}
		if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
			t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
		}
	})
}

// clearTextWarning returns the log line that warns of a listener beyond
// loopback without TLS, or nil.
func clearTextWarning(lines []map[string]any) map[string]any {
	for _, l := range lines {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "listening beyond loopback without TLS") {
			return l
		}
	}
	return nil
}

// TestDemoPlanBeforeApply plays the README's demo on a copy of
// deploy/examples (as `make demo` runs it in demo/): the staff source syncs
// at start, an edit of the copy's staff.csv is not applied behind the
// operator's back, so `--dry-run` shows the plan first and `roster sync`
// applies that plan; an upload through the admin API changes the copy
// only. The example's store is SQLite.
func TestDemoPlanBeforeApply(t *testing.T) {
	examples := filepath.Join("..", "..", "deploy", "examples")
	shipped := func(name string) string {
		b, err := os.ReadFile(filepath.Join(examples, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cfg, staff := shipped("roster.yaml"), shipped("staff.csv")
	w := &workdir{dir: t.TempDir(), driver: store.SQLite, dsn: "roster.db"}
	// As shipped, but logging JSON, which the test reads.
	if !strings.Contains(cfg, "log:\n  dir: log\n") {
		t.Fatalf("deploy/examples/roster.yaml no longer has the log section this test extends:\n%s", cfg)
	}
	w.write(t, "roster.yaml", strings.Replace(cfg, "log:\n  dir: log\n", "log:\n  dir: log\n  format: json\n", 1))
	w.write(t, "staff.csv", staff)

	p := startServeWith(t, w, nil, "--listen", "127.0.0.1:0")
	p.waitReady(t)
	first := waitTask(t, w, p, "first sync", func(tk taskJSON) bool { return tk.Status != store.StatusRunning })
	wantTask(t, first, "staff", store.StatusSucceeded, countsJSON{Created: 40})

	// Edit the copy as the README says: one line less, one e-mail changed.
	lines := strings.SplitAfter(staff, "\n")
	edited := strings.Replace(strings.Join(lines[1:], ""), "thomas.mueller@", "t.mueller@", 1)
	if edited == strings.Join(lines[1:], "") {
		t.Fatal("deploy/examples/staff.csv no longer holds thomas.mueller@; the test's edit changes nothing")
	}
	w.write(t, "staff.csv", edited)
	// Longer than the watcher's poll and debounce: were the source watched,
	// the edit would be applied by now.
	time.Sleep(daemonWatchSettle)
	if n := len(w.tasks(t, "--source", "staff")); n != 1 {
		t.Fatalf("the edit was synced without being asked (%d tasks); the demo's source must not watch", n)
	}
	plan := w.run(t, "sync", "staff", "--dry-run", "--json")
	if plan.code != exitOK || !strings.Contains(plan.stdout, `"deactivated": 1`) || !strings.Contains(plan.stdout, `"updated": 1`) {
		t.Fatalf("the dry run does not show the edit's plan:\n%s", plan)
	}
	applied := w.task(t, exitOK, "sync", "staff", "--json")
	wantTask(t, applied, "staff", store.StatusSucceeded, countsJSON{Updated: 1, Deactivated: 1, Unchanged: 38})

	// An upload replaces the copy's file, never the shipped one.
	req, err := http.NewRequest(http.MethodPut, p.base+"/api/v1/sources/staff/file", strings.NewReader(staff))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer roster-demo-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %s", resp.Status)
	}
	if got := w.read(t, "staff.csv"); got != staff {
		t.Errorf("the upload did not replace the copy's staff.csv")
	}
	if got := shipped("staff.csv"); got != staff {
		t.Errorf("the upload changed deploy/examples/staff.csv")
	}
	if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
	}
}

// daemonWatchSettle is more than the daemon's poll interval and debounce
// together (daemon.DefaultPollInterval, daemon.DefaultDebounce).
var daemonWatchSettle = daemon.DefaultPollInterval + daemon.DefaultDebounce + 2*time.Second

// TestReadOnlyCommandsCreateNoStore: sources, tasks and task in a folder
// (or on a PostgreSQL schema) without a store exit 4 with a clear error and
// create nothing, as does a refused sync of a disabled source; without a config they say on stderr that the built-in
// default is in use. Once a sync made the store they read it.
func TestReadOnlyCommandsCreateNoStore(t *testing.T) {
	readOnly := [][]string{{"sources"}, {"tasks"}, {"task", "1"}, {"sources", "--json"}}

	t.Run("no config", func(t *testing.T) {
		dir := t.TempDir()
		for _, args := range readOnly {
			r := runRoster(t, dir, "", nil, args...)
			if r.code != exitNotFound || !strings.Contains(r.stderr, "using the built-in default") ||
				!strings.Contains(r.stderr, "no roster store at "+filepath.Join(dir, "roster.db")) {
				t.Errorf("want exit %d, the default config named and no store:\n%s", exitNotFound, r)
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("read-only commands left %d files in an empty folder (%s, ...)", len(entries), entries[0].Name())
		}
	})

	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			w := newWorkdir(t, driver)
			w.writeConfig(t, settings{})
			for _, args := range readOnly {
				r := w.want(t, exitNotFound, args...)
				if !strings.Contains(r.stderr, "nothing has run with this configuration yet") || strings.Contains(r.stderr, "built-in default") {
					t.Errorf("no store:\n%s", r)
				}
			}
			// A disabled source refuses a sync (its state, not the usage)
			// before the store is opened, so the refusal creates nothing.
			w.write(t, "roster.yaml", w.read(t, "roster.yaml")+"  - name: off\n    type: csv\n    path: off.csv\n    enabled: false\n")
			if r := w.want(t, exitRefused, "sync", "off"); !strings.Contains(r.stderr, "disabled") || strings.Contains(r.stderr, "usage:") {
				t.Errorf("sync of a disabled source:\n%s", r)
			}
			if ok, err := store.Exists(t.Context(), driver, w.dsn); err != nil || ok {
				t.Fatalf("after the read-only commands a store exists (%v, %v)", ok, err)
			}
			if driver == store.SQLite {
				if entries, _ := os.ReadDir(w.dir); len(entries) != 1 {
					t.Errorf("read-only commands left files beside roster.yaml: %v", entries)
				}
			}

			// A file with one bad e-mail: the list counts "1 error".
			people := basePeople()
			people[3].Email = "nobody@"
			w.write(t, "staff.csv", csvOf(people))
			w.want(t, exitFailed, "sync", "staff")
			r := w.want(t, exitOK, "tasks")
			if !strings.Contains(r.stdout, " 1 error\n") || strings.Contains(r.stdout, "1 errors") {
				t.Errorf("tasks of a task with one error:\n%s", r)
			}
			w.want(t, exitOK, "sources")
			w.want(t, exitOK, "task", "1")
			w.want(t, exitNotFound, "task", "2")
		})
	}
}

// TestSamePixels: `make screenshots` compares what a PNG shows, not its
// bytes: the same image encoded otherwise is the same, one pixel or the
// size changed is not, and a broken file is replaced.
func TestSamePixels(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	encode := func(m image.Image, level png.CompressionLevel) []byte {
		var b bytes.Buffer
		if err := (&png.Encoder{CompressionLevel: level}).Encode(&b, m); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	fast, best := encode(img, png.BestSpeed), encode(img, png.BestCompression)
	if bytes.Equal(fast, best) {
		t.Fatal("the two encodings are the same bytes; the test would prove nothing")
	}
	changed := image.NewNRGBA(img.Rect)
	copy(changed.Pix, img.Pix)
	changed.Pix[4*(12*40+17)]++
	smaller := img.SubImage(image.Rect(0, 0, 40, 29))
	for _, c := range []struct {
		name string
		old  []byte
		same bool
	}{
		{"other encoding", best, true},
		{"one pixel", encode(changed, png.BestSpeed), false},
		{"other size", encode(smaller, png.BestSpeed), false},
		{"not a PNG", []byte("\x89PNG broken"), false},
	} {
		same, err := samePixels(c.old, fast)
		if err != nil || same != c.same {
			t.Errorf("%s: samePixels = %v, %v; want %v", c.name, same, err, c.same)
		}
	}
}
