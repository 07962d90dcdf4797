package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSyncLarge measures SPEC §11's memory target through the binary
// an operator runs: `roster sync staff` of ROSTER_BENCH_USERS people
// (default 1,000,000) in 1,000 groups plus 7 sites, first into an empty
// directory, then again with 1% of the e-mails changed. It reports each
// run's wall time and the peak resident memory of the roster process
// (getrusage of the child). Run it with `make bench-large` or
// `go test -run '^$' -bench SyncLarge -benchtime 1x -timeout 60m ./cmd/roster`.
func BenchmarkSyncLarge(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("ROSTER_BENCH_USERS")); err == nil && v > 0 {
		n = v
	}
	for _, driver := range []string{"sqlite", "postgres"} {
		b.Run(driver, func(b *testing.B) {
			for range b.N {
				w := newWorkdir(b, driver)
				w.writeConfig(b, settings{})
				writePeople(b, w.path("staff.csv"), n, 0)
				initial, rss := timedSync(b, w)
				writePeople(b, w.path("staff.csv"), n, 100)
				resync, rss2 := timedSync(b, w)
				b.ReportMetric(initial.Seconds(), "initial-s")
				b.ReportMetric(rss, "initial-peak-RSS-MiB")
				b.ReportMetric(resync.Seconds(), "1pct-changed-s")
				b.ReportMetric(rss2, "1pct-peak-RSS-MiB")
			}
		})
	}
}

// timedSync runs `roster sync staff` and returns its wall time and the
// process's peak resident memory in MiB.
func timedSync(b *testing.B, w *workdir) (time.Duration, float64) {
	b.Helper()
	cmd := exec.Command(rosterBin, "sync", "staff", "--json")
	cmd.Dir = w.dir
	cmd.Env = cleanEnv()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("roster sync staff: %v\n%.2000s", err, out)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatal("no resource usage for the roster process")
	}
	return took, float64(ru.Maxrss) / 1024
}

// writePeople writes n people in 1,000 groups and 7 sites; people whose
// index is divisible by changeEvery (when > 0) get a changed e-mail.
func writePeople(tb testing.TB, path string, n, changeEvery int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		domain := "example.com"
		if changeEvery > 0 && i%changeEvery == 0 {
			domain = "changed.example.com"
		}
		fmt.Fprintf(w, "%07d,Given%d,Family%d,user%07d,user%07d@%s,Group%03d|Site%d,\n", i, i, i, i, i, domain, i%1000, i%7)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}
