package main

// Operations of a sink against a second `roster serve` (SPEC §12): two
// replicas on one store, of which exactly one delivers and the other
// takes over when it dies; and a service that is stopped and started again
// in the middle of a delivery.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// takeoverBound is how soon after the delivering replica dies the other
// one must deliver: it tries the sink's lock every interval (200ms here),
// and the lock goes with the dead process at once (PostgreSQL ends the
// session when the kernel closes the killed process's socket; the kernel
// drops a dead process's flock). The rest is slack for a loaded machine.
const takeoverBound = 15 * time.Second

// sinkTokenHash is roster.yaml's hash of sinkToken.
func sinkTokenHash() string {
	sum := sha256.Sum256([]byte(sinkToken))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// startPeer starts a roster (SQLite, a writable scim source "idp") that
// sinks provision, on listen (127.0.0.1:0 for any port) with its store in
// dir; extra tokens are added as name: token.
func startPeer(t *testing.T, dir *workdir, listen string, tokens map[string]string) *serveProc {
	t.Helper()
	var tb strings.Builder
	fmt.Fprintf(&tb, "  - {name: up, hash: '%s', scopes: [scim:read, scim:write]}\n", sinkTokenHash())
	for name, tok := range tokens {
		sum := sha256.Sum256([]byte(tok))
		fmt.Fprintf(&tb, "  - {name: %s, hash: 'sha256:%s', scopes: [scim:read, scim:write]}\n", name, hex.EncodeToString(sum[:]))
	}
	dir.write(t, "roster.yaml", fmt.Sprintf("listen: %s\nlog:\n  dir: log\n  format: json\nstore:\n  dsn: %s\n"+
		"tokens:\n%ssources:\n  - {name: idp, type: scim}\n", listen, yamlQuote(dir.dsn), tb.String()))
	p := startServeProc(t, dir)
	p.waitLog(t, time.Minute, func(l map[string]any) bool { return l["msg"] == "roster is running" })
	return p
}

// served is one request the recorder passed on.
type served struct {
	token, method, path string
	at                  time.Time
}

// recorder is a reverse proxy in front of a service that notes who sent
// what: each replica has its own bearer token.
type recorder struct {
	mu   sync.Mutex
	reqs []served
	srv  *httptest.Server
}

func newRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, served{token: strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "),
			method: req.Method, path: req.URL.Path, at: time.Now()})
		r.mu.Unlock()
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// count returns how many requests match, by token.
func (r *recorder) count(match func(served) bool) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, q := range r.reqs {
		if match(q) {
			out[q.token]++
		}
	}
	return out
}

// first returns the first request of token after t0.
func (r *recorder) first(token string, t0 time.Time) (served, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.reqs {
		if q.token == token && q.at.After(t0) {
			return q, true
		}
	}
	return served{}, false
}

func userPatch(q served) bool {
	return q.method == http.MethodPatch && strings.Contains(q.path, "/Users/")
}

func anyRequest(served) bool { return true }

// serviceTotal is how many users the service holds, duplicates included
// (heldBy keys them by userName).
func serviceTotal(t *testing.T, base string) int {
	t.Helper()
	var page struct {
		TotalResults int `json:"totalResults"`
	}
	if code := scimCall(t, base, "GET", "/Users?count=0", nil, &page); code != 200 {
		t.Fatalf("count the service's users: %d", code)
	}
	return page.TotalResults
}

// replicaConfig is roster.yaml of one replica: the csv source staff read
// from csv (one file for all replicas), the store dsn, and sink svc at
// url with the replica's own token.
func replicaConfig(driver, dsn, csv, url, token, rate string) string {
	return fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  driver: %s\n  dsn: %s\n"+
		"tokens:\n  - {name: check, hash: '%s', scopes: [scim:read]}\n"+
		"sources:\n  - name: staff\n    type: csv\n    path: %s\n    watch: true\n"+
		"sinks:\n  - name: svc\n    url: %s/scim/v2\n    auth: {bearer: %s}\n    interval: 200ms\n    limits: {rate: %s, concurrency: 1}\n",
		driver, yamlQuote(dsn), sinkTokenHash(), yamlQuote(csv), url, token, rate)
}

// TestSinkReplicaTakeover runs two `roster serve` replicas on one store
// with the same sink. Exactly one delivers (the service sees the token of
// one replica only); killed with SIGKILL in the middle of a delivery of
// 1,000 changes, the other takes over within takeoverBound, from the
// recorded position (it repeats at most the batch that was under way, not
// what was delivered before), and the service ends up equal to the
// directory, without duplicates. On PostgreSQL the lock is an advisory
// lock. SQLite is one roster per file: a second roster serve on it
// refuses to start.
func TestSinkReplicaTakeover(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			svcDir := newWorkdir(t, store.SQLite)
			tokens := map[string]string{"ra": "replica-a-token-not-for-logs", "rb": "replica-b-token-not-for-logs"}
			svc := startPeer(t, svcDir, "127.0.0.1:0", tokens)
			rec := newRecorder(t, svc.base)

			a := newWorkdir(t, driver)
			b := &workdir{dir: t.TempDir(), driver: driver, dsn: a.dsn}
			if driver == store.SQLite {
				// One roster per SQLite file: the second refuses to start,
				// so a sink's lock file only ever sees one process.
				a.write(t, "roster.yaml", replicaConfig(driver, a.dsn, a.path("staff.csv"), rec.srv.URL, tokens["ra"], "0"))
				b.write(t, "roster.yaml", replicaConfig(driver, a.dsn, a.path("staff.csv"), rec.srv.URL, tokens["rb"], "0"))
				a.write(t, "staff.csv", csvOf(sinkPeople(3, "Given")))
				first := startServeProc(t, a)
				r := b.run(t, "serve")
				if r.code == 0 || !strings.Contains(r.stderr, "another roster serve is already running") {
					t.Fatalf("a second roster serve on one SQLite file:\n%s", r)
				}
				first.signalAndWait(t, syscall.SIGTERM, 30*time.Second)
				svc.signalAndWait(t, syscall.SIGTERM, 30*time.Second)
				return
			}
			people := sinkPeople(1000, "Given")
			a.write(t, "staff.csv", csvOf(people))
			// The first delivery unhurried, the changes paced so that the
			// kill falls in their second batch.
			const rate = "400/s"
			a.write(t, "roster.yaml", replicaConfig(driver, a.dsn, a.path("staff.csv"), rec.srv.URL, tokens["ra"], rate))
			b.write(t, "roster.yaml", replicaConfig(driver, a.dsn, a.path("staff.csv"), rec.srv.URL, tokens["rb"], rate))
			procs := map[string]*serveProc{tokens["ra"]: startServeProc(t, a)}
			procs[tokens["rb"]] = startServeProc(t, b)

			converged(t, "the first delivery", procs[tokens["ra"]].base, svc.base)
			by := rec.count(anyRequest)
			if len(by) != 1 {
				t.Fatalf("both replicas sent requests for one sink: %v", by)
			}
			var holder, other string
			for tok := range by {
				holder = tok
			}
			for _, tok := range tokens {
				if tok != holder {
					other = tok
				}
			}

			// Whatever is left of the initial sync delivered too.
			sinkDrained(t, a)
			base := rec.count(userPatch)

			// 1,000 changes: two batches of 500. Kill the holder once
			// the first batch (and its position) is behind it.
			a.write(t, "staff.csv", csvOf(sinkPeople(1000, "Renamed")))
			deadline := time.Now().Add(2 * time.Minute)
			for rec.count(userPatch)[holder]-base[holder] < 600 {
				if time.Now().After(deadline) {
					t.Fatalf("the holder sent %d user PATCHes in 2 minutes", rec.count(userPatch)[holder]-base[holder])
				}
				time.Sleep(10 * time.Millisecond)
			}
			procs[holder].signalAndWait(t, syscall.SIGKILL, 10*time.Second)
			killed := time.Now()
			beforeKill := rec.count(userPatch)
			if beforeKill[other] != 0 {
				t.Fatalf("the waiting replica sent %d PATCHes while the other held the lock", beforeKill[other])
			}
			if !partly(heldBy(t, svc.base), 1000, "Renamed") {
				t.Fatal("the delivery of the changes was over before the holder was killed: the test proves nothing")
			}

			first, ok := rec.first(other, killed)
			for wait := time.Now().Add(takeoverBound); !ok && time.Now().Before(wait); first, ok = rec.first(other, killed) {
				time.Sleep(10 * time.Millisecond)
			}
			if !ok {
				t.Fatalf("the other replica sent nothing within %s of the holder's death; its log:\n%s", takeoverBound, procs[other].stderr)
			}
			t.Logf("%s: the other replica took over %s after the kill (%s %s)", driver, first.at.Sub(killed).Round(time.Millisecond), first.method, first.path)
			converged(t, "after the takeover", procs[other].base, svc.base)
			if n := serviceTotal(t, svc.base); n != 1000 {
				t.Fatalf("the service holds %d users, want 1000 (no duplicates)", n)
			}
			after := rec.count(userPatch)
			// The holder recorded the position after the first batch:
			// the other repeats at most the second batch (500), never
			// the first.
			done := beforeKill[holder] - base[holder]
			t.Logf("%s: user PATCHes of the 1,000 changes: holder %d (until killed), other %d", driver, done, after[other])
			if after[other] > 500 || after[other] < 1000-done {
				t.Fatalf("the other replica sent %d user PATCHes; the holder %d before it died: want at most one batch (500) again and every missing one",
					after[other], done)
			}
			if after[holder] != beforeKill[holder] {
				t.Fatal("the killed replica sent requests after its death")
			}
			for _, l := range procs[other].logLines(t) {
				if l["msg"] == "cannot take the sink's lock" {
					t.Fatalf("the waiting replica could not even try the lock: %v", l)
				}
			}
			procs[other].signalAndWait(t, syscall.SIGTERM, 30*time.Second)
			svc.signalAndWait(t, syscall.SIGTERM, 30*time.Second)
			for _, p := range procs {
				if s := p.stderr.String(); strings.Contains(s, tokens["ra"]) || strings.Contains(s, tokens["rb"]) {
					t.Fatal("a replica's log holds a sink token")
				}
			}
		})
	}
}

// sinkDrained waits until sink svc has delivered every change it has
// recorded (roster sink svc --json reads the store).
func sinkDrained(t *testing.T, w *workdir) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var st struct {
			Queue int64 `json:"queue"`
		}
		if err := json.Unmarshal([]byte(w.want(t, 0, "sink", "svc", "--json").stdout), &st); err != nil {
			t.Fatal(err)
		}
		if st.Queue == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink svc still has %d changes to deliver after 2 minutes", st.Queue)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns a 127.0.0.1 address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestSinkServiceRestarted stops the service (a second roster, SIGTERM)
// in the middle of the first delivery of 1,000 users and starts it again
// on the same port and store a few seconds later: the sink's retries
// carry it over the outage, the delivery completes, and the service
// equals the directory, without duplicates. On both of roster's stores.
func TestSinkServiceRestarted(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			svcDir := newWorkdir(t, store.SQLite)
			addr := freeAddr(t)
			svc := startPeer(t, svcDir, addr, nil)

			up := newWorkdir(t, driver)
			up.write(t, "staff.csv", csvOf(sinkPeople(1000, "Given")))
			up.write(t, "roster.yaml", serveConfig(up, "")+fmt.Sprintf(
				"tokens:\n  - {name: check, hash: '%s', scopes: [scim:read]}\n"+
					"sinks:\n  - name: svc\n    url: %s/scim/v2\n    auth: {bearer: %s}\n    interval: 200ms\n    limits: {rate: 400/s, concurrency: 2}\n",
				sinkTokenHash(), svc.base, sinkToken))
			proc := startServeProc(t, up)
			deadline := time.Now().Add(2 * time.Minute)
			for serviceTotal(t, svc.base) < 300 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			svc.signalAndWait(t, syscall.SIGTERM, 30*time.Second)
			held := serviceTotalAfterStop(t, svcDir)
			if held >= 1000 {
				t.Fatal("the delivery was over before the service stopped: the test proves nothing")
			}
			// Down for longer than a request's first retries (0.5 s,
			// 1 s, 2 s), within the five attempts.
			time.Sleep(3 * time.Second)
			svc = startPeer(t, svcDir, addr, nil)
			converged(t, "after the service's restart", proc.base, svc.base)
			if n := serviceTotal(t, svc.base); n != 1000 {
				t.Fatalf("the service holds %d users, want 1000 (no duplicates)", n)
			}
			t.Logf("%s: the service held %d of 1,000 users when it stopped", driver, held)
			proc.signalAndWait(t, syscall.SIGTERM, 30*time.Second)
			svc.signalAndWait(t, syscall.SIGTERM, 30*time.Second)
			if strings.Contains(proc.stderr.String(), sinkToken) {
				t.Fatal("roster's log holds the sink's token")
			}
		})
	}
}

// serviceTotalAfterStop counts the users in a stopped service's store.
func serviceTotalAfterStop(t *testing.T, w *workdir) int {
	t.Helper()
	st := w.open(t)
	defer st.Close()
	c, err := st.DirectoryCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range c.Users["idp"] {
		n += int(v)
	}
	return n
}
