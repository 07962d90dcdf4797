package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestSinkRunCommand: `roster sink NAME --run` asks the roster serve that
// delivers the sink and waits for its run, runs the sink itself when no
// serve does, and exits as the README's table says; `roster sink NAME`
// lists the recent runs, on each store.
func TestSinkRunCommand(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			sum := sha256.Sum256([]byte(sinkToken))
			hash := "sha256:" + hex.EncodeToString(sum[:])
			svcDir := newWorkdir(t, store.SQLite)
			svcDir.write(t, "roster.yaml", fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  dsn: %s\n"+
				"tokens:\n  - {name: up, hash: '%s', scopes: [scim:read, scim:write]}\nsources:\n  - {name: idp, type: scim}\n",
				yamlQuote(svcDir.dsn), hash))
			svc := startServeProc(t, svcDir)
			svc.waitLog(t, time.Minute, func(l map[string]any) bool { return l["msg"] == "roster is running" })

			up := newWorkdir(t, driver)
			people := sinkPeople(30, "Given")
			up.write(t, "staff.csv", csvOf(people))
			up.write(t, "roster.yaml", serveConfig(up, "")+fmt.Sprintf(
				"tokens:\n  - {name: check, hash: '%s', scopes: [scim:read]}\n"+
					"sinks:\n  - name: svc\n    url: %s/scim/v2\n    auth: {bearer: %s}\n    interval: 1h\n"+
					"  - name: idle\n    url: %s/scim/v2\n    auth: {bearer: %s}\n    enabled: false\n",
				hash, svc.base, sinkToken, svc.base, sinkToken))
			up.want(t, 0, "sync", "staff")
			if r := up.want(t, 5, "sink", "svc", "--run"); !strings.Contains(r.stderr, "not registered yet") {
				t.Fatalf("run a sink no roster serve registered:\n%s", r)
			}
			if r := up.want(t, 5, "sink", "idle", "--run"); !strings.Contains(r.stderr, "disabled") {
				t.Fatalf("run a disabled sink:\n%s", r)
			}

			// A running serve delivers the sink: the command asks it.
			proc := startServeProc(t, up)
			proc.waitLog(t, time.Minute, func(l map[string]any) bool { return l["msg"] == "roster is running" })
			converged(t, "after the first run", proc.base, svc.base)
			r := up.want(t, 0, "sink", "svc", "--run")
			if !strings.Contains(r.stderr, "a running roster serve delivers sink svc") || !strings.Contains(r.stdout, "of sink svc: ok (operator)") {
				t.Fatalf("run a sink a serve delivers:\n%s", r)
			}
			if code := proc.signalAndWait(t, syscall.SIGTERM, 30*time.Second); code != 0 {
				t.Fatalf("SIGTERM: exit %d", code)
			}

			// No serve runs: the command runs the sink itself. On
			// PostgreSQL the outbox is read up to the oldest running
			// transaction of the server, so the change may need a few runs.
			people[0].First, people[1].First = "Renamed", "Renamed"
			up.write(t, "staff.csv", csvOf(people))
			up.want(t, 0, "sync", "staff")
			var run struct {
				ID      int64  `json:"id"`
				Trigger string `json:"trigger"`
				Status  string `json:"status"`
				Counts  struct {
					Updated int `json:"updated"`
				} `json:"counts"`
				Errors []any `json:"errors"`
			}
			updated := 0
			for deadline := time.Now().Add(time.Minute); updated < 2; {
				r := up.want(t, 0, "sink", "svc", "--run", "--json")
				if err := json.Unmarshal([]byte(r.stdout), &run); err != nil {
					t.Fatalf("--run --json: %v\n%s", err, r)
				}
				if run.Trigger != "operator" || run.Status != "ok" || run.Errors == nil {
					t.Fatalf("--run --json: %s", r.stdout)
				}
				if updated += run.Counts.Updated; time.Now().After(deadline) {
					t.Fatalf("the renamed users were not delivered within a minute (%d)", updated)
				}
			}
			if held := heldBy(t, svc.base); held["user00000"] != "Renamed true" {
				t.Fatalf("user00000 on the service: %q", held["user00000"])
			}

			// The recent runs, in text and in JSON.
			r = up.want(t, 0, "sink", "svc")
			if !strings.Contains(r.stdout, "recent runs") || !strings.Contains(r.stdout, "operator") || !strings.Contains(r.stdout, "interval") {
				t.Fatalf("roster sink svc:\n%s", r)
			}
			var view sinks.View
			if err := json.Unmarshal([]byte(up.want(t, 0, "sink", "svc", "--json").stdout), &view); err != nil {
				t.Fatal(err)
			}
			if len(view.Runs) < 3 || view.LastRun == nil || view.LastRun.ID != run.ID || view.Runs[len(view.Runs)-1].Trigger != "interval" ||
				view.Runs[len(view.Runs)-1].Counts.Created < 30 {
				t.Fatalf("roster sink svc --json: %+v", view)
			}

			// The service is gone: the run fails, exit 1, and says why
			// without the sink's URL or token.
			if code := svc.signalAndWait(t, syscall.SIGTERM, 30*time.Second); code != 0 {
				t.Fatalf("the service's SIGTERM: exit %d", code)
			}
			r = up.want(t, 1, "sink", "svc", "--run")
			if !strings.Contains(r.stdout, "failed (operator)") || !strings.Contains(r.stdout, "GET /ServiceProviderConfig") ||
				strings.Contains(r.stdout+r.stderr, svc.base) || strings.Contains(r.stdout+r.stderr, sinkToken) {
				t.Fatalf("run against a service that is gone:\n%s", r)
			}
			if r := up.want(t, 0, "sinks"); !strings.Contains(r.stdout, "failing") {
				t.Fatalf("roster sinks after a failed run:\n%s", r)
			}
		})
	}
}
