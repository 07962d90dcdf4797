package sinks_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestSinkDryRun checks, on both stores, that a dry run lists what the
// sink would send (an update with its body, a deactivation; a hold by
// max_removals) while the service, the sink's position, its id map and
// its hold stay as they were; the next real step then sends it.
func TestSinkDryRun(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		up := newUpstream(t, st, 20)
		svc := newService(t, store.SQLite)
		if err := st.RegisterSinks(ctx, []string{"svc"}); err != nil {
			t.Fatal(err)
		}
		cfg := sinkConfig(svc.srv.URL)
		cfg.MaxRemovals = config.Removals{Count: 2}
		sink, err := sinks.New(cfg, st, st.SCIM(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		// Before first contact: everything would be created or adopted.
		first, err := sink.DryRun(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !first.Compare || first.Counts.Created != 20+5 || len(svc.users()) != 0 {
			t.Fatalf("first dry run: compare %v, counts %+v; the service holds %d users", first.Compare, first.Counts, len(svc.users()))
		}
		if n, _ := st.SinkServiceUsers(ctx, "svc"); n != 0 {
			t.Fatalf("a dry run recorded %d service ids", n)
		}
		step(t, sink, st)

		up.recs[0].GivenName = "Renamed"
		up.recs = up.recs[:19]
		up.apply()
		before, err := st.Sink(ctx, "svc")
		if err != nil {
			t.Fatal(err)
		}
		var res *sinks.DryRunResult
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			if res, err = sink.DryRun(ctx); err != nil {
				t.Fatal(err)
			}
			if res.Counts.Updated > 0 && res.Counts.Deactivated > 0 || time.Now().After(deadline) {
				break
			}
		}
		var update, deactivate bool
		for _, p := range res.Planned {
			b, _ := json.Marshal(p.Body)
			switch {
			case p.Action == "update" && p.Method == "PATCH" && strings.Contains(string(b), `"givenName":"Renamed"`):
				update = true
			case p.Action == "deactivate" && p.Method == "PATCH" && strings.HasPrefix(p.Path, "/Users/"):
				deactivate = true
			}
		}
		if res.Compare || !update || !deactivate || res.Held != "" || res.Counts.Deactivated != 1 {
			t.Fatalf("dry run: update %v, deactivate %v, held %q, counts %+v, planned %+v", update, deactivate, res.Held, res.Counts, res.Planned)
		}
		held := svc.users()
		if held["user00000"].Given != "G0" || !held["user00019"].Active {
			t.Fatalf("the dry run changed the service: %+v, %+v", held["user00000"], held["user00019"])
		}
		after, err := st.Sink(ctx, "svc")
		if err != nil {
			t.Fatal(err)
		}
		if after.Position != before.Position || after.Held != "" {
			t.Fatalf("the dry run moved the sink: %+v → %+v", before, after)
		}
		if n, _ := st.SinkServiceUsers(ctx, "svc"); n != 20 {
			t.Fatalf("the service ids after the dry run: %d, want 20", n)
		}
		step(t, sink, st)
		if held := svc.users(); held["user00000"].Given != "Renamed" || held["user00019"].Active {
			t.Fatalf("the real step after the dry run: %+v, %+v", held["user00000"], held["user00019"])
		}

		// Three removals with max_removals 2: the run would be held.
		up.recs = up.recs[:16]
		up.apply()
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			if res, err = sink.DryRun(ctx); err != nil {
				t.Fatal(err)
			}
			if res.Held != "" || time.Now().After(deadline) {
				break
			}
		}
		if !strings.Contains(res.Held, "deactivate 3 of the 20 users") || res.Counts.Deactivated != 3 {
			t.Fatalf("a dry run over max_removals: held %q, counts %+v", res.Held, res.Counts)
		}
		if state, _ := st.Sink(ctx, "svc"); state.Held != "" {
			t.Fatalf("the dry run held the sink: %q", state.Held)
		}
		if !svc.users()["user00017"].Active {
			t.Fatal("the dry run deactivated a user")
		}
	})
}
