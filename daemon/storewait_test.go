package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterd/roster/config"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// Run migrates the store it is given (roster serve no longer does) before
// it opens the routes and starts the sources: on an empty database the
// daemon gets ready with the latest schema and syncs its csv source.
func TestRunMigratesAnEmptyStore(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			st, err := store.Connect(driver, storetest.DSN(t, driver))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			dir := t.TempDir()
			writeFile(t, dir+"/staff.csv", people(3))
			h := startConfig(t, st, loadConfig(t, dir, staffConfig("watch: false")))
			v, err := st.SchemaVersion(context.Background())
			if err != nil || v != store.Latest() {
				t.Fatalf("schema version after Run started = %d, %v; want %d", v, err, store.Latest())
			}
			if code, body := h.get("/readyz"); code != http.StatusOK || !strings.Contains(body, `"schema_version"`) {
				t.Fatalf("/readyz = %d %s", code, body)
			}
			h.waitQuiet()
			if ts := h.finished("staff"); len(ts) != 1 || ts[0].Status != store.StatusSucceeded {
				t.Fatalf("tasks of staff: %v; want the first sync, succeeded", statuses(ts))
			}
		})
	}
}

// gateProxy forwards TCP connections to target once opened; before, it
// accepts and closes them at once, as a database that is not up yet.
type gateProxy struct {
	ln     net.Listener
	target string
	open   atomic.Bool
}

func startGateProxy(t *testing.T, target string) *gateProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &gateProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !p.open.Load() {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(s, c); s.Close() }() //nolint:errcheck // either side closing ends it
			go func() { io.Copy(c, s); c.Close() }() //nolint:errcheck
		}
	}()
	return p
}

// While PostgreSQL does not answer at start, the daemon listens: /healthz
// answers, /readyz and the admin API answer 503 with Retry-After, and a
// reload is taken (its sources are recorded once the database answers).
// Then everything starts with the configuration in force.
func TestRunWaitsForTheDatabase(t *testing.T) {
	dsn := storetest.DSN(t, store.Postgres)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startGateProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	st, err := store.Connect(store.Postgres, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "staff.csv"), people(3))
	writeFile(t, filepath.Join(dir, "hr.csv"), "90001,Hana,Roe,hroe,hroe@example.com,HR,\n90002,Ida,Poe,ipoe,ipoe@example.com,HR,\n")
	cfg := loadConfig(t, dir, staffConfig("watch: false"))
	d, reg := newDaemon(t, st, cfg)
	d.StoreBackoff, d.MaxStoreBackoff = 20*time.Millisecond, 100*time.Millisecond
	waits := make(chan error, 100)
	d.StoreWaiting = func(err error) {
		select {
		case waits <- err:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, d: d, st: st, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- d.Run(ctx) }()
	t.Cleanup(func() { h.stop() })
	select {
	case <-d.Listening():
	case err := <-h.done:
		t.Fatalf("Run ended while the database did not answer: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not listen within 30s")
	}
	h.base = "http://" + d.Addr().String()
	for range 3 {
		if err := <-waits; !store.IsUnavailable(err) {
			t.Fatalf("StoreWaiting got %v; want an unavailable database", err)
		}
	}
	if code, body := h.get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while waiting: %d %s", code, body)
	}
	if code, body := h.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, reasonUnreachable) {
		t.Fatalf("/readyz while waiting: %d %s", code, body)
	}
	resp, err := http.Get(h.base + "/api/v1/sources")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("admin API while waiting: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	select {
	case <-d.Ready():
		t.Fatal("Ready while the database does not answer")
	default:
	}

	withHR := loadConfig(t, dir, staffConfig("watch: false")+"  - name: hr\n    type: csv\n    path: hr.csv\n    watch: false\n")
	if err := d.Reload(ctx, func() (*config.Config, error) { return withHR, nil }); err != nil {
		t.Fatalf("reload while waiting for the database: %v", err)
	}

	proxy.open.Store(true)
	select {
	case <-d.Ready():
	case err := <-h.done:
		t.Fatalf("Run ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready 30s after the database answered")
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz once up: %d %s", code, body)
	}
	h.waitQuiet()
	for _, src := range []string{"staff", "hr"} {
		if ts := h.finished(src); len(ts) != 1 || ts[0].Status != store.StatusSucceeded {
			t.Errorf("tasks of %s: %v; want its first sync, succeeded", src, statuses(ts))
		}
	}
}
