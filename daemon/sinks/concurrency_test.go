package sinks_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestSinkDeliversConcurrently: limits.concurrency is how many requests a
// delivery keeps in flight at once (a first delivery is bound by the
// service, not by one round trip after another), never more; a resource
// the service refuses meanwhile is counted and the others still arrive.
func TestSinkDeliversConcurrently(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		const n = 60
		up := newUpstream(t, st, n)
		for _, limit := range []int{1, 3} {
			svc := newService(t, st.Driver())
			refuser := refusing(t, svc, up.recs[7].UserName)
			// Each write takes a while, so that concurrent ones overlap.
			var inFlight, most atomic.Int64
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet {
					now := inFlight.Add(1)
					defer inFlight.Add(-1)
					for old := most.Load(); now > old && !most.CompareAndSwap(old, now); old = most.Load() {
					}
					time.Sleep(20 * time.Millisecond)
				}
				refuser.Config.Handler.ServeHTTP(w, r)
			}))
			t.Cleanup(front.Close)

			name := "svc"
			if err := st.RegisterSinks(ctx, []string{name}); err != nil {
				t.Fatal(err)
			}
			cfg := sinkConfig(front.URL)
			cfg.Limits.Concurrency = limit
			sink, err := sinks.New(cfg, st, st.SCIM(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			c, err := sink.Step(ctx)
			if err != nil {
				t.Fatalf("concurrency %d: %v", limit, err)
			}
			if got := most.Load(); got != int64(limit) {
				t.Errorf("concurrency %d: at most %d writes were in flight at once", limit, got)
			}
			if c.Created != n-1+5 || c.Failed != 1 || len(sink.Errors) != 1 || !strings.Contains(sink.Errors[0], "takes no user called") {
				t.Errorf("concurrency %d: %+v, errors %v; want %d users and 5 groups created, 1 refused", limit, c, sink.Errors, n-1)
			}
			if got := len(svc.users()); got != n-1 {
				t.Errorf("concurrency %d: the service holds %d users, want %d", limit, got, n-1)
			}
			// A new sink of the same name starts over, on a new service.
			if err := st.RegisterSinks(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
	})
}
