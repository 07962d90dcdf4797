package reconcile_test

import (
	"slices"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources"
)

// TestPlanSnapshotGroupsNestingAndManagers: a source that lists its
// groups (one without users), nests them, and names managers, some new
// in the same plan.
func TestPlanSnapshotGroupsNestingAndManagers(t *testing.T) {
	boss := rec(1, "1", "boss", "eng")
	report := rec(2, "2", "report", "eng")
	report.Manager = "1"
	snap := &reconcile.Snapshot{Revision: rev,
		Groups: []reconcile.Group{{ID: "g-old", DisplayName: "old"}, {ID: "g-all", DisplayName: "all"}},
		Nested: []reconcile.Membership{{GroupID: "g-all", UserID: "g-old", MemberType: reconcile.MemberGroup}}}
	g := &reconcile.Groups{Names: []string{"eng", "all"}, Nested: []reconcile.Nesting{{Child: "eng", Parent: "all"}}}
	p := reconcile.PlanSnapshotGroups([]sources.Record{boss, report}, g, snap, reconcile.Settings{Orphans: reconcile.OrphansDeactivate, ActivateNew: true}, seq())

	created := map[string]reconcile.User{}
	for _, c := range p.Changes {
		created[c.After.UserName] = c.After
	}
	if created["report"].Manager != created["boss"].ID || created["boss"].ID == "" || created["boss"].Manager != "" {
		t.Errorf("managers: report %+v, boss %+v", created["report"], created["boss"])
	}
	var eng string
	for _, gc := range p.GroupCreates {
		if gc.DisplayName == "eng" {
			eng = gc.ID
		}
	}
	if len(p.GroupCreates) != 1 || !slices.Equal(p.GroupDeletes, []reconcile.Group{{ID: "g-old", DisplayName: "old"}}) {
		t.Errorf("groups: creates %+v deletes %+v", p.GroupCreates, p.GroupDeletes)
	}
	wantAdd := reconcile.Membership{GroupID: "g-all", UserID: eng, MemberType: reconcile.MemberGroup}
	wantRemove := reconcile.Membership{GroupID: "g-all", UserID: "g-old", MemberType: reconcile.MemberGroup}
	if !slices.Contains(p.MembershipAdds, wantAdd) || !slices.Equal(p.MembershipRemoves, []reconcile.Membership{wantRemove}) {
		t.Errorf("nesting: adds %+v removes %+v", p.MembershipAdds, p.MembershipRemoves)
	}

	// Applied, then read again: nothing changes; a manager that goes is
	// unset; KeepManager keeps it.
	bossU := usr(created["boss"].ID, "1", "boss", "eng")
	reportU := edit(usr(created["report"].ID, "2", "report", "eng"), func(u *reconcile.User) { u.Manager = bossU.ID })
	snap = &reconcile.Snapshot{Revision: rev, Users: []reconcile.User{bossU, reportU},
		Groups: []reconcile.Group{{ID: eng, DisplayName: "eng"}, {ID: "g-all", DisplayName: "all"}},
		Nested: []reconcile.Membership{wantAdd}}
	p = reconcile.PlanSnapshotGroups([]sources.Record{boss, report}, g, snap, reconcile.Settings{Orphans: reconcile.OrphansDeactivate}, seq())
	if !p.Empty() || p.Counts.Unchanged != 2 {
		t.Fatalf("an unchanged read plans %+v", p)
	}
	keep := report
	keep.Manager = sources.KeepManager
	p = reconcile.PlanSnapshotGroups([]sources.Record{boss, keep}, g, snap, reconcile.Settings{Orphans: reconcile.OrphansDeactivate}, seq())
	if !p.Empty() {
		t.Errorf("KeepManager changed the manager: %+v", p.Changes)
	}
	gone := report
	gone.Manager = ""
	p = reconcile.PlanSnapshotGroups([]sources.Record{boss, gone}, g, snap, reconcile.Settings{Orphans: reconcile.OrphansDeactivate}, seq())
	if len(p.Changes) != 1 || p.Changes[0].After.Manager != "" || !slices.Equal(p.Changes[0].Fields, []string{"manager"}) {
		t.Errorf("a manager that went: %+v", p.Changes)
	}
}

// TestPlanSnapshotGroupsPartial: a changed-only read has no orphans and
// is never held, even when empty.
func TestPlanSnapshotGroupsPartial(t *testing.T) {
	var users []reconcile.User
	for _, ext := range []string{"1", "2", "3", "4", "5", "6", "7"} {
		users = append(users, usr("id-"+ext, ext, "u"+ext))
	}
	snap := &reconcile.Snapshot{Revision: rev, Users: users}
	s := reconcile.Settings{Orphans: reconcile.OrphansDelete, MaxRemovals: func(int) int { return 0 }}
	changed := edit(rec(1, "1", "u1"), func(r *sources.Record) { r.GivenName = "New" })
	p := reconcile.PlanSnapshotGroups([]sources.Record{changed}, &reconcile.Groups{Partial: true}, snap, s, seq())
	if p.Hold != "" || p.Counts.Updated != 1 || p.Removals() != 0 {
		t.Errorf("changed-only read: %+v", p.Counts)
	}
	p = reconcile.PlanSnapshotGroups(nil, &reconcile.Groups{Partial: true}, snap, s, seq())
	if p.Hold != "" || !p.Empty() {
		t.Errorf("empty changed-only read: hold %q, %+v", p.Hold, p.Counts)
	}
	// The same reads as full snapshots would delete and hold.
	if p = reconcile.PlanSnapshotGroups([]sources.Record{changed}, nil, snap, s, seq()); p.Hold == "" || p.Counts.Deleted != 6 {
		t.Errorf("full read: hold %q, %+v", p.Hold, p.Counts)
	}
}
