package sinks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// refusing is a front of the service that refuses to create the user
// called userName, with a SCIM error, and passes everything else on.
func refusing(t *testing.T, svc *service, userName string) *httptest.Server {
	inner := svc.srv.Config.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Users") {
			body, _ := io.ReadAll(r.Body)
			var u struct {
				UserName string `json:"userName"`
			}
			json.Unmarshal(body, &u)
			if u.UserName == userName {
				w.Header().Set("Content-Type", "application/scim+json")
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"this service takes no user called `+userName+`"}`)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front
}

// waitRun waits until the sink has a run after id that match accepts.
func waitRun(t *testing.T, st *store.Store, after int64, within time.Duration, what string, match func(store.SinkRun) bool) store.SinkRun {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		runs, _, err := st.SinkRuns(context.Background(), "svc", 50, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(runs) - 1; i >= 0; i-- {
			if runs[i].ID > after && match(runs[i]) {
				return runs[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s; runs: %+v", what, within, runs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// askUntil asks for runs until one that match accepts: on PostgreSQL the
// outbox is read only up to the oldest running transaction of the server
// (another package's test may hold one), so a change may show a few runs
// later.
func askUntil(t *testing.T, st *store.Store, after int64, what string, match func(store.SinkRun) bool) store.SinkRun {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; {
		if err := st.RequestSinkRun(context.Background(), "svc"); err != nil {
			t.Fatal(err)
		}
		r := waitRun(t, st, after, time.Minute, "operator's run", func(r store.SinkRun) bool { return r.Trigger == store.SinkTriggerOperator })
		if match(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute; the last run: %+v", what, r)
		}
		after = r.ID
	}
}

// TestSinkRunsRecorded runs a sink as roster serve does, with an interval
// of an hour: its first run is recorded with its counts and the resource
// the service refused (with the service's answer); an operator's request
// and an approval of held removals each start a run within seconds.
func TestSinkRunsRecorded(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx, cancel := context.WithCancel(context.Background())
		up := newUpstream(t, st, 10)
		svc := newService(t, store.SQLite)
		front := refusing(t, svc, "user00003")
		if err := st.RegisterSinks(ctx, []string{"svc"}); err != nil {
			t.Fatal(err)
		}
		cfg := sinkConfig(front.URL)
		cfg.Interval = config.Duration(time.Hour)
		cfg.MaxRemovals = config.Removals{Count: 1}
		sink, err := sinks.New(cfg, st, st.SCIM(), nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { sink.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })

		first := waitRun(t, st, 0, time.Minute, "first run", func(store.SinkRun) bool { return true })
		want := store.SinkRunCounts{Created: 9 + 5, Failed: 1} // nine users, five teams
		if first.Trigger != store.SinkTriggerInterval || first.Status != store.SinkRunOK || first.Counts != want {
			t.Fatalf("first run: %+v, want counts %+v", first, want)
		}
		var row struct{ ID string }
		if err := st.DB().Raw(`SELECT id FROM users WHERE user_name = ?`, "user00003").Scan(&row).Error; err != nil {
			t.Fatal(err)
		}
		wantErr := store.ResourceFail{Kind: store.KindUser, ID: row.ID, Method: "POST", Path: "/Users", Status: 400,
			Detail: "invalidValue: this service takes no user called user00003"}
		if len(first.Errors) != 1 || first.Errors[0] != wantErr {
			t.Fatalf("first run's errors: %+v, want %+v", first.Errors, wantErr)
		}
		if got := svc.users(); len(got) != 9 {
			t.Fatalf("the service holds %d users, want 9", len(got))
		}

		// Run now: the interval is an hour, so only the request can start it.
		asked := time.Now()
		if err := st.RequestSinkRun(ctx, "svc"); err != nil {
			t.Fatal(err)
		}
		op := waitRun(t, st, first.ID, 10*time.Second, "operator's run", func(r store.SinkRun) bool { return r.Trigger == store.SinkTriggerOperator })
		if took := op.StartedAt.Sub(asked); took > 3*sinks.PollEvery {
			t.Errorf("the operator's run started %s after the request", took)
		}
		// The refused user is tried again by a later change only; this
		// run had nothing to do and is recorded because it was asked for.
		if op.Status != store.SinkRunOK {
			t.Fatalf("operator's run: %+v", op)
		}

		// Three users leave, more than max_removals 1: the run is held.
		up.recs = up.recs[:7]
		up.apply()
		heldRun := askUntil(t, st, op.ID, "held run", func(r store.SinkRun) bool {
			if r.Status != store.SinkRunHeld && r.Counts.Deactivated != 0 {
				t.Fatalf("removals beyond max_removals were delivered: %+v", r)
			}
			return r.Status == store.SinkRunHeld
		})
		if want := "would deactivate 3 of the 9 users the service holds, more than the 1 that max_removals allows; approve with roster sink svc --approve"; !strings.Contains(heldRun.Error, want) {
			t.Fatalf("held run: %+v", heldRun)
		}
		v, err := sinks.ViewOf(ctx, st, cfg, 5)
		if err != nil || v.State != "held" || v.LastRun == nil || v.LastRun.ID != heldRun.ID || len(v.Runs) == 0 {
			t.Fatalf("ViewOf a held sink: %+v, %v", v, err)
		}
		asked = time.Now()
		if err := st.ApproveSinkRemovals(ctx, "svc"); err != nil {
			t.Fatal(err)
		}
		approved := waitRun(t, st, heldRun.ID, 10*time.Second, "approved run", func(r store.SinkRun) bool { return r.Trigger == store.SinkTriggerApprove })
		if approved.Status != store.SinkRunOK || approved.Counts.Deactivated != 3 || approved.StartedAt.Sub(asked) > 3*sinks.PollEvery {
			t.Fatalf("approved run: %+v (asked at %s)", approved, asked)
		}
		if st, _ := st.Sink(ctx, "svc"); st.Held != "" {
			t.Fatalf("still held after the approved run: %+v", st)
		}

		// A failing service: the run is recorded as failed, with the
		// reason and without the sink's URL.
		svc.fail.Store(http.StatusServiceUnavailable)
		up.recs[0].GivenName = "Changed"
		up.apply()
		failed := askUntil(t, st, approved.ID, "failed run", func(r store.SinkRun) bool { return r.Status == store.SinkRunFailed })
		if !strings.Contains(failed.Error, "503") || strings.Contains(failed.Error, front.URL) || strings.Contains(failed.Error, "127.0.0.1") {
			t.Fatalf("failed run: %+v", failed)
		}
		if v, _ := sinks.ViewOf(ctx, st, cfg, 0); v.State != "failing" || v.Failures != 1 {
			t.Fatalf("after a failed run: %+v", v)
		}
		svc.fail.Store(0)
	})
}
