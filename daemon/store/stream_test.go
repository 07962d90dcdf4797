package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/sources"
)

// TestStreamTxReads: the look-ups of a streamed sync find users, their
// groups and the holders of logins by values that SQL lists and PostgreSQL
// array literals must carry intact (quotes, backslashes, commas, braces,
// umlauts), and see what earlier parts of the same transaction wrote; an
// error from the parts writes nothing.
func TestStreamTxReads(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.SyncSources(ctx, []string{"staff", "hr"}, []string{"csv", "csv"}); err != nil {
			t.Fatal(err)
		}
		set := reconcile.Settings{Orphans: reconcile.OrphansDeactivate, ActivateNew: true, Restore: true}
		odd := []string{`a"b`, `c\d`, `e,f`, `{g}`, `NULL`, `Jürgen`, `h i`}
		var recs []sources.Record
		for i, v := range odd {
			recs = append(recs, rec(i+1, v, "login "+v, "Team "+v))
		}
		if err := s.Apply(ctx, "staff", plan(t, s, "staff", recs, set, seq()), "fp"); err != nil {
			t.Fatal(err)
		}
		other := []sources.Record{rec(1, "x", "taken")}
		if err := s.Apply(ctx, "hr", plan(t, s, "hr", other, set, seq()), "fp"); err != nil {
			t.Fatal(err)
		}

		errStop := errors.New("stop")
		err := s.ApplyStream(ctx, "staff", "fp2", nil, func(tx *store.StreamTx) error {
			groups, err := tx.Groups()
			if err != nil || len(groups) != len(odd) {
				t.Fatalf("Groups = %v, %v", groups, err)
			}
			users, err := tx.Users(append(slices.Clone(odd), "missing"))
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range odd {
				u := users[v]
				if u == nil || u.UserName != "login "+v || !slices.Equal(u.Groups, []string{reconcile.Key("Team " + v)}) || u.Email != "login "+v+"@example.com" {
					t.Fatalf("Users[%q] = %+v", v, u)
				}
			}
			if users["missing"] != nil || len(users) != len(odd) {
				t.Fatalf("Users found %d users, want %d", len(users), len(odd))
			}
			keys := []string{reconcile.Key("login " + odd[0]), reconcile.Key("login " + odd[1]), "taken", "free"}
			holders, err := tx.Holders(keys)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][2]string{keys[0]: {"staff", odd[0]}, keys[1]: {"staff", odd[1]}, "taken": {"hr", "x"}}
			if len(holders) != len(want) {
				t.Fatalf("Holders = %v, want %v", holders, want)
			}
			for k, h := range want {
				if holders[k] != h {
					t.Fatalf("Holders = %v, want %v", holders, want)
				}
			}
			// A part applied earlier in the transaction is seen by the next.
			seen := 0
			if err := tx.EachUser(func(*reconcile.User) error { seen++; return nil }); err != nil || seen != len(odd) {
				t.Fatalf("EachUser saw %d users (%v), want %d", seen, err, len(odd))
			}
			st, head := reconcile.NewStream(reconcile.StreamInput{Records: 1, Total: len(odd)}, groups, set,
				func() string { return "11111111-0000-0000-0000-000000000001" })
			if err := tx.Apply(head); err != nil {
				t.Fatal(err)
			}
			if err := tx.Apply(st.Chunk([]sources.Record{rec(9, "new", "login new")}, nil, nil)); err != nil {
				t.Fatal(err)
			}
			if h, err := tx.Holders([]string{"login new"}); err != nil || h["login new"] != [2]string{"staff", "new"} {
				t.Fatalf("Holders after a part = %v, %v", h, err)
			}
			return errStop
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("ApplyStream = %v, want the parts' error", err)
		}
		snap, err := s.Snapshot(ctx, "staff")
		if err != nil || len(snap.Users) != len(odd) {
			t.Fatalf("after a failed stream the source holds %d users (%v), want %d", len(snap.Users), err, len(odd))
		}
		src, err := s.GetSource(ctx, "staff")
		if err != nil || src.LastFingerprint != "fp" {
			t.Fatalf("after a failed stream the fingerprint is %q (%v), want fp", src.LastFingerprint, err)
		}
	})
}

// TestDescribeUnique: only the login index's violations are called a
// login in use; the database's words stay in every message.
func TestDescribeUnique(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.SyncSources(ctx, []string{"staff", "hr"}, []string{"csv", "csv"}); err != nil {
			t.Fatal(err)
		}
		set := reconcile.Settings{Orphans: reconcile.OrphansIgnore, ActivateNew: true}
		p := plan(t, s, "staff", []sources.Record{rec(1, "1", "ada")}, set, seq())
		if err := s.Apply(ctx, "staff", p, "fp"); err != nil {
			t.Fatal(err)
		}
		// Another source planned before the login was taken.
		late := reconcile.PlanSnapshot([]sources.Record{rec(1, "9", "ADA")}, &reconcile.Snapshot{}, set,
			func() string { return "22222222-0000-0000-0000-000000000001" })
		err := s.Apply(ctx, "hr", late, "fp")
		if err == nil || !strings.Contains(err.Error(), "a login is already in use in the directory") {
			t.Fatalf("a raced login: %v", err)
		}
		// The same id again is no login problem.
		again := reconcile.PlanSnapshot([]sources.Record{rec(1, "2", "bob")}, &reconcile.Snapshot{Revision: 1}, set,
			func() string { return p.Changes[0].After.ID })
		err = s.Apply(ctx, "staff", again, "fp")
		if err == nil || strings.Contains(err.Error(), "login") {
			t.Fatalf("a duplicate id: %v; want the database's words, not a login", err)
		}
	})
}

// TestBulkImportIndex: an import larger than bulkFrom and than the
// directory drops users' displayName index on SQLite for its duration
// and builds it again before its commit; a re-sync keeps it; an import
// that fails, whole or streamed, leaves it as it was. PostgreSQL keeps it
// always.
func TestBulkImportIndex(t *testing.T) {
	defer store.SetBulkFrom(3)()
	const index = "users_display_name"
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		present := func(when string) {
			t.Helper()
			if ok, err := s.HasIndex(ctx, index); err != nil || !ok {
				t.Fatalf("%s: %s present = %v (%v), want it present", when, index, ok, err)
			}
		}
		if err := s.SyncSources(ctx, []string{"staff", "hr"}, []string{"csv", "csv"}); err != nil {
			t.Fatal(err)
		}
		set := reconcile.Settings{Orphans: reconcile.OrphansDeactivate, ActivateNew: true}
		records := func(prefix string, n int) []sources.Record {
			var recs []sources.Record
			for i := range n {
				id := fmt.Sprintf("%s%d", prefix, i)
				recs = append(recs, rec(i+1, id, "login "+id))
			}
			return recs
		}
		present("before any import")
		if err := s.Apply(ctx, "staff", plan(t, s, "staff", records("s", 5), set, seq()), "fp"); err != nil {
			t.Fatal(err)
		}
		present("after an initial import planned whole")

		// Six creates into a directory of five drop the index; the
		// duplicate id fails the apply after the drop.
		idsFrom := func(n int) func() string {
			return func() string { n++; return fmt.Sprintf("00000000-0000-0000-0000-%012d", n) }
		}
		p := plan(t, s, "hr", records("h", 6), set, idsFrom(100))
		p.Changes[5].After.ID = p.Changes[0].After.ID
		if err := s.Apply(ctx, "hr", p, "fp"); err == nil {
			t.Fatal("an apply that creates one id twice succeeded")
		}
		present("after a failed import planned whole")

		expect := func(n int, dropped bool, fn func(*store.StreamTx) error) error {
			return s.ApplyStream(ctx, "hr", "fp2", nil, func(tx *store.StreamTx) error {
				if err := tx.Expect(n); err != nil {
					return err
				}
				ok, err := tx.HasIndex(index)
				if want := !dropped || s.Driver() == store.Postgres; err != nil || ok != want {
					t.Fatalf("Expect(%d): %s present = %v (%v) in the transaction, want %v", n, index, ok, err, want)
				}
				return fn(tx)
			})
		}
		errStop := errors.New("stop")
		if err := expect(6, true, func(*store.StreamTx) error { return errStop }); !errors.Is(err, errStop) {
			t.Fatalf("ApplyStream = %v, want the parts' error", err)
		}
		present("after a failed streamed import")
		// Not more than the directory holds (5), or not more than bulkFrom:
		// the index stays.
		if err := expect(5, false, func(*store.StreamTx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := expect(3, false, func(*store.StreamTx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		err := expect(6, true, func(tx *store.StreamTx) error {
			st, head := reconcile.NewStream(reconcile.StreamInput{Records: 6}, nil, set, idsFrom(200))
			if err := tx.Apply(head); err != nil {
				return err
			}
			return tx.Apply(st.Chunk(records("h", 6), nil, nil))
		})
		if err != nil {
			t.Fatal(err)
		}
		present("after a streamed import")
		var n int
		if err := s.DB().Raw(`SELECT COUNT(*) FROM users`).Scan(&n).Error; err != nil || n != 11 {
			t.Fatalf("the directory holds %d users (%v), want 11", n, err)
		}
	})
}
