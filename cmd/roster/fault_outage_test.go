package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
)

// TestFaultOutageLongerThanRetries cuts PostgreSQL off during a sync for
// longer than the automatic retries last (tasks.max_retries: 1 retries
// once, 5 s later), changes the source's file during the outage, and lets
// the database back. Within a bound the daemon must bring itself back
// without a restart: the cut task is failed with its reason, a new task
// applies the file changed during the outage, and the tasks table, the
// admin API's running flag and state, roster_sync_running and
// roster_sync_tasks_total tell the same story.
func TestFaultOutageLongerThanRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	const n = 20000
	const outage = 15 * time.Second // the single retry is due 5 s after the failure
	const bound = 30 * time.Second  // from the restore to a consistent, synced daemon
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
	w.write(t, "roster.yaml", faultConfig(w, "tasks:\n  max_retries: 1\n", "    max_removals: '100%'\n"))
	p := startServeProc(t, w)
	p.waitReady(t)
	w.dsn = direct // the test reads the store directly, not through the proxy
	s := w.open(t)
	defer s.Close()
	waitQuiet(t, s, "staff", 60*time.Second, p.stderr.String)
	c := newFltClient(p.base, 60*time.Second)
	defer c.close()

	// A big sync, cut 300 ms after it started.
	w.writeAtomic(t, "staff.csv", csvOf(manyPeople(n, 1)))
	r := c.do("POST", "/api/v1/sources/staff/sync", fltTokAdmin, "", "")
	var synced struct {
		ID int64 `json:"id"`
	}
	json.Unmarshal(r.body, &synced) //nolint:errcheck // checked below
	if r.code != http.StatusAccepted || synced.ID == 0 {
		t.Fatalf("POST sync did not start a task: %s", r)
	}
	time.Sleep(300 * time.Millisecond)
	proxy.cut()
	// The file changes during the outage (watch: false: only the
	// daemon's recovery can apply it).
	time.Sleep(outage / 2)
	w.writeAtomic(t, "staff.csv", csvOf(manyPeople(n, 2)))
	time.Sleep(outage / 2)
	proxy.restore()
	restoredAt := time.Now()

	var applied *store.Task
	for deadline := restoredAt.Add(bound); applied == nil; time.Sleep(250 * time.Millisecond) {
		for _, tk := range fltTasks(t, s, "staff") {
			if tk.ID > synced.ID && tk.Status == store.StatusSucceeded {
				applied = &tk
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sync succeeded within %s of the restore; tasks %+v; the log:\n%s", bound, fltTasks(t, s, "staff"), p.stderr)
		}
	}
	tks := waitQuiet(t, s, "staff", time.Until(restoredAt.Add(bound)), p.stderr.String)
	recovered := time.Since(restoredAt)
	cut := tks[synced.ID]
	if cut.Status != store.StatusFailed || cut.Errors == "[]" {
		t.Errorf("the cut task %d is %s (errors %s), want failed with its reason", cut.ID, cut.Status, cut.Errors)
	}
	st := w.state(t, "staff")
	if len(st.Users) != n || !strings.HasSuffix(st.Users["0000001"].Email, ".r2@example.com") {
		t.Errorf("after the recovery: %d users, the first's e-mail %q; want %d users from the file written during the outage",
			len(st.Users), st.Users["0000001"].Email, n)
	}

	// One truth: the tasks table, the admin API and the metrics.
	inTable := map[string]int{}
	for _, tk := range tks {
		inTable[tk.Status]++
	}
	r = c.do("GET", "/api/v1/sources", fltTokAdmin, "", "")
	var sources struct {
		Items []struct {
			Name     string `json:"name"`
			State    string `json:"state"`
			Running  bool   `json:"running"`
			LastTask struct {
				ID int64 `json:"id"`
			} `json:"last_task"`
		} `json:"items"`
	}
	if err := json.Unmarshal(r.body, &sources); err != nil || r.code != http.StatusOK {
		t.Fatalf("GET /api/v1/sources: %s (%v)", r, err)
	}
	for _, src := range sources.Items {
		if src.Name == "staff" && (src.Running || src.State != store.StatusSucceeded || src.LastTask.ID != applied.ID) {
			t.Errorf("the admin API says staff is %s (running %t, last task %d); want succeeded by task %d, not running",
				src.State, src.Running, src.LastTask.ID, applied.ID)
		}
	}
	r = c.do("GET", "/metrics", "", "", "")
	if r.code != http.StatusOK {
		t.Fatalf("GET /metrics: %s", r)
	}
	if got := metricSum(string(r.body), "roster_sync_running", `source="staff"`); got != 0 {
		t.Errorf("roster_sync_running{source=\"staff\"} is %v after the recovery, want 0", got)
	}
	for _, status := range []string{store.StatusFailed, store.StatusSucceeded, store.StatusRunning} {
		got := metricSum(string(r.body), "roster_sync_tasks_total", `source="staff"`, `status="`+status+`"`)
		if int(got) != inTable[status] {
			t.Errorf("roster_sync_tasks_total{source=\"staff\",status=%q} is %v; the tasks table holds %d such tasks (%v)",
				status, got, inTable[status], inTable)
		}
	}
	if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
	}
	t.Logf("fault: outage of %s, longer than the retries: task %d failed (%s); task %d (%s) applied the file changed during the outage; consistent %s after the restore; tasks %v",
		outage, cut.ID, strings.TrimSpace(cut.Errors), applied.ID, applied.Trigger, recovered.Round(time.Millisecond), inTable)
}

// metricSum adds the values of the series of a metric whose labels
// include every one of labels.
func metricSum(exposition, name string, labels ...string) float64 {
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(exposition))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		end := strings.LastIndex(line, "} ")
		if end < 0 {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line[:end], l)
		}
		if v, err := strconv.ParseFloat(line[end+2:], 64); ok && err == nil {
			sum += v
		}
	}
	return sum
}
