package main

// The fault suite (SPEC §4.1, §5, §10): what goes wrong, tried through the
// real binary, proving that nothing acknowledged is lost and that the
// directory is never left half-changed.
//
//   TestFaultKill                 SIGKILL at a random moment of a large CSV
//                                 sync, a burst of pushes or SCIM writes;
//                                 restart; check (both stores)
//   TestFaultDatabaseOutage       PostgreSQL cut off (a TCP proxy refuses and
//                                 cuts connections) during a sync, SCIM
//                                 traffic and pushes
//   TestFaultRawRecordUnwritable  the raw record folder cannot be created
//   TestFaultFileChangedWhileRead the CSV file truncated or rewritten while
//                                 a sync reads it
//
// ROSTER_SOAK=1h repeats the kill loop for half that long (see load_test.go
// for the other half); `make soak`.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// faultKillUsers is the size of the staff file of the kill loop: every
// round changes every user's e-mail, so a round's sync updates them all.
const faultKillUsers = 4000

func TestFaultKill(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault suite runs the daemon many times; skipped with -short")
	}
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			faultKill(t, newWorkdir(t, driver))
		})
	}
}

// killRounds counts faults injected and survived per workload kind.
type killRounds struct {
	injected, survived map[string]int
	detail             map[string][]string
}

func faultKill(t *testing.T, w *workdir) {
	began := time.Now()
	rounds, soak := 6, faultSoak(t)/2
	w.writeAtomic(t, "staff.csv", csvOf(manyPeople(faultKillUsers, 0)))
	w.write(t, "roster.yaml", faultConfig(w, "tasks:\n  max_retries: 5\n", "    max_removals: '100%'\n"))
	w.want(t, exitOK, "sync", "staff")
	s := w.open(t)
	defer s.Close()

	stats := killRounds{injected: map[string]int{}, survived: map[string]int{}, detail: map[string][]string{}}
	p := startServeProc(t, w)
	p.waitReady(t)
	kinds := []string{"csv", "push", "scim"}
	for round := 1; round <= rounds || time.Since(began) < soak; round++ {
		kind := kinds[(round-1)%len(kinds)]
		// No subtests: the restarted daemon must outlive the round.
		var outcome string
		switch kind {
		case "csv":
			p, outcome = killCSVRound(t, w, s, p, round)
		case "push":
			p, outcome = killPushRound(t, w, s, p, round)
		case "scim":
			p, outcome = killSCIMRound(t, w, p, round)
		}
		stats.injected[kind]++
		if t.Failed() {
			t.Errorf("round %d (%s) failed: %s", round, kind, outcome)
			break
		}
		stats.survived[kind]++
		stats.detail[kind] = append(stats.detail[kind], outcome)
		t.Logf("round %d (%s): %s", round, kind, outcome)
	}
	for _, tk := range fltTasks(t, s, "") {
		if tk.Status == store.StatusRunning {
			t.Errorf("task %d (%s) is still running at the end", tk.ID, tk.Source)
		}
	}
	if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Errorf("SIGTERM at the end: exit %d; the log:\n%s", code, p.stderr)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "fault: kill -9 on %s, %s:\n", w.driver, time.Since(began).Round(time.Second))
	for _, k := range kinds {
		fmt.Fprintf(&b, "fault:   %-4s injected %d, survived %d: %s\n", k, stats.injected[k], stats.survived[k], strings.Join(stats.detail[k], "; "))
	}
	t.Log(b.String())
}

// killAndRestart kills the daemon with SIGKILL and starts it again.
func killAndRestart(t *testing.T, w *workdir, p *serveProc) *serveProc {
	t.Helper()
	if t.Failed() {
		for line := range strings.SplitSeq(p.stderr.String(), "\n") {
			if strings.Contains(line, `"level":"ERROR"`) {
				t.Logf("daemon error before the kill: %s", line)
			}
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("roster serve did not die of SIGKILL within 30s")
	}
	np := startServeProc(t, w)
	np.waitReady(t)
	return np
}

// killCSVRound changes every user of the staff file, asks the daemon to
// sync it, kills it at a random moment and checks that the directory is
// exactly the one before or exactly the one of the new file.
func killCSVRound(t *testing.T, w *workdir, s *store.Store, p *serveProc, round int) (*serveProc, string) {
	before := w.state(t, "staff")
	w.writeAtomic(t, "staff.csv", csvOf(manyPeople(faultKillUsers, round)))
	c := newFltClient(p.base, 30*time.Second)
	defer c.close()
	r := c.do("POST", "/api/v1/sources/staff/sync", fltTokAdmin, "", "")
	if r.err != nil || r.code != http.StatusAccepted {
		t.Fatalf("POST sync: %s", r)
	}
	var tk struct {
		ID int64 `json:"id"`
	}
	json.Unmarshal(r.body, &tk) //nolint:errcheck // 0 when the sync was queued
	delay := randDur(0, 1500*time.Millisecond)
	time.Sleep(delay)
	killedStatus := "not started"
	if tk.ID != 0 {
		if cur, err := s.GetTask(context.Background(), tk.ID); err == nil {
			killedStatus = cur.Status
		}
	}
	p = killAndRestart(t, w, p)
	// The killed task is failed at the start, and the daemon may retry it.
	tks := waitQuiet(t, s, "staff", 90*time.Second, p.stderr.String)
	if tk.ID != 0 {
		if k := tks[tk.ID]; k.Status != store.StatusSucceeded && k.Status != store.StatusFailed {
			t.Errorf("task %d killed while %s is %s after the restart, want failed (or succeeded)", tk.ID, killedStatus, k.Status)
		} else if killedStatus == store.StatusRunning && k.Status == store.StatusFailed && !strings.Contains(k.Errors, "interrupt") {
			t.Logf("task %d was failed after the kill with %s", tk.ID, k.Errors)
		}
	}
	got := w.state(t, "staff")
	outcome := staffOutcome(t, before, got, round)
	// Whatever happened, the next sync imports the file.
	c2 := newFltClient(p.base, 30*time.Second)
	defer c2.close()
	if r2 := c2.do("POST", "/api/v1/sources/staff/sync", fltTokAdmin, "", ""); r2.err != nil || r2.code != http.StatusAccepted {
		t.Fatalf("POST sync after the restart: %s", r2)
	}
	waitQuiet(t, s, "staff", 90*time.Second, p.stderr.String)
	if o := staffOutcome(t, before, w.state(t, "staff"), round); o != "after" {
		t.Errorf("the sync after the restart left the directory %s, want the new file", o)
	}
	return p, fmt.Sprintf("killed %s after the 202 (task %s) → %s", delay.Round(time.Millisecond), killedStatus, outcome)
}

// staffOutcome says whether got is exactly before ("before"), exactly the
// file of round ("after"), and fails the test on anything else.
func staffOutcome(t *testing.T, before, got dirState, round int) string {
	t.Helper()
	if reflect.DeepEqual(before, got) {
		return "before"
	}
	want := manyPeople(faultKillUsers, round)
	var wrong []string
	for _, p := range want {
		u, ok := got.Users[p.ID]
		if !ok || u.Email != p.Email || u.UserName != p.Login || u.State != reconcile.StateActive {
			wrong = append(wrong, fmt.Sprintf("%s: %+v", p.ID, u))
		}
	}
	if len(got.Users) != len(want) {
		wrong = append(wrong, fmt.Sprintf("%d users, want %d", len(got.Users), len(want)))
	}
	if got.Revision == before.Revision {
		wrong = append(wrong, "revision unchanged")
	}
	if len(wrong) == 0 {
		return "after"
	}
	old := 0
	for _, u := range got.Users {
		if !strings.Contains(u.Email, fmt.Sprintf(".r%d@", round)) {
			old++
		}
	}
	t.Errorf("the directory is neither the state before the sync nor the new file: a MIX (%d users still have the old e-mail); %d differences, first: %v",
		old, len(wrong), wrong[:min(5, len(wrong))])
	return "mix"
}

// killPushRound sends bursts of pushes from four clients, kills the daemon
// at a random moment, and checks every push answered 202.
func killPushRound(t *testing.T, w *workdir, s *store.Store, p *serveProc, round int) (*serveProc, string) {
	c := newFltClient(p.base, 30*time.Second)
	defer c.close()
	ps := newFltPushes()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				body, users := fltPushBody(fmt.Sprintf("k%d-r%d-g%d-%d", os.Getpid()%1000, round, g, i), 20+int(randDur(0, 200)))
				if r := ps.send(c, body, users); r.err != nil {
					return // the daemon died
				} else if r.code != http.StatusAccepted {
					t.Errorf("push: %s", r)
					return
				}
			}
		})
	}
	delay := randDur(300*time.Millisecond, 2500*time.Millisecond)
	time.Sleep(delay)
	p = killAndRestart(t, w, p)
	stop.Store(true)
	wg.Wait()
	waitQuiet(t, s, "api", 120*time.Second, p.stderr.String)
	retried := verifyPushes(t, w, s, ps)
	for _, tk := range fltTasks(t, s, "api") {
		if tk.Status == store.StatusRunning || tk.Status == store.StatusQueued {
			t.Errorf("push task %d is %s after the restart", tk.ID, tk.Status)
		}
	}
	return p, fmt.Sprintf("killed %s into the burst: %d pushes answered 202 (%d needed a retry), %d lost answers",
		delay.Round(time.Millisecond), len(ps.accepted), retried, len(ps.unknown))
}

// killSCIMRound creates, patches and deletes users through SCIM from four
// clients, kills the daemon at a random moment, and checks every write
// answered 2xx.
func killSCIMRound(t *testing.T, w *workdir, p *serveProc, round int) (*serveProc, string) {
	c := newFltClient(p.base, 30*time.Second)
	defer c.close()
	sw := newFltSCIMWrites()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				r, u := sw.create(c, fmt.Sprintf("scim-r%d-g%d-%d", round, g, i))
				if r.err != nil {
					return
				}
				if u == nil {
					t.Errorf("SCIM create: %s", r)
					return
				}
				if r := sw.patch(c, u, fmt.Sprintf("Patched %d", i)); r.err != nil {
					return
				} else if r.code != http.StatusOK {
					t.Errorf("SCIM patch: %s", r)
					return
				}
				if i%3 == 2 {
					if r := sw.delete(c, u); r.err != nil {
						return
					} else if r.code != http.StatusNoContent {
						t.Errorf("SCIM delete: %s", r)
						return
					}
				}
			}
		})
	}
	delay := randDur(200*time.Millisecond, 2000*time.Millisecond)
	time.Sleep(delay)
	p = killAndRestart(t, w, p)
	stop.Store(true)
	wg.Wait()
	c2 := newFltClient(p.base, 30*time.Second)
	defer c2.close()
	sw.verify(t, w, c2)
	return p, fmt.Sprintf("killed %s into the writes: %d writes answered 2xx (%d users), %d lost create answers",
		delay.Round(time.Millisecond), sw.acked, len(sw.users), len(sw.unknown))
}

// --- the database outage ---

// TestFaultDatabaseOutage cuts PostgreSQL off (through a TCP proxy that
// cuts every connection and refuses new ones, so the shared server keeps
// running) during a sync, SCIM reads and writes and pushes, then lets it
// back: the sync fails cleanly and its automatic retry succeeds, SCIM
// answers RFC 7644 errors within a bound and works again, /readyz follows
// the database, and every push answered 202 is applied.
func TestFaultDatabaseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	const n = 20000
	const bound = 20 * time.Second // the longest an answer may take during the outage
	w := newWorkdir(t, store.Postgres)
	u, err := url.Parse(w.dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, u.Host)
	direct := w.dsn
	u.Host = proxy.addr()
	w.dsn = u.String()
	w.write(t, "staff.csv", csvOf(manyPeople(20, 0)))
	w.write(t, "roster.yaml", faultConfig(w, "tasks:\n  max_retries: 5\n", "    max_removals: '100%'\n"))
	p := startServeProc(t, w)
	p.waitReady(t)
	w.dsn = direct // the test reads the store directly, not through the proxy
	s := w.open(t)
	defer s.Close()
	waitQuiet(t, s, "staff", 60*time.Second, p.stderr.String)
	c := newFltClient(p.base, 60*time.Second)
	defer c.close()

	// Before: SCIM writes and pushes work.
	sw := newFltSCIMWrites()
	for i := range 5 {
		if r, u := sw.create(c, fmt.Sprintf("outage-before-%d", i)); u == nil {
			t.Fatalf("SCIM create before the outage: %s", r)
		}
	}
	ps := newFltPushes()
	body, users := fltPushBody("outage-before", 50)
	if r := ps.send(c, body, users); r.code != http.StatusAccepted {
		t.Fatalf("push before the outage: %s", r)
	}

	// A big sync, cut 300 ms after it started.
	w.writeAtomic(t, "staff.csv", csvOf(manyPeople(n, 1)))
	r := c.do("POST", "/api/v1/sources/staff/sync", fltTokAdmin, "", "")
	if r.code != http.StatusAccepted {
		t.Fatalf("POST sync: %s", r)
	}
	var synced struct {
		ID int64 `json:"id"`
	}
	json.Unmarshal(r.body, &synced) //nolint:errcheck // checked below
	if synced.ID == 0 {
		t.Fatalf("POST sync did not start a task: %s", r)
	}
	time.Sleep(300 * time.Millisecond)
	proxy.cut()
	cutAt := time.Now()

	// During the outage.
	var figures []string
	check := func(what string, r fltResp, scim bool) {
		t.Helper()
		if r.took > bound {
			t.Errorf("%s during the outage took %s, more than %s", what, r.took.Round(time.Millisecond), bound)
		}
		if r.err != nil {
			t.Errorf("%s during the outage: %v (after %s)", what, r.err, r.took.Round(time.Millisecond))
			return
		}
		figures = append(figures, fmt.Sprintf("%s %d in %s", what, r.code, r.took.Round(time.Millisecond)))
		if scim {
			if r.code < 500 {
				t.Errorf("%s during the outage: %s, want a 5xx", what, r)
			}
			if err := checkSCIMBody(r, scimErrorSchema); err != nil {
				t.Errorf("%s during the outage: %v", what, err)
			}
		}
	}
	readyDown := false
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		r := c.do("GET", "/readyz", "", "", "")
		if r.err == nil && r.code == http.StatusServiceUnavailable {
			readyDown = true
			figures = append(figures, fmt.Sprintf("/readyz 503 after %s: %s", time.Since(cutAt).Round(time.Millisecond), strings.TrimSpace(string(r.body))))
			break
		}
	}
	if !readyDown {
		t.Errorf("/readyz never said not ready within %s of the outage", bound)
	}
	check("SCIM GET /Users", c.scim("GET", "/Users?filter="+url.QueryEscape(`userName sw "outage"`), ""), true)
	check("SCIM GET /Users/{id}", c.scim("GET", "/Users/"+sw.users["outage-before-0"].ID, ""), true)
	r, _ = sw.create(c, "outage-during-0")
	check("SCIM POST /Users", r, true)
	check("SCIM PATCH /Users/{id}", sw.patch(c, sw.users["outage-before-1"], "Patched during the outage"), true)
	for i := range 3 {
		body, users := fltPushBody(fmt.Sprintf("outage-during-%d", i), 30)
		r := ps.send(c, body, users)
		check("push", r, false)
		if r.err == nil && r.code != http.StatusAccepted && r.code != http.StatusServiceUnavailable {
			t.Errorf("push during the outage: %s, want 503 (or 202)", r)
		}
	}
	time.Sleep(max(0, 4*time.Second-time.Since(cutAt)))
	proxy.restore()
	restoredAt := time.Now()

	// After: ready again, SCIM works, the sync is retried, pushes applied.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := c.do("GET", "/readyz", "", "", "")
		if r.err == nil && r.code == http.StatusOK {
			figures = append(figures, fmt.Sprintf("/readyz 200 %s after the restore", time.Since(restoredAt).Round(time.Millisecond)))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz is %s 30s after the database came back", r)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := c.scim("GET", "/Users/"+sw.users["outage-before-0"].ID, "")
		if r.err == nil && r.code == http.StatusOK {
			if err := checkSCIMBody(r, scimUserSchema); err != nil {
				t.Error(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SCIM GET is %s 30s after the database came back", r)
		}
	}
	if r, u := sw.create(c, "outage-after-0"); u == nil {
		t.Errorf("SCIM create after the outage: %s", r)
	}
	if r := sw.patch(c, sw.users["outage-before-2"], "Patched after"); r.code != http.StatusOK {
		t.Errorf("SCIM patch after the outage: %s", r)
	}
	body, users = fltPushBody("outage-after", 40)
	if r := ps.send(c, body, users); r.code != http.StatusAccepted {
		t.Errorf("push after the outage: %s", r)
	}

	var ok *store.Task
	for deadline := time.Now().Add(90 * time.Second); ok == nil; time.Sleep(250 * time.Millisecond) {
		for _, tk := range fltTasks(t, s, "staff") {
			if tk.ID > synced.ID && tk.Status == store.StatusSucceeded {
				ok = &tk
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sync succeeded within 90s of the restore; tasks %+v; the log:\n%s", fltTasks(t, s, "staff"), p.stderr)
		}
	}
	cut, err := s.GetTask(context.Background(), synced.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cut.Status != store.StatusFailed || cut.Errors == "[]" {
		t.Errorf("the cut task %d is %s (errors %s), want failed with its reason", cut.ID, cut.Status, cut.Errors)
	}
	if ok.Trigger != "retry" || ok.RetryOf == nil {
		t.Logf("the sync that succeeded is task %d, trigger %s (not an automatic retry)", ok.ID, ok.Trigger)
	}
	if got := countUsers(t, w, "staff"); got != n {
		t.Errorf("%d users after the outage and the retry, want %d", got, n)
	}
	waitQuiet(t, s, "api", 90*time.Second, p.stderr.String)
	verifyPushes(t, w, s, ps)
	sw.verify(t, w, c)
	if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
	}
	t.Logf("fault: database outage: task %d failed (%s), task %d (%s, retry_of %s) succeeded with %d users %s after the restore; pushes: %d answered 202, %d refused during the outage\nfault:   %s",
		cut.ID, strings.TrimSpace(cut.Errors), ok.ID, ok.Trigger, deref64(ok.RetryOf), n, ok.FinishedAt.Sub(restoredAt).Round(time.Millisecond),
		len(ps.accepted), len(ps.refused), strings.Join(figures, "\nfault:   "))
}

// --- the raw record folder ---

// blockRaw makes the raw record folder of source impossible to create.
// The tests run as root, for whom chmod does not make a folder
// unwritable; so a regular file is put where the folder
// log/user-data-sync/<source> must be, and MkdirAll fails with "not a
// directory".
func blockRaw(t *testing.T, w *workdir, source string) {
	t.Helper()
	dir := w.path(filepath.Join("log", "user-data-sync", source))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	w.write(t, filepath.Join("log", "user-data-sync", source), "in the way of the raw record folder\n")
}

func TestFaultRawRecordUnwritable(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			w := newWorkdir(t, driver)
			w.write(t, "staff.csv", csvOf(basePeople()))
			w.write(t, "roster.yaml", faultConfig(w, "", ""))
			w.want(t, exitOK, "sync", "staff")
			s := w.open(t)
			defer s.Close()
			before := w.state(t, "staff")
			apiBefore := w.state(t, "api")
			blockRaw(t, w, "staff")
			blockRaw(t, w, "api")

			p := startServeProc(t, w)
			p.waitReady(t)
			c := newFltClient(p.base, 30*time.Second)
			defer c.close()

			// The CSV sync fails, naming log.dir; nothing changes.
			people := basePeople()
			people[0].Email = "changed@example.com"
			w.writeAtomic(t, "staff.csv", csvOf(append(people, person{ID: ext(99), First: "New", Last: "One", Login: "new99"})))
			r := c.do("POST", "/api/v1/sources/staff/sync", fltTokAdmin, "", "")
			if r.code != http.StatusAccepted {
				t.Fatalf("POST sync: %s", r)
			}
			tks := waitQuiet(t, s, "staff", 60*time.Second, p.stderr.String)
			var last store.Task
			for _, tk := range tks {
				if tk.ID > last.ID {
					last = tk
				}
			}
			if last.Status != store.StatusFailed || !strings.Contains(last.Errors, "log.dir") || !strings.Contains(last.Errors, "raw record") {
				t.Errorf("the sync with an unwritable raw record folder: %s %s, want failed naming log.dir", last.Status, last.Errors)
			}
			sameState(t, "sync without a raw record", before, w.state(t, "staff"))

			// A push is not accepted: a 5xx with a clear message, and
			// nothing of it is applied.
			ps := newFltPushes()
			body, users := fltPushBody("raw-blocked", 10)
			r = ps.send(c, body, users)
			if r.err != nil || r.code < 500 || !strings.Contains(string(r.body), "log.dir") || r.header.Get("Content-Type") != "application/json" {
				t.Errorf("push with an unwritable raw record folder: %s, want a 5xx JSON error naming log.dir", r)
			}
			var eb errorBody
			if json.Unmarshal(r.body, &eb) != nil || eb.Error == "" {
				t.Errorf("push refused without a JSON error: %s", r)
			}
			time.Sleep(time.Second) // a queued push would be applied by now
			waitQuiet(t, s, "api", 30*time.Second, p.stderr.String)
			verifyPushes(t, w, s, ps)
			sameState(t, "push without a raw record", apiBefore, w.state(t, "api"))

			// Unblocked, both work again.
			for _, src := range []string{"staff", "api"} {
				if err := os.Remove(w.path(filepath.Join("log", "user-data-sync", src))); err != nil {
					t.Fatal(err)
				}
			}
			body, users = fltPushBody("raw-free", 10)
			if r := ps.send(c, body, users); r.code != http.StatusAccepted {
				t.Errorf("push after the folder was freed: %s", r)
			}
			if r := c.do("POST", "/api/v1/sources/staff/sync", fltTokAdmin, "", ""); r.code != http.StatusAccepted {
				t.Fatalf("POST sync: %s", r)
			}
			waitQuiet(t, s, "staff", 60*time.Second, p.stderr.String)
			waitQuiet(t, s, "api", 60*time.Second, p.stderr.String)
			verifyPushes(t, w, s, ps)
			if st := w.state(t, "staff"); len(st.Users) != 21 || st.Users[ext(1)].Email != "changed@example.com" {
				t.Errorf("the sync after the folder was freed: %d users, %s's e-mail %q", len(st.Users), ext(1), st.Users[ext(1)].Email)
			}
			if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
				t.Errorf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
			}
		})
	}
}

// TestFaultRawRecordRacesDrain: when the raw record of one push cannot be
// written while other pushes of the source are accepted and applied, the
// refused push must not be applied either. Only that push's file is
// blocked: a folder stands where its raw record <task id>.json must go
// (the ids of the coming tasks are known: every other one is blocked).
func TestFaultRawRecordRacesDrain(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			w := newWorkdir(t, driver)
			w.write(t, "staff.csv", csvOf(basePeople()))
			w.write(t, "roster.yaml", faultConfig(w, "", ""))
			w.want(t, exitOK, "sync", "staff")
			s := w.open(t)
			defer s.Close()
			p := startServeProc(t, w)
			p.waitReady(t)
			c := newFltClient(p.base, 30*time.Second)
			defer c.close()
			ps := newFltPushes()
			body, users := fltPushBody("race-first", 5)
			if r := ps.send(c, body, users); r.code != http.StatusAccepted {
				t.Fatalf("first push: %s", r)
			}
			var next int64
			for id := range ps.accepted {
				next = id + 1
			}
			for id := next; id < next+400; id += 2 {
				if err := os.MkdirAll(w.path(filepath.Join("log", "user-data-sync", "api", fmt.Sprintf("%d.json", id))), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := range 25 {
						body, users := fltPushBody(fmt.Sprintf("race-g%d-%d", g, i), 3)
						if r := ps.send(c, body, users); r.err != nil || (r.code != http.StatusAccepted && r.code < 500) {
							t.Errorf("push: %s", r)
						}
					}
				})
			}
			wg.Wait()
			waitQuiet(t, s, "api", 60*time.Second, p.stderr.String)
			if len(ps.refused) == 0 {
				t.Fatalf("no push was refused: the blocked raw record paths were not hit (%d accepted)", len(ps.accepted))
			}
			verifyPushes(t, w, s, ps)
			t.Logf("fault: raw record race on %s: %d pushes answered 202, %d refused (5xx)", driver, len(ps.accepted), len(ps.refused))
			if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
				t.Errorf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
			}
		})
	}
}

// --- the file changed while read ---

// TestFaultFileChangedWhileRead truncates or rewrites (in place, not by a
// rename) the CSV file while `roster sync` reads it: the task fails with
// "the file changed while it was being read" or applies one complete
// version, never a mix; the next sync imports the final file.
func TestFaultFileChangedWhileRead(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	const n = 60000
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			w := newWorkdir(t, driver)
			w.write(t, "roster.yaml", faultConfig(w, "", "    orphans: delete\n    max_removals: '100%'\n"))
			w.writeAtomic(t, "staff.csv", csvOf(manyPeople(100, 0)))
			w.want(t, exitOK, "sync", "staff")
			outcomes := map[string]int{}
			for round := 1; round <= 4; round++ {
				before := w.state(t, "staff")
				a := csvOf(manyPeople(n, round))
				var b string
				mode := []string{"truncate", "rewrite"}[round%2]
				if mode == "rewrite" {
					b = csvOf(manyPeople(n/2, round+100))
				} else {
					b = a[:len(a)/3+int(randDur(0, 1000))] // cut inside a line, most likely
				}
				w.writeAtomic(t, "staff.csv", a)
				ch := make(chan result, 1)
				go func() { ch <- runRoster(t, w.dir, "", w.env, "sync", "staff", "--json") }()
				delay := randDur(20*time.Millisecond, 400*time.Millisecond)
				time.Sleep(delay)
				if mode == "truncate" {
					if err := os.Truncate(w.path("staff.csv"), int64(len(b))); err != nil {
						t.Fatal(err)
					}
				} else {
					w.write(t, "staff.csv", b) // O_TRUNC, then the new content
				}
				r := <-ch
				got := w.state(t, "staff")
				var outcome string
				switch {
				case r.code == exitFailed && strings.Contains(r.stdout, "the file changed while it was being read"):
					outcome = "failed: changed while read"
					sameState(t, "a task that failed", before, got)
				case r.code == exitOK:
					tk := decodeTask(t, r.stdout)
					switch {
					case sameVersion(got, a):
						outcome = "applied the first version"
					case sameVersion(got, b):
						outcome = "applied the second version"
					default:
						t.Errorf("round %d (%s): task %d %s applied neither version completely: a MIX", round, mode, tk.ID, tk.Status)
					}
				case r.code == exitFailed && mode == "truncate" && !reflect.DeepEqual(before, got):
					t.Errorf("round %d: a failed task changed the directory", round)
				case r.code == exitFailed && mode == "truncate":
					// The cut file was read whole and is invalid (half a line).
					outcome = "failed: the cut file is invalid"
					sameState(t, "a task that failed", before, got)
				default:
					t.Errorf("round %d (%s): roster sync: %s", round, mode, r)
				}
				outcomes[mode+": "+outcome]++
				t.Logf("round %d: %s %s after the start: %s", round, mode, delay.Round(time.Millisecond), outcome)
				// The next sync imports the final file (unless it is invalid).
				final := w.read(t, "staff.csv")
				r2 := w.run(t, "sync", "staff", "--json")
				if strings.HasSuffix(final, "\n") {
					if r2.code != exitOK || !sameVersion(w.state(t, "staff"), final) {
						t.Errorf("round %d: the next sync did not import the final file: %s", round, r2)
					}
				} else if r2.code == exitOK && !sameVersion(w.state(t, "staff"), final) {
					t.Errorf("round %d: the next sync succeeded but the directory is not the final file", round)
				}
			}
			t.Logf("fault: file changed while read on %s: %v", driver, outcomes)
		})
	}
}

// sameVersion reports whether the active users of st are exactly the
// complete lines of content, each with its e-mail (a cut last line, which
// may have been read as a shorter record, is only required to be there).
func sameVersion(st dirState, content string) bool {
	lines := strings.Split(content, "\n")
	partial := ""
	if last := lines[len(lines)-1]; last != "" {
		partial, _, _ = strings.Cut(last, ",")
	}
	lines = lines[:len(lines)-1]
	active := 0
	for _, u := range st.Users {
		if u.State == reconcile.StateActive {
			active++
		}
	}
	want := len(lines)
	if partial != "" {
		want++
	}
	if active != want {
		return false
	}
	for _, l := range lines {
		f := strings.Split(l, ",")
		u, ok := st.Users[f[0]]
		if !ok || u.State != reconcile.StateActive || u.Email != f[4] {
			return false
		}
	}
	if partial != "" {
		if u, ok := st.Users[partial]; !ok || u.State != reconcile.StateActive {
			return false
		}
	}
	return true
}
