package sinks_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestFirstContactSkipsWhatItRead registers a sink before the directory
// is filled, so that the outbox holds an entry for every user: the first
// comparison delivers each user once, and its position then lies past
// those entries, so they do not cost a second request each (on SQLite
// always; on PostgreSQL as far as the server's oldest running transaction
// allows).
func TestFirstContactSkipsWhatItRead(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if err := st.RegisterSinks(ctx, []string{"svc"}); err != nil {
			t.Fatal(err)
		}
		const n = 200
		newUpstream(t, st, n)
		if state, err := st.Sink(ctx, "svc"); err != nil || state.Queue < n {
			t.Fatalf("the outbox holds %d entries for the sink (%v), want at least %d", state.Queue, err, n)
		}
		svc := newService(t, st.Driver())
		sink, err := sinks.New(sinkConfig(svc.srv.URL), st, st.SCIM(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		c := step(t, sink, st)
		if c.Created != n+5 || c.Adopted != 0 {
			t.Fatalf("first contact: %+v; want %d users and 5 groups created", c, n)
		}
		// On PostgreSQL the position can only move to the oldest
		// transaction running anywhere on the server, and tests of other
		// packages run beside this one: the entries of younger
		// transactions are delivered again, harmlessly.
		if st.Driver() == store.SQLite && c.Updated != 0 {
			t.Fatalf("first contact: %+v; the comparison's own outbox entries were delivered again", c)
		}
		if got := len(svc.users()); got != n {
			t.Fatalf("the service holds %d users, want %d", got, n)
		}
	})
}
