package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
)

// BenchmarkSink100k provisions a second `roster serve` (SQLite, a scim
// source) on loopback from a roster on each store: first the whole
// directory of ROSTER_BENCH_USERS people (default 100,000) in 1,000 groups,
// which the service does not hold yet (first contact: every user is
// looked up by userName and externalId, then created), then a 1% change
// (new given names) arriving through a sync. The sink runs without a rate
// limit. For each phase it reports the wall time, the requests the
// service answered, the CPU time of each process (roster's per delivered
// user), and the time the service spent answering (the sum of its request
// durations) against the wall time: the rest is roster's own work and the
// round trips. Run it with `make bench` or
// `go test -run '^$' -bench Sink100k -benchtime 1x ./cmd/roster`.
func BenchmarkSink100k(b *testing.B) {
	users := 100_000
	if v, err := strconv.Atoi(os.Getenv("ROSTER_BENCH_USERS")); err == nil && v > 0 {
		users = v
	}
	for _, driver := range []string{"sqlite", "postgres"} {
		b.Run(driver, func(b *testing.B) {
			for range b.N {
				benchSink(b, driver, users)
			}
		})
	}
}

// benchPeople are n people in 1,000 groups.
func benchPeople(n int, given string) []person {
	ps := make([]person, n)
	for i := range ps {
		ps[i] = person{ID: fmt.Sprintf("%07d", i), First: given, Last: fmt.Sprintf("Family%d", i),
			Login: fmt.Sprintf("user%07d", i), Email: fmt.Sprintf("user%07d@example.com", i), Groups: fmt.Sprintf("group%03d", i%1000)}
	}
	return ps
}

func benchSink(b *testing.B, driver string, users int) {
	svcDir := newWorkdir(b, store.SQLite)
	svcDir.write(b, "roster.yaml", fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  dsn: %s\n"+
		"tokens:\n  - {name: up, hash: '%s', scopes: [scim:read, scim:write]}\nsources:\n  - {name: idp, type: scim}\n",
		yamlQuote(svcDir.dsn), sinkTokenHash()))
	svc := startServeProc(b, svcDir)

	people := benchPeople(users, "Given")
	up := newWorkdir(b, driver)
	up.write(b, "staff.csv", csvOf(people))
	up.write(b, "roster.yaml", fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  driver: %s\n  dsn: %s\n"+
		"sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n    watch: true\n"+
		"sinks:\n  - name: svc\n    url: %s/scim/v2\n    auth: {bearer: %s}\n    interval: 200ms\n    limits: {rate: 0, concurrency: 4}\n",
		driver, yamlQuote(up.dsn), svc.base, sinkToken))
	// The directory exists before the sink does: its first contact
	// compares all of it.
	up.want(b, 0, "sync", "staff")

	b.ResetTimer()
	start := time.Now()
	svcBefore := scrape(b, svc)
	svcCPU := procCPU(b, svc)
	proc := startServeProc(b, up)
	groups := 1000
	if users < groups {
		groups = users
	}
	scrapes := waitSink(b, proc, float64(users+groups), 120*time.Minute)
	benchReport(b, "initial", start, proc, 0, svc, svcBefore, svcCPU, users+groups, scrapes)

	// 1%: new given names for every hundredth person.
	for i := 0; i < users; i += 100 {
		people[i].First = "Changed"
	}
	start = time.Now()
	upCPU := procCPU(b, proc)
	upBefore := scrape(b, proc)
	svcBefore = scrape(b, svc)
	svcCPU = procCPU(b, svc)
	up.write(b, "staff.csv", csvOf(people))
	scrapes = waitSink(b, proc, upBefore["roster_sink_delivered_total"]+float64(users/100), 10*time.Minute)
	benchReport(b, "changed", start, proc, upCPU, svc, svcBefore, svcCPU, users/100, scrapes)
	b.StopTimer()
	proc.signalAndWait(b, syscall.SIGTERM, time.Minute)
	svc.signalAndWait(b, syscall.SIGTERM, time.Minute)
}

// waitSink waits until the sink has delivered at least want resources in
// all (roster_sink_delivered_total) and has nothing left in its queue,
// and returns how often it scraped roster: a scrape counts the directory
// (roster_directory_users), which costs roster CPU that is not the sink's.
func waitSink(b *testing.B, p *serveProc, want float64, timeout time.Duration) int {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for n := 1; ; n++ {
		m := scrape(b, p)
		if m["roster_sink_delivered_total"] >= want && m["roster_sink_queue"] == 0 {
			return n
		}
		if time.Now().After(deadline) {
			b.Fatalf("after %s the sink delivered %.0f of %.0f (queue %.0f, failed %.0f); roster's log:\n%s",
				timeout, m["roster_sink_delivered_total"], want, m["roster_sink_queue"], m["roster_sink_failed_total"], p.stderr)
		}
		time.Sleep(time.Second)
	}
}

// scrapeCPU is roster's CPU time for one scrape of /metrics, measured over
// ten in a row.
func scrapeCPU(b *testing.B, p *serveProc) time.Duration {
	b.Helper()
	before := procCPU(b, p)
	for range 10 {
		scrape(b, p)
	}
	return (procCPU(b, p) - before) / 10
}

// benchReport reports one phase: wall time, requests, both processes'
// CPU, and the service's share of the time.
// Roster's CPU is without what the benchmark's own scrapes cost it.
func benchReport(b *testing.B, phase string, start time.Time, up *serveProc, upCPU time.Duration, svc *serveProc, svcBefore map[string]float64, svcCPU time.Duration, delivered, scrapes int) {
	b.Helper()
	wall := time.Since(start)
	rosterCPU := procCPU(b, up) - upCPU
	serviceCPU := procCPU(b, svc) - svcCPU
	after := scrape(b, svc)
	requests := after["roster_scim_requests_total"] - svcBefore["roster_scim_requests_total"]
	served := after["roster_scim_request_duration_seconds_sum"] - svcBefore["roster_scim_request_duration_seconds_sum"]
	perScrape := scrapeCPU(b, up)
	rosterCPU -= time.Duration(scrapes) * perScrape
	b.Logf("%s: %d scrapes of roster's /metrics at %s of CPU each, taken off its CPU time", phase, scrapes, perScrape)
	b.ReportMetric(wall.Seconds(), phase+"-s")
	b.ReportMetric(requests, phase+"-requests")
	b.ReportMetric(float64(rosterCPU.Microseconds())/float64(delivered), phase+"-roster-cpu-us/resource")
	b.ReportMetric(rosterCPU.Seconds(), phase+"-roster-cpu-s")
	b.ReportMetric(serviceCPU.Seconds(), phase+"-service-cpu-s")
	b.ReportMetric(served, phase+"-service-answering-s")
	b.Logf("%s: %d resources in %s, %.0f requests (%.0f/s); CPU roster %s (%.0f µs a resource), service %s; "+
		"the service answered for %.1f s of the %.1f s (%.0f%%), the rest is roster and the round trips",
		phase, delivered, wall.Round(time.Millisecond), requests, requests/wall.Seconds(), rosterCPU.Round(time.Millisecond),
		float64(rosterCPU.Microseconds())/float64(delivered), serviceCPU.Round(time.Millisecond), served, wall.Seconds(), 100*served/wall.Seconds())
}

// scrape sums every series of each family of p's /metrics.
func scrape(b *testing.B, p *serveProc) map[string]float64 {
	b.Helper()
	code, body := p.get(b, "/metrics")
	if code != 200 {
		b.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name = line[:i]
			_, rest, _ = strings.Cut(line[strings.LastIndexByte(line, '}'):], " ")
		}
		if v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64); err == nil {
			out[name] += v
		}
	}
	return out
}

// procCPU is the user and system CPU time a running process has used
// (/proc/PID/stat, in clock ticks of 10 ms).
func procCPU(b *testing.B, p *serveProc) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name in parentheses: utime and stime
	// are the 12th and 13th.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
