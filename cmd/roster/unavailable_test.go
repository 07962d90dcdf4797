package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
)

// TestSCIMDatabaseGone: with PostgreSQL cut off (through a TCP proxy that
// closes every connection and refuses new ones), SCIM reads and writes
// answer 503 with Retry-After instead of 500, /readyz says "database
// unreachable" without the driver's words (host, user, database), which
// go to the log; once the database is back SCIM answers 200 again.
func TestSCIMDatabaseGone(t *testing.T) {
	w := newWorkdir(t, store.Postgres)
	u, err := url.Parse(w.dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, u.Host)
	u.Host = proxy.addr()
	w.dsn = u.String()
	w.write(t, "staff.csv", hostileStaff())
	w.write(t, "roster.yaml", hostileConfig(w))
	h := &hostileEnv{w: w, p: startServeProc(t, w)}
	h.p.waitReady(t)
	r := h.do(t, "GET", "/scim/v2/Users?filter="+q(`userName eq "alovelace"`)+"&attributes=id", hTokRead, nil, nil)
	for deadline := time.Now().Add(60 * time.Second); listTotal(t, "alovelace", r) != 1; r = h.do(t, "GET", "/scim/v2/Users?filter="+q(`userName eq "alovelace"`)+"&attributes=id", hTokRead, nil, nil) {
		if time.Now().After(deadline) {
			t.Fatalf("staff was not synced: %s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, id, _ := strings.Cut(string(r.body), `"id":"`)
	id, _, _ = strings.Cut(id, `"`)

	proxy.cut()
	r = h.do(t, "GET", "/readyz", "", nil, nil)
	if r.code != http.StatusServiceUnavailable || !strings.Contains(string(r.body), `"reason":"database unreachable"`) {
		t.Errorf("/readyz with the database gone: %s", r)
	}
	dsnHost, dsnPort, _ := strings.Cut(proxy.addr(), ":")
	for _, detail := range []string{"postgres", "user=", "database=", dsnHost, dsnPort, "refused", "dial"} {
		if strings.Contains(string(r.body), detail) {
			t.Errorf("/readyz shows %q to anyone: %s", detail, r)
		}
	}
	for _, c := range []struct{ method, path, token, body string }{
		{"GET", "/scim/v2/Users", hTokRead, ""},
		{"GET", "/scim/v2/Users?filter=" + q(`userName sw "a"`), hTokRead, ""},
		{"GET", "/scim/v2/Users/" + id, hTokRead, ""},
		{"GET", "/scim/v2/Groups", hTokRead, ""},
		{"POST", "/scim/v2/Users", hTokWrite, scimUser("outage", "")},
		{"DELETE", "/scim/v2/Users/" + id, hTokWrite, ""},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		r := h.do(t, c.method, c.path, c.token, body, nil)
		scimErr(t, c.method+" "+c.path+" with the database gone", r, http.StatusServiceUnavailable, "")
		if got := r.header.Get("Retry-After"); got != "5" {
			t.Errorf("%s %s: Retry-After %q, want 5", c.method, c.path, got)
		}
		for _, detail := range []string{dsnHost, dsnPort, "refused", "postgres"} {
			if strings.Contains(string(r.body), detail) {
				t.Errorf("%s %s shows %q: %s", c.method, c.path, detail, r)
			}
		}
	}
	// A push is refused the same way, without the database's address.
	push := `{"dataType":"user","records":[{"uid":"o1","username":"outage"}]}`
	r = h.do(t, "POST", "/api/v1/sources/api/push", hTokPushAPI, push, nil)
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("a push with the database gone: %s, Retry-After %q; want 503 with Retry-After", r, r.header.Get("Retry-After"))
	}
	for _, detail := range []string{dsnHost, dsnPort, "user=", "database="} {
		if strings.Contains(string(r.body), detail) {
			t.Errorf("a push with the database gone shows %q: %s", detail, r)
		}
	}
	if logs := h.p.stderr.String(); !strings.Contains(logs, `"msg":"not ready"`) || !strings.Contains(logs, proxy.addr()) {
		t.Errorf("the log does not say why the daemon is not ready, with the database's address:\n%s", truncate(logs, 4000))
	}

	proxy.restore()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := h.do(t, "GET", "/scim/v2/Users/"+id, hTokRead, nil, nil)
		if r.code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SCIM is %s 30s after the database came back", r)
		}
	}
	if r := h.do(t, "GET", "/readyz", "", nil, nil); r.code != http.StatusOK {
		t.Errorf("/readyz after the database came back: %s", r)
	}
}
