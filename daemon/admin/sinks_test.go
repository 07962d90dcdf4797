package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon"
	"github.com/rosterd/roster/daemon/admin"
	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/scim"
)

const serviceToken = "service-secret-token"

// newSinkEnv is newEnv with the sink svc (interval an hour: it runs at
// start and when asked) provisioning another roster store over SCIM.
func newSinkEnv(t *testing.T, st *store.Store) *env {
	t.Helper()
	ctx := context.Background()
	svcStore := storetest.Open(t, store.SQLite)
	if err := svcStore.SyncSources(ctx, []string{"idp"}, []string{config.TypeSCIM}); err != nil {
		t.Fatal(err)
	}
	toks := []config.Token{{Name: "t", Hash: hashOf(serviceToken), Scopes: []string{config.ScopeSCIMWrite}}}
	svc := httptest.NewServer(scim.NewHandler(scim.Options{Directory: svcStore.SCIM(), Writer: svcStore.SCIMWriter(),
		Source: func() string { return "idp" }, Authenticator: scim.Tokens(func() []config.Token { return toks })}))
	t.Cleanup(svc.Close)

	e := &env{t: t, dir: t.TempDir(), st: st}
	e.write("staff.csv", people(20))
	e.write("roster.yaml", configYAML("")+fmt.Sprintf("sinks:\n  - name: svc\n    url: %s/scim/v2\n    auth: {bearer: %s}\n    interval: 1h\n  - name: idle\n    url: %s/scim/v2\n    auth: {bearer: %s}\n    enabled: false\n",
		svc.URL, serviceToken, svc.URL, serviceToken))
	cfg, err := config.Load(e.path("roster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SyncSources(ctx, []string{"staff", "api", "off"}, []string{"csv", "push", "csv"}); err != nil {
		t.Fatal(err)
	}
	if res, err := e.runner(cfg).Sync(ctx, "staff", tasks.Options{Trigger: tasks.TriggerManual}); err != nil || res.Task.Status != store.StatusSucceeded {
		t.Fatalf("first sync: %v %+v", err, res)
	}
	d, err := daemon.New(cfg, st, testLogger(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("the daemon did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not get ready within 30s")
	}
	e.srv = httptest.NewServer(admin.New(admin.Options{Store: st, Config: d.Config, Queue: d, Log: testLogger()}))
	t.Cleanup(e.srv.Close)
	return e
}

type sinkDetail struct {
	sinks.View
	RunsTotal int64 `json:"runs_total"`
}

func TestAdminSinks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newSinkEnv(t, st)

		// Every endpoint wants the scope admin, as the rest of the API.
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/sinks"}, {"GET", "/api/v1/sinks/svc"}, {"GET", "/api/v1/sinks/svc/runs/1"},
			{"POST", "/api/v1/sinks/svc/run"}, {"POST", "/api/v1/sinks/svc/approve"},
		} {
			if r := e.do(c.method, c.path, readerToken, nil); r.code != http.StatusForbidden {
				t.Errorf("%s %s with a token without the scope admin = %s", c.method, c.path, r)
			}
			if r := e.do(c.method, c.path, "", nil); r.code != http.StatusUnauthorized {
				t.Errorf("%s %s without a token = %s", c.method, c.path, r)
			}
		}
		if r := e.do("GET", "/api/v1/sinks/svc/run", adminToken, nil); r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
			t.Errorf("GET .../run = %s %v", r, r.header)
		}

		// The first run (first contact) creates the 20 people.
		var d sinkDetail
		eventually(t, time.Minute, "the first run is recorded", func() bool {
			e.admin(200, "GET", "/api/v1/sinks/svc", nil).decode(t, &d)
			return d.RunsTotal > 0
		})
		first := d.Runs[0]
		if first.Counts.Created < 20 || first.Status != store.SinkRunOK || d.State != "ok" || d.LastRun == nil || d.LastRun.ID != first.ID {
			t.Fatalf("GET /api/v1/sinks/svc: %+v", d)
		}
		var list struct {
			Items []sinks.View
			Total int
		}
		e.admin(200, "GET", "/api/v1/sinks", nil).decode(t, &list)
		if list.Total != 2 || list.Items[0].Name != "svc" || list.Items[0].LastRun == nil || list.Items[1].State != "disabled" {
			t.Fatalf("GET /api/v1/sinks: %+v", list)
		}
		if r := e.admin(200, "GET", "/api/v1/sinks", nil); strings.Contains(string(r.body), serviceToken) || strings.Contains(string(r.body), "127.0.0.1") {
			t.Fatalf("the sinks list shows the sink's token or URL: %s", r)
		}
		var run store.SinkRun
		e.admin(200, "GET", fmt.Sprintf("/api/v1/sinks/svc/runs/%d", first.ID), nil).decode(t, &run)
		if run.ID != first.ID || run.Counts != first.Counts || run.Errors == nil {
			t.Fatalf("GET .../runs/%d: %+v", first.ID, run)
		}
		e.admin(404, "GET", "/api/v1/sinks/nosuch", nil)
		e.admin(404, "GET", "/api/v1/sinks/svc/runs/99999", nil)
		e.admin(400, "GET", "/api/v1/sinks/svc/runs/x", nil)
		e.admin(400, "GET", "/api/v1/sinks/svc?limit=0", nil)

		// Approve wants a held sink; run wants an enabled one.
		if msg := e.admin(409, "POST", "/api/v1/sinks/svc/approve", nil).errorMessage(t); !strings.Contains(msg, "holds no removals") {
			t.Errorf("approve a sink that is not held: %s", msg)
		}
		if msg := e.admin(409, "POST", "/api/v1/sinks/idle/run", nil).errorMessage(t); !strings.Contains(msg, "disabled") {
			t.Errorf("run a disabled sink: %s", msg)
		}
		e.admin(404, "POST", "/api/v1/sinks/nosuch/run", nil)

		// Run now: the daemon's sink starts within seconds (its interval
		// is an hour).
		asked := time.Now()
		var v sinks.View
		e.admin(202, "POST", "/api/v1/sinks/svc/run", nil).decode(t, &v)
		if v.Name != "svc" {
			t.Fatalf("POST .../run: %+v", v)
		}
		eventually(t, 10*time.Second, "the operator's run is recorded", func() bool {
			e.admin(200, "GET", "/api/v1/sinks/svc?limit=1", nil).decode(t, &d)
			return d.Runs[0].ID > first.ID
		})
		if r := d.Runs[0]; r.Trigger != store.SinkTriggerOperator || r.StartedAt.Sub(asked) > 3*sinks.PollEvery || d.RunRequested {
			t.Fatalf("the operator's run: %+v (asked at %s)", d, asked)
		}

		// A held sink: approve lets its removals go.
		if err := st.HoldSink(context.Background(), "svc", "the next delivery would deactivate 9 of the 20 users"); err != nil {
			t.Fatal(err)
		}
		e.admin(200, "GET", "/api/v1/sinks/svc", nil).decode(t, &d)
		if d.State != "held" || !strings.Contains(d.Held, "deactivate 9") {
			t.Fatalf("a held sink: %+v", d)
		}
		e.admin(200, "POST", "/api/v1/sinks/svc/approve", nil).decode(t, &v)
		if v.State == "held" {
			t.Fatalf("approved, still held: %+v", v)
		}
		if s, _ := st.Sink(context.Background(), "svc"); !s.Approved {
			t.Fatalf("the approval is not recorded: %+v", s)
		}
	})
}
