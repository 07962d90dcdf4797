package store_test

import (
	"context"
	"errors"
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
