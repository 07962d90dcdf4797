package daemon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestHostileServerTimeouts: every listener bounds slow clients. The
// header timeout (slow-loris) is observed over a socket by the
// end-to-end suite (cmd/roster TestHostile), slow bodies by
// TestHostileSlowBodies; ReadTimeout backs up the body rule for routes
// mounted without Handle, so the values are asserted here.
func TestHostileServerTimeouts(t *testing.T) {
	d := &Daemon{log: slog.New(slog.DiscardHandler), mux: http.NewServeMux(), metricsMux: http.NewServeMux()}
	cfg := &config.Config{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"}
	servers, err := d.listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 2 {
		t.Fatalf("%d listeners, want 2", len(servers))
	}
	for _, s := range servers {
		s.ln.Close()
		switch {
		case s.ReadHeaderTimeout <= 0 || s.ReadHeaderTimeout > 30*time.Second:
			t.Errorf("%s: ReadHeaderTimeout %s", s.name, s.ReadHeaderTimeout)
		case s.ReadTimeout <= 0 || s.ReadTimeout > time.Minute:
			t.Errorf("%s: ReadTimeout %s: a stalled body must be cut off", s.name, s.ReadTimeout)
		case s.WriteTimeout <= 0 || s.WriteTimeout < s.ReadTimeout:
			t.Errorf("%s: WriteTimeout %s below ReadTimeout %s", s.name, s.WriteTimeout, s.ReadTimeout)
		case s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 1<<20:
			t.Errorf("%s: IdleTimeout %s, MaxHeaderBytes %d", s.name, s.IdleTimeout, s.MaxHeaderBytes)
		}
	}
}

// slowClient speaks HTTP/1.1 over a raw socket, to send a body as slowly
// as it likes, and records the answer and when the server closed.
type slowClient struct {
	conn   net.Conn
	start  time.Time
	mu     sync.Mutex
	answer bytes.Buffer
	closed chan struct{}
}

func dialSlow(t *testing.T, addr, method, path, header string, length int) *slowClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &slowClient{conn: conn, start: time.Now(), closed: make(chan struct{})}
	go func() {
		defer close(c.closed)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			c.mu.Lock()
			c.answer.Write(buf[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: roster\r\nContent-Length: %d\r\n%s\r\n", method, path, length, header)
	return c
}

// send writes b unless the server closed; it reports whether it did.
func (c *slowClient) send(b []byte) bool {
	select {
	case <-c.closed:
		return false
	default:
	}
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.conn.Write(b)
	return err == nil
}

// drip sends a byte every interval until the server closes or limit
// passes, and returns how long after the start the server closed.
func (c *slowClient) drip(t *testing.T, interval, limit time.Duration) time.Duration {
	t.Helper()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-c.closed:
			return time.Since(c.start)
		case <-tick.C:
			if time.Since(c.start) > limit {
				t.Fatalf("the slow client is still connected after %s", limit)
			}
			c.send([]byte("a"))
		}
	}
}

func (c *slowClient) status() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	line, _, _ := strings.Cut(c.answer.String(), "\r\n")
	return line
}

func (c *slowClient) body() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, b, _ := strings.Cut(c.answer.String(), "\r\n\r\n")
	return b
}

// TestHostileSlowBodies: over a real socket, a client that sends its body
// a byte at a time is cut off after bodyGrace when it is unauthenticated
// and must be read (the login form), and at once after its refusal when
// it is not (a push with a wrong token); an authenticated upload that
// stalls is cut off when it falls below bodyMinRate, and one that keeps
// that rate is read to its end however long it takes. Before, each slow
// client held its connection for the 5-minute ReadTimeout. The body rule
// involves no storage, so one store (SQLite) is enough.
func TestHostileSlowBodies(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "staff.csv"), people(3))
	sum := sha256.Sum256([]byte("admin-token"))
	cfg := loadConfig(t, dir, "limits:\n  push_body: 16MiB\n"+
		"tokens:\n  - name: ops\n    hash: sha256:"+hex.EncodeToString(sum[:])+"\n    scopes: [admin]\n"+
		staffConfig("watch: false")+"  - name: api\n    type: push\n")
	h := startConfig(t, st, cfg)
	eventually(t, 30*time.Second, "no first sync", func() bool { return len(h.finished("staff")) == 1 })
	h.waitQuiet()
	addr := h.d.Addr().String()
	const form = "Content-Type: application/x-www-form-urlencoded\r\n"
	const admin = "Authorization: Bearer admin-token\r\nContent-Type: text/csv\r\n"

	t.Run("login", func(t *testing.T) {
		t.Parallel()
		c := dialSlow(t, addr, "POST", "/admin/login", form, 1000)
		c.send([]byte("token="))
		d := c.drip(t, 300*time.Millisecond, 40*time.Second)
		t.Logf("a login form sent a byte at a time was cut off after %s: %s", d.Round(time.Millisecond), c.status())
		if d < bodyGrace-time.Second || d > bodyGrace+5*time.Second {
			t.Errorf("cut off after %s, want about bodyGrace (%s)", d, bodyGrace)
		}
	})
	t.Run("refused push", func(t *testing.T) {
		t.Parallel()
		c := dialSlow(t, addr, "POST", "/api/v1/sources/api/push", "Authorization: Bearer wrong\r\nContent-Type: application/json\r\n", 1<<20)
		c.send([]byte(`{"dataType":"user","records":[`))
		d := c.drip(t, 200*time.Millisecond, 40*time.Second)
		t.Logf("a refused push sent a byte at a time was cut off after %s: %s", d.Round(time.Millisecond), c.status())
		if !strings.Contains(c.status(), " 401 ") || d > unreadGrace+3*time.Second {
			t.Errorf("answered %q and cut off after %s, want 401 and about unreadGrace (%s)", c.status(), d, unreadGrace)
		}
	})
	t.Run("stalled upload", func(t *testing.T) {
		t.Parallel()
		c := dialSlow(t, addr, "PUT", "/api/v1/sources/staff/file", admin, 8<<20)
		c.send(bytes.Repeat([]byte("x"), 512<<10))
		want := bodyGrace + 4*time.Second // 512 KiB at 128 KiB/s
		d := c.drip(t, 2*time.Second, 60*time.Second)
		t.Logf("an upload that stalled after 512 KiB was cut off after %s: %s %s", d.Round(time.Millisecond), c.status(), c.body())
		if d < want-2*time.Second || d > want+5*time.Second {
			t.Errorf("cut off after %s, want about %s", d, want)
		}
		if !strings.Contains(c.status(), " 408 ") || !strings.Contains(c.body(), "too slowly") {
			t.Errorf("the answer does not say why: %s %s", c.status(), c.body())
		}
	})
	t.Run("steady upload", func(t *testing.T) {
		t.Parallel()
		// 2.5 MiB at 256 KiB/s: longer than bodyGrace, faster than
		// bodyMinRate. The last line is invalid, so that the answer proves
		// the whole file was read, and no sync runs.
		rows := people(42000)
		rows = rows[:2560<<10-40]
		rows = rows[:strings.LastIndexByte(rows, '\n')+1] + "99999,Bad,Mail,bad,bad@,,\n"
		lastLine := strings.Count(rows, "\n")
		c := dialSlow(t, addr, "PUT", "/api/v1/sources/staff/file", admin+"Connection: close\r\n", len(rows))
		for i := 0; i < len(rows); i += 64 << 10 {
			if !c.send([]byte(rows[i:min(i+64<<10, len(rows))])) {
				t.Fatalf("the server closed after %s, %d bytes: %s %s", time.Since(c.start), i, c.status(), c.body())
			}
			time.Sleep(250 * time.Millisecond)
		}
		select {
		case <-c.closed:
		case <-time.After(30 * time.Second):
		}
		took := time.Since(c.start)
		if took < bodyGrace || !strings.Contains(c.status(), " 400 ") || !strings.Contains(c.body(), fmt.Sprintf("line %d", lastLine)) {
			t.Errorf("after %s: %s %.300s; want the whole file read and its line %d refused", took, c.status(), c.body(), lastLine)
		}
	})
}
