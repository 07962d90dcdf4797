package tasks_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/ldap"
	"github.com/rosterd/roster/sources/ldap/ldaptest"
)

// corpDirectory is the LDIF of n people under ou=people,ou=corp, each with
// a manager (the first person of their hundred), and 1,000 groups that
// hold them all.
func corpDirectory(n int) string {
	var b strings.Builder
	b.Grow(n * 400)
	b.WriteString("dn: ou=corp,dc=example,dc=com\nobjectClass: organizationalUnit\nou: corp\n\n")
	b.WriteString("dn: ou=people,ou=corp,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n")
	b.WriteString("dn: ou=groups,ou=corp,dc=example,dc=com\nobjectClass: organizationalUnit\nou: groups\n\n")
	for i := range n {
		fmt.Fprintf(&b, "dn: uid=user%07d,ou=people,ou=corp,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: user%07d\n"+
			"cn: Given%d Family%d\ngivenName: Given%d\nsn: Family%d\nmail: user%07d@example.com\ntitle: Title %d\n",
			i, i, i, i, i, i, i, i%50)
		if m := i - i%100; m != i {
			fmt.Fprintf(&b, "manager: uid=user%07d,ou=people,ou=corp,dc=example,dc=com\n", m)
		}
		b.WriteString("\n")
	}
	groups := min(1000, n)
	for g := range groups {
		fmt.Fprintf(&b, "dn: cn=Group%03d,ou=groups,ou=corp,dc=example,dc=com\nobjectClass: groupOfNames\ncn: Group%03d\n", g, g)
		for i := g; i < n; i += groups {
			fmt.Fprintf(&b, "member: uid=user%07d,ou=people,ou=corp,dc=example,dc=com\n", i)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// BenchmarkLDAPSync100k reads 100,000 people and 1,000 groups from slapd
// (ROSTER_BENCH_USERS changes the size): the read alone (time, LDAP
// requests, peak heap), then on each store the initial sync, an unchanged
// re-sync (read again, skipped) and a forced one (peak heap of the initial
// and the forced). ROSTER_BENCH_STORES=sqlite leaves PostgreSQL out. Run
// with -benchtime=1x.
func BenchmarkLDAPSync100k(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("ROSTER_BENCH_USERS")); err == nil && v > 0 {
		n = v
	}
	start := time.Now()
	srv := ldaptest.Start(b, ldaptest.WithLDIF(corpDirectory(n)))
	b.Logf("slapd loaded %d people in %s", n, time.Since(start).Round(time.Millisecond))
	src := &config.Source{Name: "corp", Type: config.TypeLDAP, URL: srv.URL, BindDN: ldaptest.RootDN, BindPassword: ldaptest.RootPassword,
		BaseDN: "ou=corp,dc=example,dc=com", Timeout: config.Duration(5 * time.Minute)}

	b.Run("read", func(b *testing.B) {
		for range b.N {
			var res *ldap.Result
			var err error
			resetPeakRSS()
			start := time.Now()
			heap := peakHeap(func() { res, err = ldap.Fetch(context.Background(), config.LDAPOptions(src, nil), io.Discard) })
			took := time.Since(start)
			if err != nil || len(res.Records) != n {
				b.Fatalf("read: %v", err)
			}
			// What the read holds: the records, with the garbage collected.
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-after-read-MiB")
			runtime.KeepAlive(res)
			b.ReportMetric(took.Seconds(), "read-s")
			b.ReportMetric(float64(res.Requests), "requests")
			b.ReportMetric(float64(res.Entries), "entries")
			b.ReportMetric(heap, "peak-heap-MiB")
		}
	})
	// The first pass of a streamed sync: the read keeps an index, not
	// the records.
	b.Run("index", func(b *testing.B) {
		for range b.N {
			var res *ldap.Result
			var err error
			o := config.LDAPOptions(src, nil)
			o.Index = true
			resetPeakRSS()
			start := time.Now()
			heap := peakHeap(func() { res, err = ldap.Fetch(context.Background(), o, io.Discard) })
			took := time.Since(start)
			if err != nil || res.Index == nil || res.Index.Records != n {
				b.Fatalf("read: %v", err)
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-after-read-MiB")
			runtime.KeepAlive(res)
			b.ReportMetric(took.Seconds(), "read-s")
			b.ReportMetric(heap, "peak-heap-MiB")
		}
	})
	for _, driver := range storetest.Drivers {
		if only := os.Getenv("ROSTER_BENCH_STORES"); only != "" && !strings.Contains(only, driver) {
			continue
		}
		b.Run(driver, func(b *testing.B) {
			for range b.N {
				s := storetest.Open(b, driver)
				r := ldapBenchRunner(b, s, srv)
				ctx := context.Background()
				var res *tasks.Result
				var err error
				resetPeakRSS()
				start := time.Now()
				heap := peakHeap(func() { res, err = r.Sync(ctx, "corp", tasks.Options{}) })
				initial := time.Since(start)
				initialRSS := peakRSS()
				if err != nil || res.Task.Status != store.StatusSucceeded || res.Plan.Counts.Created != n {
					b.Fatalf("initial sync: %v %+v", err, res.Task)
				}
				start = time.Now()
				if res, err = r.Sync(ctx, "corp", tasks.Options{}); err != nil || res.Task.Status != store.StatusSkipped {
					b.Fatalf("unchanged sync: %v %+v", err, res.Task)
				}
				unchanged := time.Since(start)
				resetPeakRSS()
				start = time.Now()
				forcedHeap := peakHeap(func() { res, err = r.Sync(ctx, "corp", tasks.Options{Force: true}) })
				forcedRSS := peakRSS()
				if err != nil || res.Task.Status != store.StatusSucceeded {
					b.Fatalf("forced sync: %v %+v", err, res.Task)
				}
				forced := time.Since(start)
				b.ReportMetric(initial.Seconds(), "initial-s")
				b.ReportMetric(unchanged.Seconds(), "unchanged-s")
				b.ReportMetric(forced.Seconds(), "forced-unchanged-s")
				b.ReportMetric(heap, "peak-heap-MiB")
				b.ReportMetric(forcedHeap, "forced-peak-heap-MiB")
				if initialRSS > 0 {
					b.ReportMetric(initialRSS, "peak-rss-MiB")
					b.ReportMetric(forcedRSS, "forced-peak-rss-MiB")
				}
			}
		})
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.Logf("peak RSS of the benchmark process: %d MiB", ru.Maxrss/1024)
	}
}

// resetPeakRSS collects the garbage, returns it to the system and resets
// the process's peak resident size (Linux: clear_refs 5), so that the
// peaks measured next are what follows: building the directory of a
// million people leaves about 800 MiB of garbage that the collector,
// paced by that heap, would otherwise leave in place for a while.
func resetPeakRSS() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS is the process's peak resident size since resetPeakRSS, in MiB
// (0 where /proc does not say).
func peakRSS() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err == nil {
				return float64(kb) / 1024
			}
		}
	}
	return 0
}

func ldapBenchRunner(b *testing.B, s *store.Store, srv *ldaptest.Server) *tasks.Runner {
	dir := b.TempDir()
	path := dir + "/roster.yaml"
	if err := os.WriteFile(path, []byte(`log:
  dir: log
sources:
  - name: corp
    type: ldap
    url: `+srv.URL+`
    bind_dn: `+ldaptest.RootDN+`
    bind_password: `+ldaptest.RootPassword+`
    base_dn: ou=corp,dc=example,dc=com
    timeout: 5m
`), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.SyncSources(b.Context(), []string{"corp"}, []string{"ldap"}); err != nil {
		b.Fatal(err)
	}
	return &tasks.Runner{Store: s, Config: cfg, Log: slog.New(slog.DiscardHandler)}
}
