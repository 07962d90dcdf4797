package tasks_test

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// writeStaff writes n people in 1,000 groups; people whose index is
// divisible by changeEvery (when > 0) get a changed e-mail.
func writeStaff(tb testing.TB, path string, n, changeEvery int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		mail := fmt.Sprintf("user%07d@example.com", i)
		if changeEvery > 0 && i%changeEvery == 0 {
			mail = fmt.Sprintf("user%07d@changed.example.com", i)
		}
		fmt.Fprintf(w, "%07d,Given%d,Family%d,user%07d,%s,Group%03d|Site%d,\n", i, i, i, i, mail, i%1000, i%7)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
}

// writeHeapProfile writes what is live now (after a collection) to path:
// where ROSTER_BENCH_HEAPPROF asks, at each new peak, to see what holds it.
func writeHeapProfile(path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.WriteHeapProfile(f)
}

// peakHeap samples the Go heap while fn runs and returns its peak in MiB.
func peakHeap(fn func()) float64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				if path := os.Getenv("ROSTER_BENCH_HEAPPROF"); path != "" && ms.HeapInuse > peak.Load()*12/10 {
					writeHeapProfile(path)
				}
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return float64(peak.Load()) / (1 << 20)
}

// BenchmarkSync100k measures SPEC §11 on 100,000 users and 1,000 groups:
// the initial sync, an unchanged re-sync (the content check skips it), a
// forced unchanged re-sync, a 1%-changed re-sync, the schema floor (the
// rows the sync left, bulk-loaded into a fresh store: see schemaFloor) and
// the raw bulk-load floor of the same file (sqlite3 .import / psql \copy
// into one table with a primary key and a unique login index). Run with -benchtime=1x;
// ROSTER_BENCH_USERS changes the size, ROSTER_BENCH_HEAPPROF=file writes
// a heap profile at the peak, ROSTER_BENCH_WHOLE=1 plans every file whole
// instead of streaming it, ROSTER_BENCH_SINK=1 registers a sink first so
// that every change is recorded in the outbox (migration 11) too.
func BenchmarkSync100k(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("ROSTER_BENCH_USERS")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	file := filepath.Join(dir, "staff.csv")
	changed := filepath.Join(dir, "changed.csv")
	writeStaff(b, changed, n, 100)

	for _, driver := range storetest.Drivers {
		b.Run(driver, func(b *testing.B) {
			for range b.N {
				writeStaff(b, file, n, 0)
				s := storetest.Open(b, driver)
				r := runner(b, s, dir, file)
				if os.Getenv("ROSTER_BENCH_WHOLE") != "" {
					r.Config.Limits.StreamFrom = 1 << 50 // plan every file whole, to compare
				}
				ctx := context.Background()
				if os.Getenv("ROSTER_BENCH_SINK") != "" {
					if err := s.RegisterSinks(ctx, []string{"bench"}); err != nil {
						b.Fatal(err)
					}
				}
				var res *tasks.Result
				var err error
				start := time.Now()
				heap := peakHeap(func() { res, err = r.Sync(ctx, "staff", tasks.Options{}) })
				initial := time.Since(start)
				if err != nil || res.Task.Status != store.StatusSucceeded {
					b.Fatalf("initial sync: %v %+v", err, res.Task)
				}
				start = time.Now()
				if res, err = r.Sync(ctx, "staff", tasks.Options{}); err != nil || res.Task.Status != store.StatusSkipped {
					b.Fatalf("unchanged sync: %v %+v", err, res.Task)
				}
				skipped := time.Since(start)
				start = time.Now()
				if res, err = r.Sync(ctx, "staff", tasks.Options{Force: true}); err != nil || res.Task.Status != store.StatusSucceeded {
					b.Fatalf("forced unchanged sync: %v %+v", err, res.Task)
				}
				forced := time.Since(start)
				copyFile(b, changed, file)
				start = time.Now()
				if res, err = r.Sync(ctx, "staff", tasks.Options{}); err != nil || res.Task.Status != store.StatusSucceeded {
					b.Fatalf("1%% changed sync: %v %+v", err, res.Task)
				}
				onePct := time.Since(start)
				if res.Plan.Counts.Updated != n/100 {
					b.Fatalf("1%% changed sync updated %d users, want %d", res.Plan.Counts.Updated, n/100)
				}
				floor := bulkLoadFloor(b, driver, file)
				schema, shell := schemaFloor(b, driver, s)

				b.ReportMetric(initial.Seconds(), "initial-s")
				b.ReportMetric(skipped.Seconds(), "unchanged-s")
				b.ReportMetric(forced.Seconds(), "forced-unchanged-s")
				b.ReportMetric(onePct.Seconds(), "1pct-changed-s")
				b.ReportMetric(heap, "peak-heap-MiB")
				b.ReportMetric(schema.Seconds(), "schema-floor-s")
				b.ReportMetric(initial.Seconds()/schema.Seconds(), "x-schema-floor")
				if shell > 0 {
					b.ReportMetric(shell.Seconds(), "schema-floor-shell-s")
					b.ReportMetric(initial.Seconds()/shell.Seconds(), "x-schema-floor-shell")
				}
				if floor > 0 {
					b.ReportMetric(floor.Seconds(), "floor-s")
					b.ReportMetric(initial.Seconds()/floor.Seconds(), "x-floor")
				}
			}
		})
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.Logf("peak RSS of the benchmark process: %d MiB", ru.Maxrss/1024)
	}
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// bulkLoadFloor times the database's own bulk loader on the file, or
// returns 0 when its command-line tool is missing.
func bulkLoadFloor(tb testing.TB, driver, file string) time.Duration {
	tb.Helper()
	const table = `CREATE TABLE floor (id TEXT PRIMARY KEY, first_name TEXT, last_name TEXT, login TEXT NOT NULL,
		email TEXT, groups TEXT, password TEXT); CREATE UNIQUE INDEX floor_login ON floor (login);`
	var cmd *exec.Cmd
	switch driver {
	case store.SQLite:
		if _, err := exec.LookPath("sqlite3"); err != nil {
			tb.Log("sqlite3 not installed: no floor")
			return 0
		}
		db := filepath.Join(tb.TempDir(), "floor.db")
		cmd = exec.Command("sqlite3", db)
		cmd.Stdin = strings.NewReader(table + "\n.mode csv\n.import " + file + " floor\n")
	case store.Postgres:
		if _, err := exec.LookPath("psql"); err != nil {
			tb.Log("psql not installed: no floor")
			return 0
		}
		dsn := storetest.DSN(tb, driver)
		u, _ := url.Parse(dsn)
		schema := u.Query().Get("search_path")
		q := u.Query()
		q.Del("search_path")
		u.RawQuery = q.Encode()
		cmd = exec.Command("psql", "-q", "-v", "ON_ERROR_STOP=1", u.String())
		cmd.Stdin = strings.NewReader("SET search_path TO " + schema + ";\n" + table + "\n\\copy floor FROM '" + file + "' WITH (FORMAT csv)\n")
	}
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("bulk load floor on %s: %v\n%s", driver, err, out)
	}
	return time.Since(start)
}
