package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
)

// TestServeWaitsForTheDatabase: roster serve started while PostgreSQL
// does not answer keeps running (it used to exit 1 at once, a restart
// loop under systemd or Kubernetes): /healthz answers 200, /readyz,
// SCIM, the admin API and the push API 503 with Retry-After, and the log
// says why and when it tries again. Once the database answers, the schema
// is migrated, the sources start and /readyz answers 200.
func TestServeWaitsForTheDatabase(t *testing.T) {
	w := newWorkdir(t, store.Postgres)
	u, err := url.Parse(w.dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, u.Host)
	proxy.cut() // every connection is refused until restore
	u.Host = proxy.addr()
	w.dsn = u.String()
	w.write(t, "staff.csv", csvOf(basePeople()))
	w.write(t, "roster.yaml", serveConfig(w, "  - name: api\n    type: push\n"))
	p := launchServe(t, w, nil)

	p.waitLog(t, 30*time.Second, func(l map[string]any) bool {
		return l["msg"] == "the database does not answer: /healthz is served, /readyz and every other route answer 503 until it does" &&
			l["attempt"] == float64(2)
	})
	if code, body := p.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while the database does not answer: %d %s", code, body)
	}
	code, body := p.get(t, "/readyz")
	var ready struct{ Status, Reason string }
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != http.StatusServiceUnavailable || ready.Reason != "database unreachable" {
		t.Fatalf("/readyz while the database does not answer: %d %s", code, body)
	}
	for _, r := range []struct{ method, path, want string }{
		{"GET", "/scim/v2/Users", `"status":"503"`},
		{"GET", "/api/v1/sources", `"error":"roster is starting and waits for its database`},
		{"POST", "/api/v1/sources/api/push", `"error":"roster is starting and waits for its database`},
		{"POST", "/api/userData:push", `"code":503`},
	} {
		req, _ := http.NewRequest(r.method, p.base+r.path, strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), r.want) {
			t.Errorf("%s %s before the database answers: %d Retry-After %q %s; want 503 with Retry-After and %s",
				r.method, r.path, resp.StatusCode, resp.Header.Get("Retry-After"), b, r.want)
		}
	}
	if strings.Contains(p.stderr.String(), `"msg":"roster is running"`) {
		t.Fatal("roster says it is running before the database answered")
	}

	proxy.restore()
	p.waitReady(t)
	p.waitLog(t, 30*time.Second, func(l map[string]any) bool { return l["msg"] == "database migrated" })
	p.waitLog(t, 30*time.Second, func(l map[string]any) bool { return l["msg"] == "roster is running" })
	waitSourceTask(t, w, p, "staff", "first sync of staff", 30*time.Second, func(tk taskJSON) bool { return tk.Status == store.StatusSucceeded })
	if code, body := p.get(t, "/scim/v2/Users?count=1"); code != http.StatusUnauthorized {
		// No token configured: the SCIM handler itself answers now.
		t.Fatalf("/scim/v2/Users once up: %d %s; want the handler's 401", code, body)
	}
	if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
	}
}

// TestServeStopsWhileWaitingForTheDatabase: SIGTERM while roster waits
// for its database ends it at once with 0.
func TestServeStopsWhileWaitingForTheDatabase(t *testing.T) {
	w := newWorkdir(t, store.Postgres)
	w.dsn = "postgres://roster@" + closedPort(t) + "/roster?sslmode=disable"
	w.write(t, "staff.csv", csvOf(basePeople()))
	w.write(t, "roster.yaml", serveConfig(w, ""))
	p := launchServe(t, w, nil)
	p.waitLog(t, 30*time.Second, func(l map[string]any) bool { return l["attempt"] == float64(1) })
	start := time.Now()
	if code := p.signalAndWait(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("SIGTERM while waiting for the database: exit %d; the log:\n%s", code, p.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("SIGTERM while waiting for the database took %s", d)
	}
}

// closedPort is a TCP address on loopback that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestServeReloadRefusesPublishedToken: a SIGHUP that brings in a token
// printed in roster's examples is refused, naming the entry; the running
// configuration stays.
func TestServeReloadRefusesPublishedToken(t *testing.T) {
	w := newWorkdir(t, store.SQLite)
	w.write(t, "staff.csv", csvOf(basePeople()))
	w.write(t, "roster.yaml", serveConfig(w, ""))
	p := startServeProc(t, w)
	p.waitReady(t)
	w.write(t, "roster.yaml", serveConfig(w, "")+
		"tokens:\n  - name: ops\n    hash: sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9\n    scopes: [admin]\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	refused := p.waitLog(t, 30*time.Second, func(l map[string]any) bool {
		return l["msg"] == "configuration reload refused; the running configuration stays"
	})
	if err, _ := refused["err"].(string); !strings.Contains(err, `tokens[0].hash: token "ops" has the hash of "bar"`) || strings.Contains(err, "fcde2b2e") {
		t.Fatalf("the refusal says %q; want it to name tokens[0] and \"bar\", not the hash", err)
	}
	if code, _ := p.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after the refused reload: %d", code)
	}
}
