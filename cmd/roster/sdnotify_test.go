package main

import (
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
)

// TestServeNotifiesSystemd: under a Type=notify unit with a watchdog,
// roster serve reports READY=1 once it serves, then its status, pings
// WATCHDOG=1 and says STOPPING=1 on SIGTERM.
func TestServeNotifiesSystemd(t *testing.T) {
	w := newWorkdir(t, store.SQLite)
	w.write(t, "staff.csv", csvOf(basePeople()))
	w.write(t, "roster.yaml", serveConfig(w, ""))
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w.env = append(w.env, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000")

	p := startServeProc(t, w)
	read := func() string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 256)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification from roster serve: %v\n%s", err, p.stderr)
		}
		return string(buf[:n])
	}
	if got := read(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	p.waitReady(t)
	// The status line says it runs (once the database answered, which an
	// SQLite file does at once), then the watchdog pings.
	if got := read(); got != "STATUS=running" {
		t.Fatalf("second notification %q, want STATUS=running", got)
	}
	if got := read(); got != "WATCHDOG=1" {
		t.Fatalf("third notification %q, want WATCHDOG=1", got)
	}
	if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Fatalf("roster serve exited %d after SIGTERM", code)
	}
	for {
		got := read()
		if got == "STOPPING=1" {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("notification %q, want STOPPING=1", got)
		}
	}
}
