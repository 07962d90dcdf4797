package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/sources"
)

func TestSetActiveByAdmin(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.SyncSources(ctx, []string{"staff", "hr"}, []string{"csv", "csv"}); err != nil {
			t.Fatal(err)
		}
		set := reconcile.Settings{Orphans: reconcile.OrphansDelete, ActivateNew: true, Restore: true}
		ids := seq()
		staff := []sources.Record{rec(1, "1", "anna"), rec(2, "2", "bob"), rec(3, "3", "carl")}
		if err := s.Apply(ctx, "staff", plan(t, s, "staff", staff, set, ids), "fp1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, "hr", plan(t, s, "hr", []sources.Record{rec(1, "9", "zoe")}, set, ids), "fp1"); err != nil {
			t.Fatal(err)
		}
		// carl leaves: a tombstone.
		if err := s.Apply(ctx, "staff", plan(t, s, "staff", staff[:2], set, ids), "fp2"); err != nil {
			t.Fatal(err)
		}
		users := map[string]store.User{}
		var all []store.User
		if err := s.DB().Find(&all).Error; err != nil {
			t.Fatal(err)
		}
		for _, u := range all {
			users[u.ExternalID] = u
		}
		revision := func(source string) int64 {
			t.Helper()
			src, err := s.GetSource(ctx, source)
			if err != nil {
				t.Fatal(err)
			}
			return src.Revision
		}
		staffRev, hrRev := revision("staff"), revision("hr")
		anna := users["1"]
		// A plan computed now is made stale by the operator's change.
		stale := plan(t, s, "staff", staff[:2], set, ids)

		got, err := s.SetActiveByAdmin(ctx, anna.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != anna.ID || got.UserName != "anna" || got.Source != "staff" || got.Active ||
			got.State != reconcile.StateInactive || got.StateReason != reconcile.ReasonAdmin {
			t.Fatalf("after deactivation: %+v", got)
		}
		if got.Version != anna.Version+1 || !got.UpdatedAt.After(anna.UpdatedAt) {
			t.Fatalf("version %d → %d, updated_at %s → %s: both must grow", anna.Version, got.Version, anna.UpdatedAt, got.UpdatedAt)
		}
		if r := revision("staff"); r != staffRev+1 {
			t.Fatalf("staff revision %d → %d, want +1", staffRev, r)
		}
		if r := revision("hr"); r != hrRev {
			t.Fatalf("hr revision %d → %d: another source changed", hrRev, r)
		}
		if err := s.Apply(ctx, "staff", stale, "fp3"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Apply of a plan computed before the change = %v, want ErrConflict", err)
		}

		// Asking again changes nothing.
		again, err := s.SetActiveByAdmin(ctx, anna.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		if again.Version != got.Version || revision("staff") != staffRev+1 {
			t.Fatalf("a repeated deactivation changed the user (version %d → %d) or the source", got.Version, again.Version)
		}

		// The next sync keeps the operator's choice.
		next := plan(t, s, "staff", staff[:2], set, ids)
		if !next.Empty() || next.Counts.Unchanged != 2 {
			t.Fatalf("the next sync plans %+v %+v; want nothing", next.Counts, next.Changes)
		}
		snap, err := s.Snapshot(ctx, "staff")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range snap.Users {
			if u.ID == anna.ID && (u.Active || u.StateReason != reconcile.ReasonAdmin) {
				t.Fatalf("anna in the snapshot: %+v", u)
			}
		}

		// Activation, of a user of any source.
		zoe := users["9"]
		act, err := s.SetActiveByAdmin(ctx, zoe.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		if !act.Active || act.State != reconcile.StateActive || act.StateReason != reconcile.ReasonAdmin || act.Version != zoe.Version+1 {
			t.Fatalf("after activation: %+v", act)
		}
		if r := revision("hr"); r != hrRev+1 {
			t.Fatalf("hr revision %d → %d, want +1", hrRev, r)
		}
		back, err := s.SetActiveByAdmin(ctx, anna.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		if !back.Active || back.State != reconcile.StateActive || back.Version != got.Version+1 {
			t.Fatalf("anna activated again: %+v", back)
		}

		// Tombstones and unknown ids are not found, and nothing changes.
		staffRev = revision("staff")
		for _, id := range []string{users["3"].ID, "no-such-user", ""} {
			if _, err := s.SetActiveByAdmin(ctx, id, false); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("SetActiveByAdmin(%q) = %v, want ErrNotFound", id, err)
			}
		}
		var carl store.User
		if err := s.DB().Where("id = ?", users["3"].ID).Take(&carl).Error; err != nil {
			t.Fatal(err)
		}
		if carl.State != reconcile.StateDeleted || carl.Version != users["3"].Version || revision("staff") != staffRev {
			t.Fatalf("the tombstone changed: %+v", carl)
		}
	})
}
