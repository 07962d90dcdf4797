package reconcile_test

import (
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/push"
)

func adopting(s *reconcile.Settings) { s.Adopt = true }

// other is a user of source "old" holding login, as the store hands it to
// a source that adopts.
func other(id, ext, login string, fs ...func(*reconcile.User)) reconcile.User {
	u := usr(id, ext, login)
	u.Source = "old"
	return edit(u, fs...)
}

func TestPlanSnapshotAdopt(t *testing.T) {
	u1 := usr("u-1", "1", "ada")
	zed := other("o-1", "old-9", "Zed", hasPassword)
	foreign := map[string]string{"zed": foreignHolder}
	adoptable := map[string]reconcile.User{"zed": zed}
	base := reconcile.Snapshot{Users: []reconcile.User{u1}, Foreign: foreign, Adoptable: adoptable}
	present := rec(1, "1", "ada")

	// What the record makes of the adopted user: its id and password, the
	// record's values, the source's groups.
	taken := func(fs ...func(*reconcile.User)) reconcile.User {
		u := usr("o-1", "3", "zed", "eng")
		u.HasPassword = true
		return edit(u, fs...)
	}
	adopt := func(line int, before, after reconcile.User, fields ...string) reconcile.Change {
		return reconcile.Change{Action: reconcile.Adopt, Line: line, Before: &before, After: after, Fields: fields}
	}
	allFields := []string{"userName", "givenName", "familyName", "displayName", "email", "externalId", "groups"}

	runPlanCases(t, []planCase{
		{
			name:    "a record takes over the user of another source that holds its login, keeping the id",
			snap:    base,
			records: []sources.Record{present, rec(2, "3", "zed", "Eng")},
			set:     []func(*reconcile.Settings){adopting},
			want: reconcile.Plan{
				Records:        2,
				Total:          1,
				Counts:         reconcile.Counts{Unchanged: 1, Adopted: 1},
				GroupCreates:   []reconcile.Group{{ID: "new-1", DisplayName: "Eng"}},
				Changes:        []reconcile.Change{adopt(2, zed, taken(), allFields...)},
				MembershipAdds: []reconcile.Membership{{GroupID: "new-1", UserID: "o-1"}},
			},
		},
		{
			name: "the old owner's orphan comes back active; an operator's choice stays",
			snap: reconcile.Snapshot{Users: []reconcile.User{u1}, Foreign: map[string]string{"zed": foreignHolder, "yan": foreignHolder},
				Adoptable: map[string]reconcile.User{
					"zed": edit(zed, inactive(reconcile.ReasonOrphan)),
					"yan": other("o-2", "old-8", "yan", inactive(reconcile.ReasonAdmin)),
				}},
			records: []sources.Record{present, rec(2, "3", "zed", "Eng"), rec(3, "4", "yan")},
			set:     []func(*reconcile.Settings){adopting},
			want: reconcile.Plan{
				Records:      3,
				Total:        1,
				Counts:       reconcile.Counts{Unchanged: 1, Adopted: 2},
				GroupCreates: []reconcile.Group{{ID: "new-1", DisplayName: "Eng"}},
				Changes: []reconcile.Change{
					adopt(2, edit(zed, inactive(reconcile.ReasonOrphan)), taken(), append(allFields[:6:6], "active", "groups")...),
					adopt(3, other("o-2", "old-8", "yan", inactive(reconcile.ReasonAdmin)),
						edit(usr("o-2", "4", "yan"), inactive(reconcile.ReasonAdmin)), "givenName", "familyName", "displayName", "email", "externalId"),
				},
				MembershipAdds: []reconcile.Membership{{GroupID: "new-1", UserID: "o-1"}},
			},
		},
		{
			name:    "a record whose id has a user of the source does not adopt: the login conflict stands",
			snap:    base,
			records: []sources.Record{rec(1, "1", "zed")},
			set:     []func(*reconcile.Settings){adopting},
			want: reconcile.Plan{
				Records: 1,
				Total:   1,
				Errors: []sources.FieldError{{Line: 1, Column: 4, Field: "login",
					Message: `line 1, column 4 (login): "zed" ` + foreignReason + `, who is not adopted because id "1" already belongs to a user of this source`}},
			},
			empty: true,
		},
		{
			name:    "without adopt the login of another source stays a conflict",
			snap:    base,
			records: []sources.Record{present, rec(2, "3", "zed")},
			want: reconcile.Plan{
				Records: 2,
				Total:   1,
				Counts:  reconcile.Counts{Unchanged: 1},
				Errors: []sources.FieldError{{Line: 2, Column: 4, Field: "login",
					Message: `line 2, column 4 (login): "zed" ` + foreignReason}},
			},
			empty: true,
		},
	})
}

// TestPlanSnapshotAdoptValve checks that the safety valve weighs
// adoptions beside removals.
func TestPlanSnapshotAdoptValve(t *testing.T) {
	snap := reconcile.Snapshot{Foreign: map[string]string{}, Adoptable: map[string]reconcile.User{}}
	var records []sources.Record
	for i, l := range []string{"a", "b", "c", "d", "e", "f"} {
		snap.Foreign[l] = foreignHolder
		snap.Adoptable[l] = other("o-"+l, "old-"+l, l)
		records = append(records, rec(i+1, l, l))
	}
	p := reconcile.PlanSnapshot(records, &snap, settings(adopting), seq())
	want := "the plan would deactivate 0, delete 0 and adopt 6 users of other sources (the source would own 6): 6 removals and adoptions, more than the 5 that always pass (max_removals allows 0 of 6 users, but 5 or fewer removals never hold a sync)"
	if p.Hold != want || p.Counts.Adopted != 6 {
		t.Errorf("six adoptions by a source of nobody: Hold = %q, adopted %d; want %q, 6", p.Hold, p.Counts.Adopted, want)
	}
	if p := reconcile.PlanSnapshot(records[:5], &snap, settings(adopting), seq()); p.Hold != "" {
		t.Errorf("five adoptions are held: %q", p.Hold)
	}
	if p := reconcile.PlanSnapshot(records, &snap, settings(adopting, func(s *reconcile.Settings) { s.Force = true }), seq()); p.Hold != "" {
		t.Errorf("a forced plan is held: %q", p.Hold)
	}
	if p := reconcile.PlanSnapshot(records, &snap, settings(adopting, func(s *reconcile.Settings) { s.MaxRemovals = percent(100) }), seq()); p.Hold != "" {
		t.Errorf("max_removals 100%% holds a source that adopts all it will own: %q", p.Hold)
	}
}

func TestPlanPushAdopt(t *testing.T) {
	str := func(s string) *string { return &s }
	ada := other("o-1", "old-1", "ada")
	ada.Phone = "+49 30 1"
	own := usr("u-2", "2", "bob")
	own.Email = ada.Email // a user of the source shares ada's address
	// Two users of other sources share a phone number.
	twin1, twin2 := other("o-7", "old-7", "tia"), other("o-8", "old-8", "tim")
	twin1.Phone, twin2.Phone = "+49 30 7", "+49 30 7"
	snap := func() *reconcile.DeltaSnapshot {
		return &reconcile.DeltaSnapshot{Users: []reconcile.User{own}, Others: []reconcile.User{ada, twin1, twin2},
			Foreign: map[string]string{"ada": `a user of source "old" (id "old-1")`}}
	}
	for _, tc := range []struct {
		name     string
		matchKey string
		rec      push.User
		adopt    bool
		want     reconcile.Action
		err      string
	}{
		{name: "by username", matchKey: push.MatchUserName, adopt: true,
			rec: push.User{UID: "9", UserName: str("ADA"), NickName: str("Ada")}, want: reconcile.Adopt},
		{name: "by phone, with a new login", matchKey: push.MatchPhone, adopt: true,
			rec: push.User{UID: "9", UserName: str("ada.l"), Phone: str("+49 30 1")}, want: reconcile.Adopt},
		{name: "by e-mail the source's own user comes first", matchKey: push.MatchEmail, adopt: true,
			rec: push.User{UID: "2", Email: str(ada.Email), NickName: str("Bobby")}, want: reconcile.Update},
		{name: "without adopt a match in another source is a conflict", matchKey: push.MatchUserName,
			rec: push.User{UID: "9", UserName: str("ada")},
			err: `records[0] (username): "ada" finds a user of source "old" (id "old-1"); set on_conflict: adopt on the source to take such users over`},
		{name: "a uid of the source's own user is not given another user", matchKey: push.MatchUserName, adopt: true,
			rec: push.User{UID: "2", UserName: str("ada")},
			err: `records[0] (uid): "2" belongs to another user of this source ("bob") than the one of source "old" its username matches ("ada"), who is not adopted`},
		{name: "a phone number two users of other sources share finds neither", matchKey: push.MatchPhone, adopt: true,
			rec: push.User{UID: "9", UserName: str("t"), Phone: str("+49 30 7")},
			err: `records[0] (phone): "+49 30 7" finds several users of other sources; matchKey must find one user to update`},
		{name: "isDeleted leaves another source's user alone", matchKey: push.MatchUserName, adopt: true,
			rec: push.User{UID: "9", UserName: str("ada"), IsDeleted: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &push.Payload{DataType: push.DataUser, MatchKey: tc.matchKey, Users: []push.User{tc.rec}}
			plan := reconcile.PlanPush(p, snap(), reconcile.DeltaSettings{OnDelete: reconcile.OnDeleteDeactivate, Adopt: tc.adopt}, seq())
			if tc.err != "" {
				if len(plan.Errors) != 1 || plan.Errors[0].Message != tc.err {
					t.Fatalf("errors %+v, want %q", plan.Errors, tc.err)
				}
				return
			}
			if len(plan.Errors) != 0 {
				t.Fatalf("errors %+v", plan.Errors)
			}
			if tc.want == "" {
				if len(plan.Changes) != 0 || plan.Counts.Unchanged != 1 {
					t.Fatalf("changes %s, counts %+v; want none", fmtChanges(plan.Changes), plan.Counts)
				}
				return
			}
			if len(plan.Changes) != 1 || plan.Changes[0].Action != tc.want {
				t.Fatalf("changes %s, want one %s", fmtChanges(plan.Changes), tc.want)
			}
			c := plan.Changes[0]
			if tc.want == reconcile.Adopt {
				if c.After.ID != ada.ID || c.After.ExternalID != "9" || c.After.Source != "" || c.Before.Source != "old" || plan.Counts.Adopted != 1 {
					t.Errorf("adopted %+v from %+v, counts %+v; want id %s, uid 9, of this source", c.After, c.Before, plan.Counts, ada.ID)
				}
			} else if c.After.ID != own.ID {
				t.Errorf("updated %s, want the source's own %s", c.After.ID, own.ID)
			}
		})
	}
}
