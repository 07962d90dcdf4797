package main

// TestHostileQueries: the query-cost bounds of issue 16 (defects 1 and 7)
// against the real daemon, on SQLite and PostgreSQL: filters at every
// published limit answer 200, one beyond answers 400 invalidFilter naming
// the limit, and the worst filters a scim:read token can send, run
// concurrently and without pause, leave userName eq look-ups fast.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/filter"
)

// hqUsers is the directory's size; ROSTER_HOSTILE_USERS changes it (the
// README's figures were measured with 100000).
func hqUsers(t testing.TB) int {
	if s := os.Getenv("ROSTER_HOSTILE_USERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 {
			t.Fatalf("ROSTER_HOSTILE_USERS=%q: want a number of users, at least 100", s)
		}
		return n
	}
	return 20000
}

// hqLookupP99 bounds the look-ups' 99th percentile under hostile load.
// Measured on a shared 2-core machine at a load average of 18: 42 ms on
// SQLite, 201 ms on PostgreSQL (whose backends compete for the same two
// cores); at a load of 2.5, 15 ms and 124 ms. Before the bounds,
// look-ups waited seconds (12.7 s in issue 16), so the margin is for the
// machine, not for roster.
const hqLookupP99 = 500 * time.Millisecond

func hqOrs(n int, term func(i int) string) string {
	terms := make([]string, n)
	for i := range terms {
		terms[i] = term(i)
	}
	return strings.Join(terms, " or ")
}

// hqWorst are the most expensive filters the budget admits, from the
// issue's reproductions.
var hqWorst = []struct{ path, filter string }{
	{"/Users", `not (groups.value pr)`},
	{"/Users", `groups.display co "0" or groups.display co "1"`},
	{"/Users", hqOrs(scim.MaxFilterCost/8, func(i int) string { return fmt.Sprintf(`groups.display co "%d"`, i) })},
	{"/Users", `not (` + hqOrs(scim.MaxFilterCost/8, func(i int) string { return fmt.Sprintf(`groups.display co "x%d"`, i) }) + `)`},
	{"/Groups?excludedAttributes=members&", hqOrs(scim.MaxFilterCost/8, func(i int) string { return fmt.Sprintf(`members.value co "%d"`, i) })},
	{"/Users", hqOrs(scim.MaxFilterCost/2, func(i int) string { return fmt.Sprintf(`displayName co "%d"`, i) })},
	{"/Users", strings.Repeat("not (", filter.MaxDepth) + `emails pr` + strings.Repeat(")", filter.MaxDepth)},
}

func TestHostileQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) { hqRun(t, driver) })
	}
}

func hqRun(t *testing.T, driver string) {
	w := newWorkdir(t, driver)
	n := hqUsers(t)
	people := manyPeople(n, 0)
	memberships := 0
	for i := range people {
		// One of 100 teams each, and every other one in Staff: 1.5
		// memberships a user, as in the directory.
		people[i].Groups = fmt.Sprintf("Team%02d", i%100)
		memberships++
		if i%2 == 0 {
			people[i].Groups += "|Staff"
			memberships++
		}
	}
	w.writeAtomic(t, "staff.csv", csvOf(people))
	w.write(t, "roster.yaml", faultConfig(w, "limits:\n  query_timeout: 5s\n", ""))
	began := time.Now()
	w.want(t, exitOK, "sync", "staff")
	t.Logf("%d users, %d memberships synced in %v", n, memberships, time.Since(began).Round(time.Millisecond))
	p := startServeProc(t, w)
	p.waitReady(t)
	c := newFltClient(p.base, 60*time.Second)
	defer c.close()
	get := func(path, f string) fltResp {
		return c.scim("GET", path+"?count=10&filter="+url.QueryEscape(f), "")
	}

	// Every limit at its maximum answers 200, correctly.
	login := people[n/2].Login
	atLimits := []struct{ name, path, filter, want string }{
		{"userName eq OR'd to the term limit", "/Users", hqOrs(scim.MaxFilterTerms, func(i int) string {
			if i == scim.MaxFilterTerms-1 {
				return `userName eq "` + login + `"`
			}
			return fmt.Sprintf(`userName eq "nobody%d"`, i)
		}), login},
		{"not nested to the depth limit", "/Users",
			strings.Repeat("not (", filter.MaxDepth) + `userName eq "` + login + `"` + strings.Repeat(")", filter.MaxDepth), login},
		{"and/or alternating to the depth limit", "/Users", func() string {
			f := `userName eq "` + login + `"`
			for i := range filter.MaxDepth {
				if i%2 == 0 {
					f = `active eq true and (` + f + `)`
				} else {
					f = `userName eq "nobody" or (` + f + `)`
				}
			}
			return f
		}(), login},
		{"groups.display co to the cost limit", "/Users", `userName eq "` + login + `" and (` +
			hqOrs((scim.MaxFilterCost-1)/8, func(i int) string { return fmt.Sprintf(`groups.display co "team%02d"`, (n/2+i)%100) }) + `)`, login},
		{"the length limit", "/Users", func() string {
			f := `userName eq "` + login + `" or ` + hqOrs(scim.MaxFilterTerms-1, func(i int) string {
				return fmt.Sprintf(`userName eq "%d%s"`, i, strings.Repeat("x", 60))
			})
			return f + strings.Repeat(" ", filter.MaxLength-len(f))
		}(), login},
	}
	for _, tc := range atLimits {
		if len(tc.filter) > filter.MaxLength {
			t.Fatalf("%s: %d bytes", tc.name, len(tc.filter))
		}
		r := get(tc.path, tc.filter)
		if r.code != 200 || !strings.Contains(string(r.body), `"userName":"`+tc.want+`"`) {
			t.Errorf("%s: %s", tc.name, r)
		}
	}
	// One beyond answers 400 invalidFilter naming the limit.
	for _, tc := range []struct{ name, filter, limit string }{
		{"one term too many", hqOrs(scim.MaxFilterTerms+1, func(i int) string { return fmt.Sprintf(`userName eq "u%d"`, i) }),
			fmt.Sprintf("the limit is %d", scim.MaxFilterTerms)},
		{"over the cost", hqOrs(scim.MaxFilterCost/8+1, func(i int) string { return fmt.Sprintf(`groups.display co "%d"`, i) }),
			fmt.Sprintf("the limit is %d", scim.MaxFilterCost)},
		{"too deep", strings.Repeat("not (", filter.MaxDepth+1) + `emails pr` + strings.Repeat(")", filter.MaxDepth+1),
			fmt.Sprintf("deeper than %d", filter.MaxDepth)},
	} {
		r := get("/Users", tc.filter)
		if r.code != 400 || !strings.Contains(string(r.body), `"scimType":"invalidFilter"`) || !strings.Contains(string(r.body), tc.limit) {
			t.Errorf("%s: %s, want 400 invalidFilter naming %q", tc.name, r, tc.limit)
		}
	}

	// Each worst filter alone, for the figures.
	for _, f := range hqWorst {
		r := c.scim("GET", hqPath(f.path)+"filter="+url.QueryEscape(f.filter), "")
		t.Logf("alone: %3d in %-8v %s %.70s", r.code, r.took.Round(time.Millisecond), f.path, f.filter)
	}

	// The worst filters, four at a time without pause, against look-ups.
	dur := 15 * time.Second
	if soak := faultSoak(t); soak > 0 {
		dur = soak / 8
	}
	var lookups, worst latencies
	var worstOK, worst503, worstBad atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; !stop.Load(); i++ {
				f := hqWorst[i%len(hqWorst)]
				r := c.scim("GET", hqPath(f.path)+"filter="+url.QueryEscape(f.filter), "")
				switch {
				case r.err == nil && r.code == 200:
					worstOK.Add(1)
				case r.err == nil && r.code == 503 && r.header.Get("Retry-After") != "" &&
					strings.Contains(string(r.body), "limits.query_timeout"):
					worst503.Add(1)
				default:
					worstBad.Add(1)
					worst.add(r.took, true, fmt.Sprintf("%.60s: %s", f.filter, r))
					continue
				}
				worst.add(r.took, false, "")
			}
		})
	}
	time.Sleep(time.Second) // let the worst filters take what they can
	for g := range 2 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for !stop.Load() {
				p := people[rnd.IntN(n)]
				r := get("/Users", `userName eq "`+p.Login+`"`)
				var l struct {
					TotalResults int
					Resources    []struct{ UserName string }
				}
				problem := ""
				if r.err != nil || r.code != 200 || json.Unmarshal(r.body, &l) != nil || l.TotalResults != 1 ||
					len(l.Resources) != 1 || l.Resources[0].UserName != p.Login {
					problem = r.String()
				}
				lookups.add(r.took, problem != "", problem)
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	elapsed := dur
	t.Logf("hostile queries (%s, %d users, %d memberships):\n  userName eq  %s\n  worst        %s (%d answered, %d stopped at the deadline)",
		driver, n, memberships, lookups.summary(elapsed), worst.summary(elapsed+time.Second), worstOK.Load(), worst503.Load())
	if lookups.errors > 0 {
		t.Errorf("%d look-ups failed: %q", lookups.errors, lookups.bad)
	}
	if worstBad.Load() > 0 {
		t.Errorf("%d worst filters answered neither 200 nor 503 with Retry-After: %q", worstBad.Load(), worst.bad)
	}
	if p99 := lookups.quantile(0.99); p99 > hqLookupP99 {
		t.Errorf("userName eq p99 is %v under the worst filters; the bound is %v", p99, hqLookupP99)
	}
	// The daemon is ready throughout, and after.
	if code, body := p.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
}

// quantile is the q-quantile of the durations recorded.
func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.took) == 0 {
		return 0
	}
	s := slices.Clone(l.took)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// hqPath makes path ready for a query parameter.
func hqPath(path string) string {
	if strings.HasSuffix(path, "&") {
		return path
	}
	return path + "?"
}
