package main

// TestLoad: the real daemon under mixed traffic over loopback for a fixed
// time (SQLite, then PostgreSQL; 8 s each in `make test`, `make soak`
// stretches it with ROSTER_SOAK):
//
//   - K SCIM readers: filtered lists, cursor walks, GET by id;
//   - M SCIM writers on the scim source: create, patch, delete with unique
//     logins, every 2xx recorded;
//   - P pushers: payloads of 100–1000 users with unique uids, every 202
//     recorded;
//   - the csv source on "@every 2s" with a file that changes every 3 s.
//
// Afterwards a checker proves every acknowledged write present exactly
// once and every SCIM body well-formed, and the figures per request kind
// (rate, error rate, latency percentiles) and the daemon's peak memory and
// CPU are logged in a "load:" block. The machine is shared (2 cores, other
// tests running): the figures are noisy, not a benchmark.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

const (
	loadReaders  = 4
	loadWriters  = 2
	loadPushers  = 2
	loadCSVUsers = 2000
)

func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	// The checks need concurrent traffic, not a long run: a longer window
	// is the soak's (it was 20 s a store, 70 s of make test's 7 minutes
	// in cmd/roster measured with go test -json on the shared 2 cores).
	dur := 8 * time.Second
	if soak := faultSoak(t); soak > 0 {
		dur = soak / 4 // two stores; the kill loop takes the other half
	}
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) { loadRun(t, newWorkdir(t, driver), dur, false) })
	}
}

// loadKinds are the request kinds measured, in the order reported.
var loadKinds = []string{"scim filter eq", "scim filter sw", "scim cursor page", "scim get by id",
	"scim create", "scim patch", "scim delete", "push"}

// loadRun runs the mixed traffic for dur; with hostile, the hostile
// requests of load_hostile_test.go run beside it, and normal traffic's
// latency and the daemon's peak memory are bounded too.
func loadRun(t *testing.T, w *workdir, dur time.Duration, hostile bool) {
	w.writeAtomic(t, "staff.csv", csvOf(manyPeople(loadCSVUsers, 0)))
	head := ""
	if hostile {
		head = hostileLimits
	}
	w.write(t, "roster.yaml", faultConfig(w, head, "    schedule: \"@every 2s\"\n    max_removals: '100%'\n"))
	w.want(t, exitOK, "sync", "staff")
	s := w.open(t)
	defer s.Close()
	p := startServeProc(t, w)
	p.waitReady(t)
	c := newFltClient(p.base, 60*time.Second)
	defer c.close()

	// Ids to GET: the first page of the staff users.
	var page struct {
		Resources []struct {
			ID string `json:"id"`
		} `json:"Resources"`
	}
	if r := c.scim("GET", "/Users?count=500", ""); r.code != 200 || json.Unmarshal(r.body, &page) != nil || len(page.Resources) == 0 {
		t.Fatalf("GET /Users: %s", r)
	}
	var ids []string
	for _, u := range page.Resources {
		ids = append(ids, u.ID)
	}

	lat := map[string]*latencies{}
	for _, k := range loadKinds {
		lat[k] = &latencies{}
	}
	var fivexx, queueFull, scanBusy atomic.Int64
	// observe records one answer; want is the schema of a good answer.
	observe := func(kind string, r fltResp, wantCode int, want string) {
		problem := ""
		switch {
		case r.err != nil:
			problem = r.err.Error()
		case hostile && (kind == "scim filter sw" || kind == "scim cursor page") && listBusy(r):
			// The worst filters hold the scan slots: a list that waited
			// its whole deadline for one is documented back-pressure.
			scanBusy.Add(1)
			lat[kind].add(r.took, false, "")
			return
		case r.code != wantCode:
			problem = fmt.Sprintf("want %d, got %s", wantCode, r)
		}
		if r.err == nil && r.code >= 500 {
			fivexx.Add(1)
		}
		if want != "" && r.err == nil {
			if err := checkSCIMBody(r, want); err != nil {
				problem = "malformed: " + err.Error()
			}
		}
		lat[kind].add(r.took, problem != "", problem)
	}

	ps := newFltPushes()
	sw := newFltSCIMWrites()
	var stop atomic.Bool
	var wg sync.WaitGroup
	began := time.Now()
	_, cpu0 := procFigures(p.cmd.Process.Pid)
	for g := range loadReaders {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for !stop.Load() {
				switch rnd.IntN(4) {
				case 0:
					f := fmt.Sprintf(`userName eq "login%07d"`, 1+rnd.IntN(loadCSVUsers))
					observe("scim filter eq", c.scim("GET", "/Users?filter="+url.QueryEscape(f), ""), 200, scimListSchema)
				case 1:
					f := fmt.Sprintf(`userName sw "login00%02d" and active eq true`, rnd.IntN(20))
					observe("scim filter sw", c.scim("GET", "/Users?count=50&sortBy=userName&filter="+url.QueryEscape(f), ""), 200, scimListSchema)
				case 2:
					cursor := ""
					for range 3 {
						r := c.scim("GET", "/Users?count=200&cursor="+url.QueryEscape(cursor), "")
						observe("scim cursor page", r, 200, scimListSchema)
						var l struct {
							NextCursor string `json:"nextCursor"`
						}
						if r.code != 200 || json.Unmarshal(r.body, &l) != nil || l.NextCursor == "" {
							break
						}
						cursor = l.NextCursor
					}
				case 3:
					id := ids[rnd.IntN(len(ids))]
					r := c.scim("GET", "/Users/"+id, "")
					// A staff user may be deleted by a sync of a changed
					// file? No: every file holds the same people.
					observe("scim get by id", r, 200, scimUserSchema)
				}
			}
		})
	}
	for g := range loadWriters {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				r, u := sw.create(c, fmt.Sprintf("load-w%d-%d", g, i))
				observe("scim create", r, 201, scimUserSchema)
				if u == nil {
					continue
				}
				observe("scim patch", sw.patch(c, u, fmt.Sprintf("Load %d", i)), 200, scimUserSchema)
				if i%4 == 3 {
					observe("scim delete", sw.delete(c, u), 204, "")
				}
			}
		})
	}
	for g := range loadPushers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				body, users := fltPushBody(fmt.Sprintf("load-p%d-%d", g, i), 100+rand.IntN(901))
				r := ps.send(c, body, users)
				if r.err == nil && r.code == http.StatusServiceUnavailable && r.header.Get("Retry-After") != "" {
					// limits.push_queue is reached: documented back-pressure,
					// nothing stored; wait as the server asks.
					queueFull.Add(1)
					wait, _ := strconv.Atoi(r.header.Get("Retry-After"))
					for end := time.Now().Add(time.Duration(wait) * time.Second); time.Now().Before(end) && !stop.Load(); {
						time.Sleep(50 * time.Millisecond)
					}
					continue
				}
				problem := ""
				if r.err != nil || r.code != http.StatusAccepted {
					problem = r.String()
				}
				if r.err == nil && r.code >= 500 {
					fivexx.Add(1)
				}
				lat["push"].add(r.took, problem != "", problem)
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	var hl *hostileLoad
	if hostile {
		hl = startHostileLoad(&wg, &stop, c, p.cmd.Process.Pid)
	}
	// The csv file changes every 3 s; the schedule syncs it every 2 s.
	wg.Go(func() {
		for round := 1; !stop.Load(); round++ {
			time.Sleep(3 * time.Second)
			w.writeAtomic(t, "staff.csv", csvOf(manyPeople(loadCSVUsers, round)))
		}
	})
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(began)
	hwm, cpu1 := procFigures(p.cmd.Process.Pid)

	// The checker.
	waitQuiet(t, s, "api", 3*time.Minute, p.stderr.String)
	drained := time.Since(began) - elapsed
	verifyPushes(t, w, s, ps)
	sw.verify(t, w, c)
	staffTasks := map[string]int{}
	for _, tk := range fltTasks(t, s, "staff") {
		if tk.CreatedAt.After(began) {
			staffTasks[tk.Status]++
			if tk.Status == store.StatusFailed {
				t.Errorf("scheduled sync %d failed under load: %s", tk.ID, tk.Errors)
			}
		}
	}
	if n := fivexx.Load(); n > 0 {
		t.Errorf("%d answers were 5xx under load (none are documented for this load)", n)
	}
	for _, k := range loadKinds {
		if bad := lat[k].bad; len(bad) > 0 {
			t.Errorf("%s: %d errors; first: %s", k, lat[k].errors, strings.Join(bad, "\n  "))
		}
	}
	if hl != nil {
		hl.check(t, lat, hwm)
	}
	if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "load: %s, %s of traffic (%d readers, %d SCIM writers, %d pushers, csv @every 2s changing every 3s; shared 2-core machine, figures are noisy)\n",
		w.driver, elapsed.Round(time.Millisecond), loadReaders, loadWriters, loadPushers)
	for _, k := range loadKinds {
		fmt.Fprintf(&b, "load:   %-17s %s\n", k, lat[k].summary(elapsed))
	}
	pushedUsers := 0
	for _, us := range ps.accepted {
		pushedUsers += len(us)
	}
	fmt.Fprintf(&b, "load:   pushes: %d answered 202 (%d users), all applied %s after the traffic stopped; %d answered 503 (limits.push_queue reached) and were sent again later\n",
		len(ps.accepted), pushedUsers, drained.Round(time.Millisecond), queueFull.Load())
	fmt.Fprintf(&b, "load:   SCIM writes: %d answered 2xx on %d users, all present\n", sw.acked, len(sw.users))
	fmt.Fprintf(&b, "load:   csv tasks during the run: %v\n", staffTasks)
	fmt.Fprintf(&b, "load:   daemon: peak RSS (VmHWM) %.1f MiB, CPU %s over %s (%.2f cores)",
		float64(hwm)/1024, (cpu1 - cpu0).Round(10*time.Millisecond), elapsed.Round(time.Millisecond), (cpu1-cpu0).Seconds()/elapsed.Seconds())
	if hl != nil {
		fmt.Fprintf(&b, "\nload:   lists answered 503 while the worst filters held the scan slots: %d", scanBusy.Load())
		b.WriteString("\n" + hl.summary(elapsed))
	}
	t.Log(b.String())
}
