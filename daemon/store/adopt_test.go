package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/sources"
)

// TestAdoptApply: AdoptableUsers hands an adopting source the holders of
// its records' logins, and applying their adoption moves them with their
// ids; a plan whose adoptee was removed by its old owner since is
// refused with ErrConflict and changes nothing.
func TestAdoptApply(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.SyncSources(ctx, []string{"old", "new"}, []string{"csv", "http"}); err != nil {
			t.Fatal(err)
		}
		set := reconcile.Settings{Orphans: reconcile.OrphansDelete, ActivateNew: true, Restore: true}
		ids := seq()
		if err := s.Apply(ctx, "old", plan(t, s, "old", []sources.Record{rec(1, "1", "anna", "Sales"), rec(2, "2", "bob")}, set, ids), ""); err != nil {
			t.Fatal(err)
		}
		adopting := func() *reconcile.Plan {
			t.Helper()
			recs := []sources.Record{rec(1, "n1", "ANNA", "Team"), rec(2, "n2", "bob")}
			snap, err := s.Snapshot(ctx, "new")
			if err != nil {
				t.Fatal(err)
			}
			if snap.Foreign, err = s.ForeignLogins(ctx, "new", []string{"anna", "bob"}); err != nil {
				t.Fatal(err)
			}
			if snap.Adoptable, err = s.AdoptableUsers(ctx, "new", []string{"anna", "bob"}); err != nil {
				t.Fatal(err)
			}
			if a := snap.Adoptable["anna"]; a.Source != "old" || a.ExternalID != "1" || len(snap.Adoptable) != 2 {
				t.Fatalf("AdoptableUsers = %+v", snap.Adoptable)
			}
			return reconcile.PlanSnapshot(recs, snap, reconcile.Settings{Orphans: reconcile.OrphansDelete, Adopt: true}, ids)
		}
		old, err := s.Snapshot(ctx, "old")
		if err != nil {
			t.Fatal(err)
		}
		var annaID string
		for _, u := range old.Users {
			if u.ExternalID == "1" {
				annaID = u.ID
			}
		}

		// The old owner deletes bob after the adopting plan was made.
		stale := adopting()
		if err := s.Apply(ctx, "old", plan(t, s, "old", []sources.Record{rec(1, "1", "anna", "Sales")}, set, ids), ""); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, "new", stale, ""); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("adopting a user its owner deleted since: %v, want ErrConflict", err)
		}
		if snap, _ := s.Snapshot(ctx, "new"); len(snap.Users) != 0 || len(snap.Groups) != 0 {
			t.Fatalf("a refused adoption left %+v", snap)
		}

		// A group written over SCIM (not keyed; here the old owner's, as
		// when it is the scim source) holds anna: adoption leaves it.
		now := time.Now().UTC()
		if err := s.DB().Exec(`INSERT INTO groups (id, source, external_id, display_name, display_name_key, version, created_at, updated_at, keyed)
			VALUES ('scim-g', 'old', '', 'Admins', 'admins', 1, ?, ?, FALSE)`, now, now).Error; err != nil {
			t.Fatal(err)
		}
		if err := s.DB().Exec(`INSERT INTO memberships (group_id, member_id, member_type) VALUES ('scim-g', ?, 'User')`, annaID).Error; err != nil {
			t.Fatal(err)
		}

		p := reconcile.PlanSnapshot([]sources.Record{rec(1, "n1", "ANNA", "Team")}, func() *reconcile.Snapshot {
			snap, _ := s.Snapshot(ctx, "new")
			snap.Foreign, _ = s.ForeignLogins(ctx, "new", []string{"anna"})
			snap.Adoptable, _ = s.AdoptableUsers(ctx, "new", []string{"anna"})
			return snap
		}(), reconcile.Settings{Orphans: reconcile.OrphansDelete, Adopt: true}, ids)
		if p.Counts.Adopted != 1 {
			t.Fatalf("plan: %+v", p.Counts)
		}
		if err := s.Apply(ctx, "new", p, ""); err != nil {
			t.Fatal(err)
		}
		snap, err := s.Snapshot(ctx, "new")
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Users) != 1 || snap.Users[0].ID != annaID || snap.Users[0].ExternalID != "n1" ||
			snap.Users[0].UserName != "ANNA" || len(snap.Users[0].Groups) != 1 || snap.Users[0].Groups[0] != "team" {
			t.Errorf("new after the adoption: %+v", snap.Users)
		}
		after, err := s.Snapshot(ctx, "old")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range after.Users {
			if u.ExternalID == "1" {
				t.Errorf("anna is still old's: %+v", u)
			}
		}
		if after.Revision <= old.Revision+1 {
			t.Errorf("old's revision %d; it was %d before its own apply and the adoption", after.Revision, old.Revision)
		}
		var members int
		if err := s.DB().Raw(`SELECT COUNT(*) FROM memberships m JOIN groups g ON g.id = m.group_id WHERE g.source = 'old' AND g.keyed`).Row().Scan(&members); err != nil || members != 0 {
			t.Errorf("old's Sales group keeps %d members (%v)", members, err)
		}
		if err := s.DB().Raw(`SELECT COUNT(*) FROM memberships WHERE group_id = 'scim-g' AND member_id = ?`, annaID).Row().Scan(&members); err != nil || members != 1 {
			t.Errorf("the group written over SCIM lost anna (%d, %v)", members, err)
		}
	})
}
