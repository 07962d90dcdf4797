package deploycheck

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pendingMetrics are SPEC §7 series that the dashboard and the rules use
// but that this build of roster may not export yet. While one is missing
// from the scrape, the checks accept it and say so loudly; once roster
// exports it, it is checked like any other and this entry can go.
var pendingMetrics = map[string]string{}

var (
	scrapeOnce sync.Once
	scraped    map[string]string // metric family -> type
	scrapeErr  error
)

// exportedMetrics starts the real roster, makes the events happen after
// which its series exist (a CSV sync, a SCIM request, a push, a sink's
// delivery with one refused user), scrapes
// /metrics and returns every sample name it may expose: the families of
// the # TYPE lines, histograms with their _bucket, _sum and _count.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	bin := roster(t)
	scrapeOnce.Do(func() { scraped, scrapeErr = scrapeRoster(bin) })
	if scrapeErr != nil {
		t.Fatal(scrapeErr)
	}
	names := map[string]bool{"up": true} // from Prometheus itself
	for name, typ := range scraped {
		names[name] = true
		if typ == "histogram" || typ == "summary" {
			names[name+"_sum"], names[name+"_count"] = true, true
		}
		if typ == "histogram" {
			names[name+"_bucket"] = true
		}
	}
	for name, why := range pendingMetrics {
		if !names[name] {
			t.Logf("NOTE: roster does not export %s yet (%s): accepted as pending", name, why)
			names[name] = true
		}
	}
	return names
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func scrapeRoster(bin string) (map[string]string, error) {
	dir, err := os.MkdirTemp("", "roster-metrics-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	staff, err := os.ReadFile(filepath.Join(repoDir, "deploy/examples/staff.csv"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "staff.csv"), staff, 0o600); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	svc := sinkService()
	defer svc.Close()
	const token = "deploycheck-token"
	sum := sha256.Sum256([]byte(token))
	cfg := fmt.Sprintf(`listen: %s
store: {driver: sqlite, dsn: roster.db}
log: {dir: log}
tokens:
  - name: check
    hash: sha256:%s
    scopes: [scim:read, admin, "push:*"]
sources:
  - name: staff
    type: csv
    path: staff.csv
    schedule: "@every 1h"
    orphans: deactivate
  - name: api
    type: push
sinks:
  - name: svc
    url: %s/scim/v2
    auth: {bearer: deploycheck-sink-token}
    interval: 200ms
    limits: {rate: 0}
`, addr, hex.EncodeToString(sum[:]), svc.URL)
	cfgPath := filepath.Join(dir, "roster.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	var logs strings.Builder
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() //nolint:errcheck // exit status is not the point
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill() //nolint:errcheck
			<-exited
		}
	}()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("roster serve: "+format+"\nroster's log:\n%s", append(args, logs.String())...)
	}

	base := "http://" + addr
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(method, path, body string) (int, string, error) {
		req, err := http.NewRequestWithContext(context.Background(), method, base+path, strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	// Ready, then the first sync of staff (it runs at start) and the
	// sink's first delivery of it, one user refused.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fail("exited early")
		default:
		}
		code, body, err := get("GET", "/metrics", "")
		if err == nil && code == 200 && strings.Contains(body, `roster_sync_tasks_total{source="staff"`) &&
			strings.Contains(body, `roster_sink_delivered_total{action="created",sink="svc"}`) &&
			strings.Contains(body, `roster_sink_failed_total{kind="resource",sink="svc"}`) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fail("no finished sync of staff and delivery to sink svc within 60s (last /metrics: %d %v)", code, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _, err := get("GET", "/readyz", ""); err != nil || code != 200 {
		return nil, fail("/readyz answered %d, %v", code, err)
	}
	// A SCIM request (roster_scim_*) and a push (roster_push_requests_total).
	if code, _, err := get("GET", "/scim/v2/Users?count=1", ""); err != nil || code != 200 {
		return nil, fail("GET /scim/v2/Users answered %d, %v", code, err)
	}
	get("POST", "/api/v1/sources/api/push", `{"users": []}`) //nolint:errcheck // any answer will do
	_, body, err := get("GET", "/metrics", "")
	if err != nil {
		return nil, fail("scrape: %v", err)
	}
	types := map[string]string{}
	typeLine := regexp.MustCompile(`^# TYPE (\S+) (\S+)$`)
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := typeLine.FindStringSubmatch(sc.Text()); m != nil {
			types[m[1]] = m[2]
		}
	}
	if len(types) == 0 {
		return nil, fail("no # TYPE lines in /metrics:\n%s", body)
	}
	return types, nil
}

// TestExportedMetrics pins the SPEC §7 series that the scrape must show.
func TestExportedMetrics(t *testing.T) {
	names := exportedMetrics(t)
	for _, want := range []string{
		"roster_sync_tasks_total", "roster_sync_task_duration_seconds_bucket",
		"roster_sync_last_success_timestamp_seconds", "roster_sync_records_total",
		"roster_sync_running", "roster_directory_users", "roster_directory_groups",
		"roster_scim_requests_total", "roster_scim_request_duration_seconds_bucket",
		"roster_push_requests_total", "roster_config_last_reload_successful",
		"roster_build_info", "go_goroutines", "process_resident_memory_bytes",
		"roster_sink_delivered_total", "roster_sink_failed_total", "roster_sink_lag_seconds",
		"roster_sink_queue", "roster_sink_quarantined",
	} {
		if !names[want] {
			t.Errorf("roster does not export %s", want)
		}
	}
	var roster []string
	for n := range scraped {
		if strings.HasPrefix(n, "roster_") {
			roster = append(roster, n+" ("+scraped[n]+")")
		}
	}
	sort.Strings(roster)
	t.Logf("roster exports: %s", strings.Join(roster, ", "))
}
