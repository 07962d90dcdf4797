package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

func TestSinkRuns(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if err := st.RegisterSinks(ctx, []string{"a", "b"}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		var fails []store.ResourceFail
		for i := range store.MaxSinkRunErrors + 5 {
			fails = append(fails, store.ResourceFail{Kind: store.KindUser, ID: fmt.Sprintf("u%d", i), Method: "POST", Path: "/Users",
				Status: 409, Detail: "uniqueness: userName taken"})
		}
		ok := store.SinkRun{Sink: "a", Trigger: store.SinkTriggerInterval, Status: store.SinkRunOK, StartedAt: t0, FinishedAt: t0.Add(time.Second),
			Counts: store.SinkRunCounts{Created: 3, Updated: 2, Failed: len(fails)}, Errors: fails}
		if err := st.AddSinkRun(ctx, &ok); err != nil || ok.ID == 0 {
			t.Fatalf("AddSinkRun = %v, id %d", err, ok.ID)
		}
		got, err := st.SinkRun(ctx, "a", ok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Counts != ok.Counts || got.Trigger != "interval" || got.Status != "ok" || !got.StartedAt.Equal(t0) ||
			len(got.Errors) != store.MaxSinkRunErrors || got.Errors[0] != fails[0] {
			t.Fatalf("the run read back: %+v (%d errors)", got, len(got.Errors))
		}
		if _, err := st.SinkRun(ctx, "b", ok.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another sink's run = %v, want ErrNotFound", err)
		}

		// Held runs that did nothing, for the same reason, are one row;
		// a new reason, or an operator's run, is a row of its own.
		held := func(trigger, reason string, at time.Time) int64 {
			r := store.SinkRun{Sink: "a", Trigger: trigger, Status: store.SinkRunHeld, StartedAt: at, FinishedAt: at, Error: reason}
			if err := st.AddSinkRun(ctx, &r); err != nil {
				t.Fatal(err)
			}
			return r.ID
		}
		h1 := held(store.SinkTriggerInterval, "would deactivate 3", t0.Add(time.Minute))
		if h2 := held(store.SinkTriggerInterval, "would deactivate 3", t0.Add(2*time.Minute)); h2 != h1 {
			t.Fatalf("a repeated held run got a row of its own: %d, %d", h1, h2)
		}
		if h3 := held(store.SinkTriggerRetry, "would deactivate 3", t0.Add(3*time.Minute)); h3 != h1 {
			t.Fatalf("a repeated held run got a row of its own: %d, %d", h1, h3)
		}
		if h := held(store.SinkTriggerOperator, "would deactivate 3", t0.Add(4*time.Minute)); h == h1 {
			t.Fatal("an operator's run was folded into an earlier one")
		}
		if h := held(store.SinkTriggerInterval, "would deactivate 4", t0.Add(5*time.Minute)); h == h1 {
			t.Fatal("a held run with another reason was folded into an earlier one")
		}
		r, _ := st.SinkRun(ctx, "a", h1)
		if r.Repeats != 2 || !r.FinishedAt.Equal(t0.Add(3*time.Minute)) || !r.StartedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("the held run: %+v", r)
		}
		runs, total, err := st.SinkRuns(ctx, "a", 2, 0)
		if err != nil || total != 4 || len(runs) != 2 || runs[0].Error != "would deactivate 4" || runs[1].Trigger != "operator" {
			t.Fatalf("SinkRuns = %+v, %d, %v", runs, total, err)
		}
		if runs, total, _ := st.SinkRuns(ctx, "b", 10, 0); total != 0 || len(runs) != 0 {
			t.Fatalf("sink b has runs: %+v", runs)
		}
		if last, _ := st.LastSinkRunID(ctx, "a"); last != runs[0].ID {
			t.Fatalf("LastSinkRunID = %d, want %d", last, runs[0].ID)
		}

		// An operator's request is seen, and taken once.
		if err := st.RequestSinkRun(ctx, "nosuch"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("RequestSinkRun of an unregistered sink = %v", err)
		}
		if req, appr, err := st.SinkWake(ctx, "a"); req || appr || err != nil {
			t.Fatalf("SinkWake before a request = %v %v %v", req, appr, err)
		}
		if err := st.RequestSinkRun(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if req, _, _ := st.SinkWake(ctx, "a"); !req {
			t.Fatal("SinkWake does not see the request")
		}
		if took, err := st.TakeSinkRunRequest(ctx, "a"); !took || err != nil {
			t.Fatalf("TakeSinkRunRequest = %v %v", took, err)
		}
		if took, _ := st.TakeSinkRunRequest(ctx, "a"); took {
			t.Fatal("a request was taken twice")
		}
		if err := st.HoldSink(ctx, "a", "too many"); err != nil {
			t.Fatal(err)
		}
		if _, appr, _ := st.SinkWake(ctx, "a"); appr {
			t.Fatal("a held sink counts as approved before the approval")
		}
		if err := st.ApproveSinkRemovals(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if _, appr, _ := st.SinkWake(ctx, "a"); !appr {
			t.Fatal("SinkWake does not see the approval")
		}

		// Expiry: by age, and beyond MaxSinkRuns per sink.
		n, err := st.ExpireSinkRuns(ctx, t0.Add(200*time.Second))
		if err != nil || n != 2 { // the ok run and the folded held run ended before
			t.Fatalf("ExpireSinkRuns by age = %d, %v", n, err)
		}
		recent := time.Now()
		for i := range store.MaxSinkRuns + 3 {
			r := store.SinkRun{Sink: "b", Trigger: store.SinkTriggerOperator, Status: store.SinkRunOK, StartedAt: recent, FinishedAt: recent,
				Counts: store.SinkRunCounts{Updated: i}}
			if err := st.AddSinkRun(ctx, &r); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := st.ExpireSinkRuns(ctx, t0); err != nil || n != 3 {
			t.Fatalf("ExpireSinkRuns by number = %d, %v", n, err)
		}
		runs, total, _ = st.SinkRuns(ctx, "b", 1, store.MaxSinkRuns-1)
		if total != store.MaxSinkRuns || runs[0].Counts.Updated != 3 {
			t.Fatalf("after expiry sink b keeps %d runs, the oldest %+v", total, runs[0].Counts)
		}
		if _, total, _ := st.SinkRuns(ctx, "a", 10, 0); total != 2 {
			t.Fatalf("sink a keeps %d runs, want 2", total)
		}
	})
}
