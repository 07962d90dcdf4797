package store_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/sources"
)

// pending returns the outbox entries after the sink's position as
// "Kind/id" in order, and the position of the last one.
func pending(t *testing.T, s *store.Store, sink string) ([]string, store.Position) {
	t.Helper()
	return pendingWait(t, s, sink, true)
}

// pendingWait is pending; with wait, it waits until a write transaction
// elsewhere on the PostgreSQL server (other tests) no longer hides
// committed entries behind its horizon.
func pendingWait(t *testing.T, s *store.Store, sink string, wait bool) ([]string, store.Position) {
	t.Helper()
	ctx := context.Background()
	var (
		st      store.SinkState
		changes []store.Change
		err     error
	)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if st, err = s.Sink(ctx, sink); err != nil {
			t.Fatal(err)
		}
		if changes, err = s.Changes(ctx, st.Position, 10000); err != nil {
			t.Fatal(err)
		}
		if !wait || int64(len(changes)) == st.Queue || time.Now().After(deadline) {
			break
		}
	}
	var out []string
	last := st.Position
	for _, c := range changes {
		if !c.Position.After(last) {
			t.Fatalf("entry %+v does not come after %+v", c.Position, last)
		}
		if time.Since(c.At) > time.Hour || time.Until(c.At) > time.Minute {
			t.Fatalf("entry %+v written at %s", c, c.At)
		}
		last = c.Position
		out = append(out, c.Kind+"/"+c.ResourceID)
	}
	// The queue counts entries of transactions still hidden behind an
	// older running one too (PostgreSQL).
	if int64(len(changes)) > st.Queue || s.Driver() == store.SQLite && int64(len(changes)) != st.Queue {
		t.Fatalf("queue %d, %d entries read", st.Queue, len(changes))
	}
	return out, last
}

// deliver reads the sink's entries as a set and moves its position past
// them.
func deliver(t *testing.T, s *store.Store, sink string) map[string]bool {
	t.Helper()
	got, last := pending(t, s, sink)
	if err := s.SetSinkPosition(context.Background(), sink, last); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, g := range got {
		set[g] = true
	}
	return set
}

func wantSet(t *testing.T, what string, got map[string]bool, want ...string) {
	t.Helper()
	var g []string
	for k := range got {
		g = append(g, k)
	}
	slices.Sort(g)
	slices.Sort(want)
	if !slices.Equal(g, want) {
		t.Fatalf("%s: outbox holds %v, want %v", what, g, want)
	}
}

func outboxRows(t *testing.T, s *store.Store) int64 {
	t.Helper()
	var n int64
	if err := s.DB().Raw(`SELECT COUNT(*) FROM outbox`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOutboxRecordsEveryPath checks that every kind of write records the
// users and groups it changed, in its own transaction, for the sinks
// registered, and that retention keeps only what a sink still needs.
func TestOutboxRecordsEveryPath(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		set := reconcile.Settings{Orphans: reconcile.OrphansDelete, ActivateNew: true, Restore: true}
		ids := seq()
		ids() // anna's and bob's, taken by newSCIMWriteEnv
		ids()
		const u1, u2, u3, g1 = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002",
			"00000000-0000-0000-0000-000000000004", "00000000-0000-0000-0000-000000000003"

		// The scim source "idp" and csv source "staff" with anna and bob
		// (ids 1 and 2), written before any sink exists: nothing recorded.
		e := newSCIMWriteEnv(t, s)
		if n := outboxRows(t, s); n != 0 {
			t.Fatalf("%d outbox rows without a sink", n)
		}
		if _, err := s.Sink(ctx, "wiki"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Sink of an unregistered sink = %v", err)
		}
		wantTriggers(t, s, false)
		if err := s.RegisterSinks(ctx, []string{"wiki", "crm"}); err != nil {
			t.Fatal(err)
		}
		wantTriggers(t, s, true)
		wantSet(t, "after registering", deliver(t, s, "wiki"))

		// A snapshot sync: carl arrives in group "ops", anna changes.
		staff := []sources.Record{rec(1, "1", "anna.new"), rec(2, "2", "bob"), rec(3, "3", "carl", "ops")}
		p := plan(t, s, "staff", staff, set, ids)
		stale := plan(t, s, "staff", staff, set, ids)
		if err := s.Apply(ctx, "staff", p, "fp2"); err != nil {
			t.Fatal(err)
		}
		wantSet(t, "snapshot sync", deliver(t, s, "wiki"), "User/"+u1, "User/"+u3, "Group/"+g1)

		// A plan that fails changes nothing and records nothing.
		if err := s.Apply(ctx, "staff", stale, "fp3"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale Apply = %v", err)
		}
		wantSet(t, "failed sync", deliver(t, s, "wiki"))

		// An operator deactivates bob.
		if _, err := s.SetActiveByAdmin(ctx, u2, false); err != nil {
			t.Fatal(err)
		}
		wantSet(t, "operator", deliver(t, s, "wiki"), "User/"+u2)

		// SCIM writes: a user created, a group created with her in it.
		a := e.do("POST", "/scim/v2/Users", writeTok, entraCreate)
		carla, _ := want(t, a, http.StatusCreated, "", "")["id"].(string)
		a = e.do("POST", "/scim/v2/Groups", writeTok, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],
			"displayName":"Research","members":[{"value":"`+carla+`"}]}`)
		research, _ := want(t, a, http.StatusCreated, "", "")["id"].(string)
		wantSet(t, "scim writes", deliver(t, s, "wiki"), "User/"+carla, "Group/"+research)
		a = e.do("DELETE", "/scim/v2/Groups/"+research, writeTok, "")
		want(t, a, http.StatusNoContent, "", "")
		wantSet(t, "scim group delete", deliver(t, s, "wiki"), "Group/"+research)

		// carl leaves (a tombstone, out of ops), then is purged.
		if err := s.Apply(ctx, "staff", plan(t, s, "staff", staff[:2], set, ids), "fp4"); err != nil {
			t.Fatal(err)
		}
		wantSet(t, "orphan deleted", deliver(t, s, "wiki"), "User/"+u3, "Group/"+g1)
		if _, err := s.Expire(ctx, time.Now().Add(time.Hour), time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := deliver(t, s, "wiki"); !got["User/"+u3] {
			t.Fatalf("purge of the tombstone not recorded: %v", got)
		}

		// crm has delivered nothing: it holds every entry back.
		before := outboxRows(t, s)
		crm, _ := pending(t, s, "crm")
		if int64(len(crm)) != before {
			t.Fatalf("crm has %d entries pending of %d", len(crm), before)
		}
		if n, err := s.TrimOutbox(ctx); err != nil || n != 0 {
			t.Fatalf("TrimOutbox with crm behind = %d, %v; want 0", n, err)
		}
		deliver(t, s, "crm")
		if n, err := s.TrimOutbox(ctx); err != nil || n != before {
			t.Fatalf("TrimOutbox = %d, %v; want %d", n, err, before)
		}
		// A position never moves back.
		st, _ := s.Sink(ctx, "crm")
		if err := s.SetSinkPosition(ctx, "crm", store.Position{}); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.Sink(ctx, "crm"); again.Position != st.Position {
			t.Fatalf("position moved back from %+v to %+v", st.Position, again.Position)
		}

		// Runs: failures count up until one succeeds.
		for range 2 {
			if err := s.RecordSinkRun(ctx, "crm", "GET /ServiceProviderConfig: the service answered 503"); err != nil {
				t.Fatal(err)
			}
		}
		if st, _ := s.Sink(ctx, "crm"); st.Failures != 2 || st.LastError == "" || st.LastRunAt.IsZero() {
			t.Fatalf("after two failed runs: %+v", st)
		}
		if err := s.RecordSinkRun(ctx, "crm", ""); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.Sink(ctx, "crm"); st.Failures != 0 || st.LastError != "" {
			t.Fatalf("after a run that succeeded: %+v", st)
		}
		if names, err := s.SinkNames(ctx); err != nil || !slices.Equal(names, []string{"crm", "wiki"}) {
			t.Fatalf("SinkNames = %v, %v", names, err)
		}

		// The id map, and what removing a sink drops.
		if err := s.SetServiceID(ctx, "crm", store.KindUser, u1, "svc-1"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetServiceID(ctx, "crm", store.KindUser, u1, "svc-2"); err != nil {
			t.Fatal(err)
		}
		if sid, err := s.ServiceID(ctx, "crm", store.KindUser, u1); err != nil || sid != "svc-2" {
			t.Fatalf("ServiceID = %q, %v", sid, err)
		}
		if sid, _ := s.ServiceID(ctx, "wiki", store.KindUser, u1); sid != "" {
			t.Fatalf("wiki sees crm's id %q", sid)
		}
		if _, err := s.SetActiveByAdmin(ctx, u1, false); err != nil {
			t.Fatal(err)
		}
		if err := s.RegisterSinks(ctx, []string{"wiki"}); err != nil {
			t.Fatal(err)
		}
		if sid, _ := s.ServiceID(ctx, "crm", store.KindUser, u1); sid != "" {
			t.Fatalf("a removed sink keeps its id map: %q", sid)
		}
		if _, err := s.Sink(ctx, "crm"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("removed sink: %v", err)
		}
		wantSet(t, "wiki after crm left", deliver(t, s, "wiki"), "User/"+u1)

		// Without sinks the outbox empties and nothing more is recorded.
		if err := s.RegisterSinks(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TrimOutbox(ctx); err != nil {
			t.Fatal(err)
		}
		wantTriggers(t, s, false)
		if _, err := s.SetActiveByAdmin(ctx, u1, true); err != nil {
			t.Fatal(err)
		}
		if n := outboxRows(t, s); n != 0 {
			t.Fatalf("%d outbox rows with no sink registered", n)
		}

		// A sink registered again records again: a sync, an operator, a
		// SCIM write.
		if err := s.RegisterSinks(ctx, []string{"wiki"}); err != nil {
			t.Fatal(err)
		}
		wantTriggers(t, s, true)
		if err := s.Apply(ctx, "staff", plan(t, s, "staff", []sources.Record{rec(1, "1", "anna"), rec(2, "2", "bob", "ops")}, set, ids), "fp5"); err != nil {
			t.Fatal(err)
		}
		// anna renamed back, bob restored and in "ops" again, which carl's
		// removal deleted: a new group.
		if got := deliver(t, s, "wiki"); len(got) != 3 || !got["User/"+u1] || !got["User/"+u2] {
			t.Fatalf("sync after registering again: outbox holds %v, want anna, bob and the new ops", got)
		}
		if _, err := s.SetActiveByAdmin(ctx, u2, true); err != nil {
			t.Fatal(err)
		}
		wantSet(t, "operator after registering again", deliver(t, s, "wiki"), "User/"+u2)
		a = e.do("POST", "/scim/v2/Groups", writeTok, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Again"}`)
		again, _ := want(t, a, http.StatusCreated, "", "")["id"].(string)
		wantSet(t, "scim write after registering again", deliver(t, s, "wiki"), "Group/"+again)
	})
}

// outboxTriggers counts the outbox triggers in the store's schema.
func outboxTriggers(t *testing.T, s *store.Store) int64 {
	t.Helper()
	q := `SELECT COUNT(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
		WHERE c.relnamespace = current_schema()::regnamespace AND t.tgname LIKE '%\_outbox\_%'`
	if s.Driver() != store.Postgres {
		q = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\_outbox\_%' ESCAPE '\'`
	}
	var n int64
	if err := s.DB().Raw(q).Row().Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantTriggers checks that the outbox triggers, three on each of users,
// groups and memberships, exist when on and not at all otherwise: with no
// sink a write must not pay for them (PostgreSQL's transition tables,
// SQLite's test for a sink on every row).
func wantTriggers(t *testing.T, s *store.Store, on bool) {
	t.Helper()
	want := int64(0)
	if on {
		want = 9
	}
	if n := outboxTriggers(t, s); n != want {
		t.Fatalf("%d outbox triggers on PostgreSQL, want %d", n, want)
	}
}

// TestOutboxTriggersFollowSinksAcrossReplicas checks that two replicas
// registering and forgetting sinks at the same time leave the triggers
// present exactly when a sink is: without the sinks lock, one forgetting
// its last sink could drop them while the other registers a first one.
func TestOutboxTriggersFollowSinksAcrossReplicas(t *testing.T) {
	dsn := storetest.DSN(t, store.Postgres)
	ctx := context.Background()
	open := func() *store.Store {
		s, err := store.Open(ctx, store.Postgres, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(), open()
	wantTriggers(t, a, false)
	for i := range 20 {
		errs := make(chan error, 2)
		go func() { errs <- a.RegisterSinks(ctx, []string{"wiki"}) }()
		go func() { errs <- b.RegisterSinks(ctx, nil) }()
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		names, err := a.SinkNames(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := outboxTriggers(t, a); (len(names) > 0) != (n == 9) || n != 0 && n != 9 {
			t.Fatalf("round %d: sinks %v with %d outbox triggers", i, names, n)
		}
	}
	if err := b.RegisterSinks(ctx, []string{"crm"}); err != nil {
		t.Fatal(err)
	}
	wantTriggers(t, a, true)
	if err := a.RegisterSinks(ctx, nil); err != nil {
		t.Fatal(err)
	}
	wantTriggers(t, b, false)
}

// TestOutboxWaitsForOlderTransactions checks PostgreSQL's horizon: an
// entry of a committed transaction is not read while an older one that
// wrote too is still running, since that one's entries come first.
func TestOutboxWaitsForOlderTransactions(t *testing.T) {
	s := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	if err := s.SyncSources(ctx, []string{"staff"}, []string{"csv"}); err != nil {
		t.Fatal(err)
	}
	set := reconcile.Settings{Orphans: reconcile.OrphansDelete, ActivateNew: true, Restore: true}
	ids := seq()
	if err := s.Apply(ctx, "staff", plan(t, s, "staff", []sources.Record{rec(1, "1", "anna")}, set, ids), "fp1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterSinks(ctx, []string{"wiki"}); err != nil {
		t.Fatal(err)
	}
	const anna = "00000000-0000-0000-0000-000000000001"

	older := s.DB().Begin()
	t.Cleanup(func() { older.Rollback() })
	if err := older.Exec(`UPDATE users SET display_name = 'Anna' WHERE id = ?`, anna).Error; err != nil {
		t.Fatal(err)
	}
	// A newer transaction commits while the older one runs.
	if err := s.Apply(ctx, "staff", plan(t, s, "staff", []sources.Record{rec(1, "1", "anna"), rec(2, "2", "bob")}, set, ids), "fp2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := pendingWait(t, s, "wiki", false); len(got) != 0 {
		t.Fatalf("entries read while an older writer runs: %v", got)
	}
	if err := older.Commit().Error; err != nil {
		t.Fatal(err)
	}
	got, _ := pending(t, s, "wiki")
	if !slices.Equal(got, []string{"User/" + anna, "User/00000000-0000-0000-0000-000000000002"}) {
		t.Fatalf("after the older transaction committed: %v", got)
	}
}

// TestSinkLockExcludes checks that one holder at a time delivers a sink,
// that a sink's lock is not a source's of the same name, and that it is
// free again once released.
func TestSinkLockExcludes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		unlock, err := s.TryLockSink(ctx, "wiki")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.TryLockSink(ctx, "wiki"); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("second TryLockSink = %v, want ErrLocked", err)
		}
		src, err := s.TryLockSource(ctx, "wiki")
		if err != nil {
			t.Fatalf("the source of the same name is blocked: %v", err)
		}
		src()
		unlock()
		again, err := s.TryLockSink(ctx, "wiki")
		if err != nil {
			t.Fatalf("after unlock: %v", err)
		}
		again()
	})
}
