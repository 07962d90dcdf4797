package reconcile_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources"
)

func TestPlanSnapshotFirstImport(t *testing.T) {
	records := []sources.Record{
		rec(1, "1", "ada", "Eng"),
		rec(2, "2", "bob", "eng", "Ops"),
		rec(3, "3", "cy"),
	}
	// Groups take their ids first (new-1 Eng, new-2 Ops), then users.
	groupCreates := []reconcile.Group{{ID: "new-1", DisplayName: "Eng"}, {ID: "new-2", DisplayName: "Ops"}}
	memberships := []reconcile.Membership{
		{GroupID: "new-1", UserID: "new-3"},
		{GroupID: "new-1", UserID: "new-4"},
		{GroupID: "new-2", UserID: "new-4"},
	}
	pending := inactive(reconcile.ReasonPending)

	runPlanCases(t, []planCase{
		{
			name:    "activate_new creates active users",
			records: records,
			want: reconcile.Plan{
				Records: 3,
				Counts:  reconcile.Counts{Created: 3},
				Changes: []reconcile.Change{
					created(1, usr("new-3", "1", "ada", "eng")),
					created(2, usr("new-4", "2", "bob", "eng", "ops")),
					created(3, usr("new-5", "3", "cy")),
				},
				GroupCreates:   groupCreates,
				MembershipAdds: memberships,
			},
		},
		{
			name:    "without activate_new users wait inactive as pending",
			records: records,
			set:     []func(*reconcile.Settings){func(s *reconcile.Settings) { s.ActivateNew = false }},
			want: reconcile.Plan{
				Records: 3,
				Counts:  reconcile.Counts{Created: 3},
				Changes: []reconcile.Change{
					created(1, edit(usr("new-3", "1", "ada", "eng"), pending)),
					created(2, edit(usr("new-4", "2", "bob", "eng", "ops"), pending)),
					created(3, edit(usr("new-5", "3", "cy"), pending)),
				},
				GroupCreates:   groupCreates,
				MembershipAdds: memberships,
			},
		},
		{
			name:    "employeeNumber is the external id for csv",
			records: []sources.Record{rec(1, "0042", "ada")},
			set:     []func(*reconcile.Settings){func(s *reconcile.Settings) { s.EmployeeNumberIsExternalID = true }},
			want: reconcile.Plan{
				Records: 1,
				Counts:  reconcile.Counts{Created: 1},
				Changes: []reconcile.Change{
					created(1, edit(usr("new-1", "0042", "ada"), func(u *reconcile.User) { u.EmployeeNumber = "0042" })),
				},
			},
		},
		{
			name:    "employeeNumber stays empty for other sources",
			records: []sources.Record{rec(1, "0042", "ada")},
			want: reconcile.Plan{
				Records: 1,
				Counts:  reconcile.Counts{Created: 1},
				Changes: []reconcile.Change{created(1, usr("new-1", "0042", "ada"))},
			},
		},
		{
			name: "an initial password is set on create",
			records: []sources.Record{
				edit(rec(1, "1", "ada"), func(r *sources.Record) { r.PasswordHash = "$argon2id$hash-1" }),
				rec(2, "2", "bob"),
			},
			want: reconcile.Plan{
				Records: 2,
				Counts:  reconcile.Counts{Created: 2},
				Changes: []reconcile.Change{
					created(1, edit(usr("new-1", "1", "ada"), func(u *reconcile.User) { u.PasswordHash, u.HasPassword = "$argon2id$hash-1", true })),
					created(2, usr("new-2", "2", "bob")),
				},
			},
		},
		{
			name: "display name is given family, trimmed when one is missing",
			records: []sources.Record{
				edit(rec(1, "1", "ada"), func(r *sources.Record) { r.GivenName, r.FamilyName = "Ada", "Lovelace" }),
				edit(rec(2, "2", "bob"), func(r *sources.Record) { r.FamilyName = "" }),
				edit(rec(3, "3", "cy"), func(r *sources.Record) { r.GivenName = "" }),
			},
			want: reconcile.Plan{
				Records: 3,
				Counts:  reconcile.Counts{Created: 3},
				Changes: []reconcile.Change{
					created(1, edit(usr("new-1", "1", "ada"), func(u *reconcile.User) {
						u.GivenName, u.FamilyName, u.DisplayName = "Ada", "Lovelace", "Ada Lovelace"
					})),
					created(2, edit(usr("new-2", "2", "bob"), func(u *reconcile.User) { u.FamilyName, u.DisplayName = "", "Given2" })),
					created(3, edit(usr("new-3", "3", "cy"), func(u *reconcile.User) { u.GivenName, u.DisplayName = "", "Family3" })),
				},
			},
		},
		{
			name:    "phone is copied",
			records: []sources.Record{edit(rec(1, "1", "ada"), func(r *sources.Record) { r.Phone = "+49 30 1234" })},
			want: reconcile.Plan{
				Records: 1,
				Counts:  reconcile.Counts{Created: 1},
				Changes: []reconcile.Change{created(1, edit(usr("new-1", "1", "ada"), func(u *reconcile.User) { u.Phone = "+49 30 1234" }))},
			},
		},
	})
}

func TestPlanSnapshotUnchanged(t *testing.T) {
	u1 := usr("u-1", "1", "ada", "eng")
	u2 := usr("u-2", "2", "bob", "eng", "ops")
	grps := []reconcile.Group{{ID: "g-eng", DisplayName: "Eng"}, {ID: "g-ops", DisplayName: "Ops"}}
	records := []sources.Record{rec(1, "1", "ada", "Eng"), rec(2, "2", "bob", "Ops", "Eng")}
	unchanged := reconcile.Plan{Records: 2, Total: 2, Counts: reconcile.Counts{Unchanged: 2}}

	runPlanCases(t, []planCase{
		{
			name:    "same input twice",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, u2}, Groups: grps},
			records: records,
			want:    unchanged,
			empty:   true,
		},
		{
			name: "group order and repeated spellings do not matter",
			snap: reconcile.Snapshot{Users: []reconcile.User{u1, u2}, Groups: grps},
			records: []sources.Record{
				rec(1, "1", "ada", "Eng", "Eng"),
				rec(2, "2", "bob", "Ops", "Eng", "OPS"),
			},
			want:  unchanged,
			empty: true,
		},
		{
			name: "employeeNumber already the external id",
			snap: reconcile.Snapshot{Users: []reconcile.User{
				edit(u1, func(u *reconcile.User) { u.EmployeeNumber = "1" }),
				edit(u2, func(u *reconcile.User) { u.EmployeeNumber = "2" }),
			}, Groups: grps},
			records: records,
			set:     []func(*reconcile.Settings){func(s *reconcile.Settings) { s.EmployeeNumberIsExternalID = true }},
			want:    unchanged,
			empty:   true,
		},
		{
			name: "inactive users (admin, pending, source) stay inactive",
			snap: reconcile.Snapshot{Users: []reconcile.User{
				edit(u1, inactive(reconcile.ReasonAdmin)),
				edit(u2, inactive(reconcile.ReasonPending)),
				edit(usr("u-3", "3", "cy"), inactive(reconcile.ReasonSource)),
			}, Groups: grps},
			records: append(slices.Clone(records), rec(3, "3", "cy")),
			want:    reconcile.Plan{Records: 3, Total: 3, Counts: reconcile.Counts{Unchanged: 3}},
			empty:   true,
		},
		{
			name: "a password is never overwritten",
			snap: reconcile.Snapshot{Users: []reconcile.User{edit(u1, hasPassword), u2}, Groups: grps},
			records: []sources.Record{
				edit(records[0], func(r *sources.Record) { r.PasswordHash = "$argon2id$other" }),
				records[1],
			},
			want:  unchanged,
			empty: true,
		},
		{
			name:    "tombstones of users not in the input are left alone and not counted",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, edit(usr("u-9", "9", "zoe"), tombstone), u2}, Groups: grps},
			records: records,
			set:     []func(*reconcile.Settings){orphans(reconcile.OrphansDelete)},
			want:    unchanged,
			empty:   true,
		},
	})
}

func TestPlanSnapshotUpdates(t *testing.T) {
	u1 := usr("u-1", "1", "ada", "eng")
	snap := reconcile.Snapshot{Users: []reconcile.User{u1}, Groups: []reconcile.Group{{ID: "g-eng", DisplayName: "Eng"}}}
	r1 := rec(1, "1", "ada", "Eng")
	one := func(c reconcile.Change) reconcile.Plan {
		return reconcile.Plan{Records: 1, Total: 1, Counts: reconcile.Counts{Updated: 1}, Changes: []reconcile.Change{c}}
	}
	withRec := func(f func(*sources.Record)) []sources.Record { return []sources.Record{edit(r1, f)} }

	runPlanCases(t, []planCase{
		{
			name:    "login",
			snap:    snap,
			records: withRec(func(r *sources.Record) { r.UserName = "ada.l" }),
			want:    one(updated(1, u1, edit(u1, login("ada.l")), "userName")),
		},
		{
			name:    "login in another case",
			snap:    snap,
			records: withRec(func(r *sources.Record) { r.UserName = "Ada" }),
			want:    one(updated(1, u1, edit(u1, login("Ada")), "userName")),
		},
		{
			name:    "given name changes the display name",
			snap:    snap,
			records: withRec(func(r *sources.Record) { r.GivenName = "Augusta" }),
			want: one(updated(1, u1, edit(u1, func(u *reconcile.User) { u.GivenName, u.DisplayName = "Augusta", "Augusta Family1" }),
				"givenName", "displayName")),
		},
		{
			name:    "family name changes the display name",
			snap:    snap,
			records: withRec(func(r *sources.Record) { r.FamilyName = "King" }),
			want: one(updated(1, u1, edit(u1, func(u *reconcile.User) { u.FamilyName, u.DisplayName = "King", "Given1 King" }),
				"familyName", "displayName")),
		},
		{
			name:    "email",
			snap:    snap,
			records: withRec(func(r *sources.Record) { r.Email = "ada@lovelace.example" }),
			want:    one(updated(1, u1, edit(u1, func(u *reconcile.User) { u.Email = "ada@lovelace.example" }), "email")),
		},
		{
			name:    "email removed",
			snap:    snap,
			records: withRec(func(r *sources.Record) { r.Email = "" }),
			want:    one(updated(1, u1, edit(u1, func(u *reconcile.User) { u.Email = "" }), "email")),
		},
		{
			name:    "phone",
			snap:    snap,
			records: withRec(func(r *sources.Record) { r.Phone = "+1 555 0100" }),
			want:    one(updated(1, u1, edit(u1, func(u *reconcile.User) { u.Phone = "+1 555 0100" }), "phone")),
		},
		{
			name:    "group added",
			snap:    snap,
			records: withRec(func(r *sources.Record) { r.Groups = []string{"Ops", "Eng"} }),
			want: edit(one(updated(1, u1, edit(u1, groups("eng", "ops")), "groups")), func(p *reconcile.Plan) {
				p.GroupCreates = []reconcile.Group{{ID: "new-1", DisplayName: "Ops"}}
				p.MembershipAdds = []reconcile.Membership{{GroupID: "new-1", UserID: "u-1"}}
			}),
		},
		{
			name:    "group replaced",
			snap:    snap,
			records: withRec(func(r *sources.Record) { r.Groups = []string{"Ops"} }),
			want: edit(one(updated(1, u1, edit(u1, groups("ops")), "groups")), func(p *reconcile.Plan) {
				p.GroupCreates = []reconcile.Group{{ID: "new-1", DisplayName: "Ops"}}
				p.GroupDeletes = []reconcile.Group{{ID: "g-eng", DisplayName: "Eng"}}
				p.MembershipAdds = []reconcile.Membership{{GroupID: "new-1", UserID: "u-1"}}
				p.MembershipRemoves = []reconcile.Membership{{GroupID: "g-eng", UserID: "u-1"}}
			}),
		},
		{
			name:    "all groups removed",
			snap:    snap,
			records: withRec(func(r *sources.Record) { r.Groups = nil }),
			want: edit(one(updated(1, u1, edit(u1, groups()), "groups")), func(p *reconcile.Plan) {
				p.GroupDeletes = []reconcile.Group{{ID: "g-eng", DisplayName: "Eng"}}
				p.MembershipRemoves = []reconcile.Membership{{GroupID: "g-eng", UserID: "u-1"}}
			}),
		},
		{
			name:    "employeeNumber set to the external id",
			snap:    snap,
			records: []sources.Record{r1},
			set:     []func(*reconcile.Settings){func(s *reconcile.Settings) { s.EmployeeNumberIsExternalID = true }},
			want:    one(updated(1, u1, edit(u1, func(u *reconcile.User) { u.EmployeeNumber = "1" }), "employeeNumber")),
		},
		{
			name: "employeeNumber kept when the source does not set it",
			snap: reconcile.Snapshot{
				Users:  []reconcile.User{edit(u1, func(u *reconcile.User) { u.EmployeeNumber = "E-1" })},
				Groups: snap.Groups,
			},
			records: withRec(func(r *sources.Record) { r.Email = "ada@lovelace.example" }),
			want: one(updated(1, edit(u1, func(u *reconcile.User) { u.EmployeeNumber = "E-1" }),
				edit(u1, func(u *reconcile.User) { u.EmployeeNumber, u.Email = "E-1", "ada@lovelace.example" }), "email")),
		},
		{
			name: "several fields at once, in a fixed order",
			snap: snap,
			records: withRec(func(r *sources.Record) {
				r.UserName, r.FamilyName, r.Email, r.Phone, r.Groups = "ada.k", "King", "ada@king.example", "+1", nil
			}),
			set: []func(*reconcile.Settings){orphans(reconcile.OrphansIgnore)},
			want: edit(one(updated(1, u1, edit(u1, func(u *reconcile.User) {
				u.UserName, u.FamilyName, u.DisplayName, u.Email, u.Phone, u.Groups = "ada.k", "King", "Given1 King", "ada@king.example", "+1", nil
			}), "userName", "familyName", "displayName", "email", "phone", "groups")), func(p *reconcile.Plan) {
				p.MembershipRemoves = []reconcile.Membership{{GroupID: "g-eng", UserID: "u-1"}}
			}),
		},
		{
			name: "a pending user is updated and stays pending",
			snap: reconcile.Snapshot{
				Users:  []reconcile.User{edit(u1, inactive(reconcile.ReasonPending))},
				Groups: snap.Groups,
			},
			records: withRec(func(r *sources.Record) { r.Email = "ada@lovelace.example" }),
			want: one(updated(1, edit(u1, inactive(reconcile.ReasonPending)),
				edit(u1, inactive(reconcile.ReasonPending), func(u *reconcile.User) { u.Email = "ada@lovelace.example" }), "email")),
		},
	})
}

func TestPlanSnapshotOrphans(t *testing.T) {
	u1 := usr("u-1", "1", "ada")
	u2 := usr("u-2", "2", "bob")
	u3 := usr("u-3", "3", "carl", "eng")
	u4 := edit(usr("u-4", "4", "dora"), inactive(reconcile.ReasonOrphan))
	u5 := edit(usr("u-5", "5", "eve"), tombstone)
	u6 := edit(usr("u-6", "6", "fay"), inactive(reconcile.ReasonAdmin))
	u7 := edit(usr("u-7", "7", "gus"), inactive(reconcile.ReasonPending))
	eng := reconcile.Group{ID: "g-eng", DisplayName: "Eng"}
	// The snapshot is not sorted: orphans come out sorted by external id.
	snap := reconcile.Snapshot{Users: []reconcile.User{u7, u3, u1, u6, u5, u2, u4}, Groups: []reconcile.Group{eng}}
	records := []sources.Record{rec(1, "1", "ada")}

	runPlanCases(t, []planCase{
		{
			name:    "ignore leaves orphans and their groups",
			snap:    snap,
			records: records,
			set:     []func(*reconcile.Settings){orphans(reconcile.OrphansIgnore)},
			want:    reconcile.Plan{Records: 1, Total: 6, Counts: reconcile.Counts{Unchanged: 1}},
			empty:   true,
		},
		{
			name:    "deactivate counts only active orphans; tombstones untouched",
			snap:    snap,
			records: records,
			want: reconcile.Plan{
				Records:      1,
				Total:        6,
				Counts:       reconcile.Counts{Unchanged: 1, Deactivated: 2},
				Changes:      []reconcile.Change{deactivated(u2), deactivated(u3)},
				GroupDeletes: []reconcile.Group{eng},
			},
		},
		{
			name:    "delete removes every orphan that is not a tombstone yet",
			snap:    snap,
			records: records,
			set:     []func(*reconcile.Settings){orphans(reconcile.OrphansDelete)},
			want: reconcile.Plan{
				Records:      1,
				Total:        6,
				Counts:       reconcile.Counts{Unchanged: 1, Deleted: 5},
				Changes:      []reconcile.Change{deleted(u2), deleted(u3), deleted(u4), deleted(u6), deleted(u7)},
				GroupDeletes: []reconcile.Group{eng},
			},
		},
		{
			name:    "deactivate with only inactive orphans changes nothing",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, u4, u5, u6, u7}},
			records: records,
			want:    reconcile.Plan{Records: 1, Total: 4, Counts: reconcile.Counts{Unchanged: 1}},
			empty:   true,
		},
		{
			name:    "orphans sort by external id as text",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, usr("u-20", "20", "x"), usr("u-100", "100", "y"), usr("u-3", "3", "z")}},
			records: records,
			want: reconcile.Plan{
				Records: 1,
				Total:   4,
				Counts:  reconcile.Counts{Unchanged: 1, Deactivated: 3},
				Changes: []reconcile.Change{
					deactivated(usr("u-100", "100", "y")),
					deactivated(usr("u-20", "20", "x")),
					deactivated(usr("u-3", "3", "z")),
				},
			},
		},
		{
			name:    "orphans follow the records' changes",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, u2}},
			records: []sources.Record{rec(1, "1", "ada"), rec(2, "9", "ivy")},
			want: reconcile.Plan{
				Records: 2,
				Total:   2,
				Counts:  reconcile.Counts{Created: 1, Unchanged: 1, Deactivated: 1},
				Changes: []reconcile.Change{created(2, usr("new-1", "9", "ivy")), deactivated(u2)},
			},
		},
	})
}

func TestPlanSnapshotRestore(t *testing.T) {
	u1 := usr("u-1", "1", "ada")
	u2 := edit(usr("u-2", "2", "bob", "eng"), inactive(reconcile.ReasonOrphan))
	u3 := edit(usr("u-3", "3", "carl"), tombstone, hasPassword)
	u4 := edit(usr("u-4", "4", "dora"), inactive(reconcile.ReasonAdmin))
	eng := reconcile.Group{ID: "g-eng", DisplayName: "Eng"}
	snap := reconcile.Snapshot{Users: []reconcile.User{u1, u2, u3, u4}, Groups: []reconcile.Group{eng}}
	records := []sources.Record{rec(1, "1", "ada"), rec(2, "2", "bob", "Eng"), rec(3, "3", "carl", "Eng"), rec(4, "4", "dora")}
	pending := inactive(reconcile.ReasonPending)
	changed := []sources.Record{
		records[0],
		edit(records[1], func(r *sources.Record) { r.UserName, r.Email = "bobby", "bobby@example.com" }),
		edit(records[2], func(r *sources.Record) { r.FamilyName = "King" }),
		records[3],
	}

	runPlanCases(t, []planCase{
		{
			name:    "orphans come back active with the same id",
			snap:    snap,
			records: records,
			want: reconcile.Plan{
				Records: 4,
				Total:   3,
				Counts:  reconcile.Counts{Unchanged: 2, Restored: 2},
				Changes: []reconcile.Change{
					restored(2, u2, edit(u2, active)),
					restored(3, u3, edit(u3, active, groups("eng"))),
				},
				// u-2 kept its membership while inactive; the tombstone lost it.
				MembershipAdds: []reconcile.Membership{{GroupID: "g-eng", UserID: "u-3"}},
			},
		},
		{
			name:    "without activate_new restored users are pending",
			snap:    snap,
			records: records,
			set:     []func(*reconcile.Settings){func(s *reconcile.Settings) { s.ActivateNew = false }},
			want: reconcile.Plan{
				Records: 4,
				Total:   3,
				Counts:  reconcile.Counts{Unchanged: 2, Restored: 2},
				Changes: []reconcile.Change{
					restored(2, u2, edit(u2, pending)),
					restored(3, u3, edit(u3, pending, groups("eng"))),
				},
				MembershipAdds: []reconcile.Membership{{GroupID: "g-eng", UserID: "u-3"}},
			},
		},
		{
			name:    "a restore takes the record's new data",
			snap:    snap,
			records: changed,
			want: reconcile.Plan{
				Records: 4,
				Total:   3,
				Counts:  reconcile.Counts{Unchanged: 2, Restored: 2},
				Changes: []reconcile.Change{
					restored(2, u2, edit(u2, active, login("bobby"), func(u *reconcile.User) { u.Email = "bobby@example.com" })),
					restored(3, u3, edit(u3, active, groups("eng"), func(u *reconcile.User) { u.FamilyName, u.DisplayName = "King", "Given3 King" })),
				},
				MembershipAdds: []reconcile.Membership{{GroupID: "g-eng", UserID: "u-3"}},
			},
		},
		{
			name:    "restore off: not restored, nothing changes",
			snap:    snap,
			records: records,
			set:     []func(*reconcile.Settings){func(s *reconcile.Settings) { s.Restore = false }},
			want: reconcile.Plan{
				Records: 4,
				Total:   3,
				Counts:  reconcile.Counts{Unchanged: 2, NotRestored: 2},
				Changes: []reconcile.Change{notRestored(2, u2), notRestored(3, u3)},
			},
			empty: true,
		},
		{
			name:    "restore off ignores the record's new data",
			snap:    snap,
			records: changed,
			set:     []func(*reconcile.Settings){func(s *reconcile.Settings) { s.Restore = false }},
			want: reconcile.Plan{
				Records: 4,
				Total:   3,
				Counts:  reconcile.Counts{Unchanged: 2, NotRestored: 2},
				Changes: []reconcile.Change{notRestored(2, u2), notRestored(3, u3)},
			},
			empty: true,
		},
		{
			name: "a user an admin deactivated stays inactive and is updated",
			snap: snap,
			records: []sources.Record{records[0], records[1], records[2],
				edit(records[3], func(r *sources.Record) { r.Email = "dora@example.com" })},
			want: reconcile.Plan{
				Records: 4,
				Total:   3,
				Counts:  reconcile.Counts{Unchanged: 1, Updated: 1, Restored: 2},
				Changes: []reconcile.Change{
					restored(2, u2, edit(u2, active)),
					restored(3, u3, edit(u3, active, groups("eng"))),
					updated(4, u4, edit(u4, func(u *reconcile.User) { u.Email = "dora@example.com" }), "email"),
				},
				MembershipAdds: []reconcile.Membership{{GroupID: "g-eng", UserID: "u-3"}},
			},
		},
		{
			name:    "a restored tombstone without password gets the record's",
			snap:    reconcile.Snapshot{Users: []reconcile.User{edit(usr("u-3", "3", "carl"), tombstone)}},
			records: []sources.Record{edit(rec(1, "3", "carl"), func(r *sources.Record) { r.PasswordHash = "$argon2id$h3" })},
			want: reconcile.Plan{
				Records: 1,
				Total:   0,
				Counts:  reconcile.Counts{Restored: 1},
				Changes: []reconcile.Change{restored(1, edit(usr("u-3", "3", "carl"), tombstone),
					edit(usr("u-3", "3", "carl"), func(u *reconcile.User) { u.PasswordHash, u.HasPassword = "$argon2id$h3", true }))},
			},
		},
		{
			name:    "orphans delete then restore off: the tombstone stays",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, u3}},
			records: []sources.Record{rec(1, "3", "carl")},
			set: []func(*reconcile.Settings){orphans(reconcile.OrphansDelete),
				func(s *reconcile.Settings) { s.Restore = false }},
			want: reconcile.Plan{
				Records: 1,
				Total:   1,
				Counts:  reconcile.Counts{NotRestored: 1, Deleted: 1},
				Changes: []reconcile.Change{notRestored(1, u3), deleted(u1)},
			},
		},
	})
}

func TestPlanSnapshotPasswords(t *testing.T) {
	u1 := usr("u-1", "1", "ada")
	u2 := edit(usr("u-2", "2", "bob"), hasPassword)
	snap := reconcile.Snapshot{Users: []reconcile.User{u1, u2}}
	withHash := func(r sources.Record, h string) sources.Record {
		return edit(r, func(r *sources.Record) { r.PasswordHash = h })
	}
	setHash := func(h string) func(*reconcile.User) {
		return func(u *reconcile.User) { u.PasswordHash, u.HasPassword = h, true }
	}

	runPlanCases(t, []planCase{
		{
			name:    "set on a user without password, never on one with",
			snap:    snap,
			records: []sources.Record{withHash(rec(1, "1", "ada"), "$h1"), withHash(rec(2, "2", "bob"), "$h2")},
			want: reconcile.Plan{
				Records: 2,
				Total:   2,
				Counts:  reconcile.Counts{Updated: 1, Unchanged: 1},
				Changes: []reconcile.Change{updated(1, u1, edit(u1, setHash("$h1")), "password")},
			},
		},
		{
			name: "not overwritten when other fields change",
			snap: snap,
			records: []sources.Record{rec(1, "1", "ada"),
				withHash(edit(rec(2, "2", "bob"), func(r *sources.Record) { r.Email = "bob@example.com" }), "$h2")},
			want: reconcile.Plan{
				Records: 2,
				Total:   2,
				Counts:  reconcile.Counts{Updated: 1, Unchanged: 1},
				Changes: []reconcile.Change{updated(2, u2, edit(u2, func(u *reconcile.User) { u.Email = "bob@example.com" }), "email")},
			},
		},
		{
			name: "set together with other fields",
			snap: snap,
			records: []sources.Record{
				withHash(edit(rec(1, "1", "ada"), func(r *sources.Record) { r.Email = "ada@example.com" }), "$h1"),
				rec(2, "2", "bob"),
			},
			want: reconcile.Plan{
				Records: 2,
				Total:   2,
				Counts:  reconcile.Counts{Updated: 1, Unchanged: 1},
				Changes: []reconcile.Change{updated(1, u1, edit(u1, setHash("$h1"), func(u *reconcile.User) { u.Email = "ada@example.com" }),
					"email", "password")},
			},
		},
		{
			name:    "no password in the record changes nothing",
			snap:    snap,
			records: []sources.Record{rec(1, "1", "ada"), rec(2, "2", "bob")},
			want:    reconcile.Plan{Records: 2, Total: 2, Counts: reconcile.Counts{Unchanged: 2}},
			empty:   true,
		},
		{
			name:    "restore of a user with a password keeps it",
			snap:    reconcile.Snapshot{Users: []reconcile.User{edit(u2, inactive(reconcile.ReasonOrphan))}},
			records: []sources.Record{withHash(rec(1, "2", "bob"), "$h2")},
			want: reconcile.Plan{
				Records: 1,
				Total:   1,
				Counts:  reconcile.Counts{Restored: 1},
				Changes: []reconcile.Change{restored(1, edit(u2, inactive(reconcile.ReasonOrphan)), u2)},
			},
		},
	})
}

const (
	foreignHolder = `a user of source "hr" (id "77")`
	foreignReason = "is already used by " + foreignHolder
)

func TestPlanSnapshotLoginConflicts(t *testing.T) {
	u1 := usr("u-1", "1", "ada")
	u2 := usr("u-2", "2", "bob")
	u3 := usr("u-3", "3", "carl")
	foreign := map[string]string{"zed": foreignHolder}
	base := reconcile.Snapshot{Users: []reconcile.User{u1, u2}, Foreign: foreign}
	withCarl := func(u reconcile.User) reconcile.Snapshot {
		return reconcile.Snapshot{Users: []reconcile.User{u1, u2, u}, Foreign: foreign}
	}
	skip := func(s *reconcile.Settings) { s.SkipConflicts = true }
	keptReason := func(state string) string {
		return `is already used by id "3" of this source, who is no longer in the input but is kept (` + state + `)`
	}
	present := []sources.Record{rec(1, "1", "ada"), rec(2, "2", "bob")}
	plus := func(r sources.Record) []sources.Record { return append(slices.Clone(present), r) }

	runPlanCases(t, []planCase{
		{
			name:    "another source's login on a new record fails on column 4",
			snap:    base,
			records: plus(rec(3, "3", "Zed")),
			want: reconcile.Plan{
				Records: 3,
				Total:   2,
				Counts:  reconcile.Counts{Unchanged: 2},
				Errors: []sources.FieldError{{Line: 3, Column: 4, Field: "login",
					Message: `line 3, column 4 (login): "Zed" ` + foreignReason}},
			},
			empty: true,
		},
		{
			name: "a long login is quoted cut, not whole",
			snap: reconcile.Snapshot{Users: []reconcile.User{u1, u2},
				Foreign: map[string]string{strings.Repeat("z", 300): foreignHolder}},
			records: plus(rec(3, "3", strings.Repeat("z", 300))),
			want: reconcile.Plan{
				Records: 3,
				Total:   2,
				Counts:  reconcile.Counts{Unchanged: 2},
				Errors: []sources.FieldError{{Line: 3, Column: 4, Field: "login",
					Message: `line 3, column 4 (login): "` + strings.Repeat("z", 64) + `"... (300 characters) ` + foreignReason}},
			},
			empty: true,
		},
		{
			name:    "another source's login on an existing user fails",
			snap:    base,
			records: []sources.Record{rec(1, "1", "ada"), rec(5, "2", "zed")},
			want: reconcile.Plan{
				Records: 2,
				Total:   2,
				Counts:  reconcile.Counts{Unchanged: 1},
				Errors: []sources.FieldError{{Line: 5, Column: 4, Field: "login",
					Message: `line 5, column 4 (login): "zed" ` + foreignReason}},
			},
			empty: true,
		},
		{
			name:    "on_conflict skip: a new record is skipped with a warning",
			snap:    base,
			records: plus(rec(3, "3", "Zed")),
			set:     []func(*reconcile.Settings){skip},
			want: reconcile.Plan{
				Records:  3,
				Total:    2,
				Counts:   reconcile.Counts{Unchanged: 2, Skipped: 1},
				Changes:  []reconcile.Change{skippedNew(3, "3", "Zed", foreignReason)},
				Warnings: []string{`line 3, column 4 (login): "Zed" ` + foreignReason + `; the record was skipped`},
			},
			empty: true,
		},
		{
			name:    "on_conflict skip: an existing user is skipped and kept as is",
			snap:    base,
			records: []sources.Record{rec(1, "1", "ada"), edit(rec(2, "2", "zed"), func(r *sources.Record) { r.Email = "new@example.com" })},
			set:     []func(*reconcile.Settings){skip},
			want: reconcile.Plan{
				Records:  2,
				Total:    2,
				Counts:   reconcile.Counts{Unchanged: 1, Skipped: 1},
				Changes:  []reconcile.Change{skippedExisting(2, u2, foreignReason)},
				Warnings: []string{`line 2, column 4 (login): "zed" ` + foreignReason + `; the record was skipped`},
			},
			empty: true,
		},
		{
			name:    "login of a same-source user kept as an orphan (deactivate)",
			snap:    withCarl(u3),
			records: plus(rec(3, "9", "Carl")),
			want: reconcile.Plan{
				Records: 3,
				Total:   3,
				Counts:  reconcile.Counts{Unchanged: 2, Deactivated: 1},
				Changes: []reconcile.Change{deactivated(u3)},
				Errors: []sources.FieldError{{Line: 3, Column: 4, Field: "login",
					Message: `line 3, column 4 (login): "Carl" ` + keptReason("active")}},
			},
		},
		{
			name:    "login of a same-source user kept as an orphan (ignore)",
			snap:    withCarl(u3),
			records: plus(rec(3, "9", "Carl")),
			set:     []func(*reconcile.Settings){orphans(reconcile.OrphansIgnore)},
			want: reconcile.Plan{
				Records: 3,
				Total:   3,
				Counts:  reconcile.Counts{Unchanged: 2},
				Errors: []sources.FieldError{{Line: 3, Column: 4, Field: "login",
					Message: `line 3, column 4 (login): "Carl" ` + keptReason("active")}},
			},
			empty: true,
		},
		{
			name:    "login of a same-source user already inactive",
			snap:    withCarl(edit(u3, inactive(reconcile.ReasonOrphan))),
			records: plus(rec(3, "9", "carl")),
			want: reconcile.Plan{
				Records: 3,
				Total:   3,
				Counts:  reconcile.Counts{Unchanged: 2},
				Errors: []sources.FieldError{{Line: 3, Column: 4, Field: "login",
					Message: `line 3, column 4 (login): "carl" ` + keptReason("inactive")}},
			},
			empty: true,
		},
		{
			name:    "login of a kept same-source user, skipped",
			snap:    withCarl(u3),
			records: plus(rec(3, "9", "carl")),
			set:     []func(*reconcile.Settings){skip},
			want: reconcile.Plan{
				Records:  3,
				Total:    3,
				Counts:   reconcile.Counts{Unchanged: 2, Skipped: 1, Deactivated: 1},
				Changes:  []reconcile.Change{skippedNew(3, "9", "carl", keptReason("active")), deactivated(u3)},
				Warnings: []string{`line 3, column 4 (login): "carl" ` + keptReason("active") + `; the record was skipped`},
			},
		},
		{
			name:    "login freed by a same-source user deleted now",
			snap:    withCarl(u3),
			records: plus(rec(3, "9", "Carl")),
			set:     []func(*reconcile.Settings){orphans(reconcile.OrphansDelete)},
			want: reconcile.Plan{
				Records: 3,
				Total:   3,
				Counts:  reconcile.Counts{Created: 1, Unchanged: 2, Deleted: 1},
				Changes: []reconcile.Change{created(3, usr("new-1", "9", "Carl")), deleted(u3)},
			},
		},
		{
			name:    "a tombstone holds no login",
			snap:    withCarl(edit(u3, tombstone)),
			records: plus(rec(3, "9", "carl")),
			set:     []func(*reconcile.Settings){orphans(reconcile.OrphansIgnore)},
			want: reconcile.Plan{
				Records: 3,
				Total:   2,
				Counts:  reconcile.Counts{Created: 1, Unchanged: 2},
				Changes: []reconcile.Change{created(3, usr("new-1", "9", "carl"))},
			},
		},
		{
			name:    "two present users swap logins",
			snap:    base,
			records: []sources.Record{rec(1, "1", "bob"), rec(2, "2", "ADA")},
			want: reconcile.Plan{
				Records: 2,
				Total:   2,
				Counts:  reconcile.Counts{Updated: 2},
				Changes: []reconcile.Change{
					updated(1, u1, edit(u1, login("bob")), "userName"),
					updated(2, u2, edit(u2, login("ADA")), "userName"),
				},
			},
		},
		{
			name:    "three present users rotate logins",
			snap:    withCarl(u3),
			records: []sources.Record{rec(1, "1", "bob"), rec(2, "2", "carl"), rec(3, "3", "ada")},
			want: reconcile.Plan{
				Records: 3,
				Total:   3,
				Counts:  reconcile.Counts{Updated: 3},
				Changes: []reconcile.Change{
					updated(1, u1, edit(u1, login("bob")), "userName"),
					updated(2, u2, edit(u2, login("carl")), "userName"),
					updated(3, u3, edit(u3, login("ada")), "userName"),
				},
			},
		},
		{
			name:    "a new record takes the login a present user gives up",
			snap:    base,
			records: []sources.Record{rec(1, "1", "ann"), rec(2, "2", "bob"), rec(3, "9", "ada")},
			want: reconcile.Plan{
				Records: 3,
				Total:   2,
				Counts:  reconcile.Counts{Created: 1, Updated: 1, Unchanged: 1},
				Changes: []reconcile.Change{
					updated(1, u1, edit(u1, login("ann")), "userName"),
					created(3, usr("new-1", "9", "ada")),
				},
			},
		},
		{
			name:    "a restored tombstone takes a login a present user gives up",
			snap:    withCarl(edit(usr("u-3", "3", "ada"), tombstone)),
			records: []sources.Record{rec(1, "1", "ann"), rec(2, "2", "bob"), rec(3, "3", "ada")},
			want: reconcile.Plan{
				Records: 3,
				Total:   2,
				Counts:  reconcile.Counts{Updated: 1, Unchanged: 1, Restored: 1},
				Changes: []reconcile.Change{
					updated(1, u1, edit(u1, login("ann")), "userName"),
					restored(3, edit(usr("u-3", "3", "ada"), tombstone), usr("u-3", "3", "ada")),
				},
			},
		},
		{
			name:    "every conflict is reported",
			snap:    withCarl(u3),
			records: []sources.Record{rec(1, "1", "zed"), rec(2, "2", "bob"), rec(3, "9", "carl")},
			set:     []func(*reconcile.Settings){orphans(reconcile.OrphansIgnore)},
			want: reconcile.Plan{
				Records: 3,
				Total:   3,
				Counts:  reconcile.Counts{Unchanged: 1},
				Errors: []sources.FieldError{
					{Line: 1, Column: 4, Field: "login", Message: `line 1, column 4 (login): "zed" ` + foreignReason},
					{Line: 3, Column: 4, Field: "login", Message: `line 3, column 4 (login): "carl" ` + keptReason("active")},
				},
			},
			empty: true,
		},
	})
}

// finalLogins applies p's user changes to snap and returns, per login key,
// the ids of the users that are not deleted afterwards.
func finalLogins(snap *reconcile.Snapshot, p *reconcile.Plan) map[string][]string {
	users := map[string]reconcile.User{}
	for _, u := range snap.Users {
		users[u.ID] = u
	}
	for _, c := range p.Changes {
		if c.Action != reconcile.Skip && c.Action != reconcile.NotRestored {
			users[c.After.ID] = c.After
		}
	}
	out := map[string][]string{}
	for _, u := range users {
		if u.State != reconcile.StateDeleted {
			k := reconcile.Key(u.UserName)
			out[k] = append(out[k], u.ID)
		}
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

// TestPlanSnapshotLoginHeldByUnchangedRecord shows users who are in the input
// but whose record changes nothing (restore off, or skipped) keeping their
// login while another record takes it: two users end with one login.
func TestPlanSnapshotLoginHeldByUnchangedRecord(t *testing.T) {
	u1 := usr("u-1", "1", "ada")
	u2 := usr("u-2", "2", "bob")
	cases := []struct {
		name    string
		snap    reconcile.Snapshot
		records []sources.Record
		set     []func(*reconcile.Settings)
	}{
		{
			name:    "holder is not restored (restore off)",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, edit(u2, inactive(reconcile.ReasonOrphan))}},
			records: []sources.Record{rec(1, "1", "bob"), rec(2, "2", "bobby")},
			set:     []func(*reconcile.Settings){func(s *reconcile.Settings) { s.Restore = false }},
		},
		{
			name:    "holder's record is skipped (on_conflict skip)",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, u2}, Foreign: map[string]string{"zed": foreignHolder}},
			records: []sources.Record{rec(1, "1", "bob"), rec(2, "2", "zed")},
			set:     []func(*reconcile.Settings){func(s *reconcile.Settings) { s.SkipConflicts = true }},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := tc.snap
			p := reconcile.PlanSnapshot(tc.records, &snap, settings(tc.set...), seq())
			// Whatever the fix, line 1 must not get "bob": it must be an
			// error or a skip.
			var line1 *reconcile.Change
			for i := range p.Changes {
				if p.Changes[i].Line == 1 {
					line1 = &p.Changes[i]
				}
			}
			hasErr := slices.ContainsFunc(p.Errors, func(e sources.FieldError) bool { return e.Line == 1 && e.Column == 4 })
			ok := hasErr || (line1 != nil && line1.Action == reconcile.Skip)
			if len(p.Errors) == 0 {
				if ids := finalLogins(&snap, p)["bob"]; len(ids) > 1 {
					ok = false
				}
			}
			if !ok {
				action := "no change"
				if line1 != nil {
					action = fmt.Sprintf("%s to %q", line1.Action, line1.After.UserName)
				}
				t.Errorf("line 1 takes login \"bob\" that u-2 keeps (its record changes nothing): got %s and errors %v, "+
					"final holders of \"bob\": %v; want a login error on line 1, column 4 (or a skip)",
					action, p.Errors, finalLogins(&snap, p)["bob"])
			}
		})
	}
}

// holdCase describes a snapshot of users u-1..u-N and a snapshot input of
// the first present of them.
type holdCase struct {
	name    string
	users   int
	present int
	// prepare changes the snapshot users (by index) before planning.
	prepare func(users []reconcile.User) []reconcile.User
	extra   []sources.Record
	set     []func(*reconcile.Settings)
	foreign map[string]string
	total   int
	counts  reconcile.Counts
	errors  int
	hold    string
}

// holdMessage is the reason of a plan held for its removals: the
// threshold named is the one that applies, max_removals's share or the 5
// removals that always pass when that share is smaller.
func holdMessage(deact, del, total, allowed int) string {
	head := fmt.Sprintf("the plan would deactivate %d and delete %d of the source's %d users: %d removals, ", deact, del, total, deact+del)
	if allowed >= 5 {
		return head + fmt.Sprintf("more than the %d that max_removals allows", allowed)
	}
	return head + fmt.Sprintf("more than the 5 that always pass (max_removals allows %d of %d users, but 5 or fewer removals never hold a sync)", allowed, total)
}

func emptyMessage(total int) string {
	return fmt.Sprintf("the snapshot has no records; applying it would treat all %d users of the source as orphans (set allow_empty: true if an empty source is expected)", total)
}

func TestPlanSnapshotSafetyValve(t *testing.T) {
	force := func(s *reconcile.Settings) { s.Force = true }
	allowEmpty := func(s *reconcile.Settings) { s.AllowEmpty = true }
	maxRemovals := func(f func(int) int) func(*reconcile.Settings) {
		return func(s *reconcile.Settings) { s.MaxRemovals = f }
	}
	cases := []holdCase{
		{name: "5 removals never hold", users: 10, present: 5,
			total: 10, counts: reconcile.Counts{Unchanged: 5, Deactivated: 5}},
		{name: "5 deletions never hold, even with max_removals 0", users: 10, present: 5,
			set:   []func(*reconcile.Settings){orphans(reconcile.OrphansDelete), maxRemovals(limit(0))},
			total: 10, counts: reconcile.Counts{Unchanged: 5, Deleted: 5}},
		{name: "6 deactivations of 10 with 10%", users: 10, present: 4,
			total: 10, counts: reconcile.Counts{Unchanged: 4, Deactivated: 6}, hold: holdMessage(6, 0, 10, 1)},
		{name: "6 deletions of 10 with 10%", users: 10, present: 4,
			set:   []func(*reconcile.Settings){orphans(reconcile.OrphansDelete)},
			total: 10, counts: reconcile.Counts{Unchanged: 4, Deleted: 6}, hold: holdMessage(0, 6, 10, 1)},
		{name: "deactivations and deletions add up", users: 10, present: 4,
			prepare: func(us []reconcile.User) []reconcile.User {
				us[9] = edit(us[9], inactive(reconcile.ReasonOrphan))
				return us
			},
			set:   []func(*reconcile.Settings){orphans(reconcile.OrphansDelete)},
			total: 10, counts: reconcile.Counts{Unchanged: 4, Deleted: 6}, hold: holdMessage(0, 6, 10, 1)},
		{name: "exactly the share passes", users: 60, present: 54,
			total: 60, counts: reconcile.Counts{Unchanged: 54, Deactivated: 6}},
		{name: "one more than the share holds", users: 60, present: 53,
			total: 60, counts: reconcile.Counts{Unchanged: 53, Deactivated: 7}, hold: holdMessage(7, 0, 60, 6)},
		{name: "absolute max_removals reached", users: 100, present: 93,
			set:   []func(*reconcile.Settings){maxRemovals(limit(7))},
			total: 100, counts: reconcile.Counts{Unchanged: 93, Deactivated: 7}},
		{name: "absolute max_removals exceeded", users: 100, present: 92,
			set:   []func(*reconcile.Settings){maxRemovals(limit(7))},
			total: 100, counts: reconcile.Counts{Unchanged: 92, Deactivated: 8}, hold: holdMessage(8, 0, 100, 7)},
		{name: "no max_removals allows any number", users: 10, present: 0, extra: []sources.Record{rec(1, "new", "new")},
			set:   []func(*reconcile.Settings){maxRemovals(nil)},
			total: 10, counts: reconcile.Counts{Created: 1, Deactivated: 10}},
		{name: "force skips the valve", users: 10, present: 4,
			set:   []func(*reconcile.Settings){force},
			total: 10, counts: reconcile.Counts{Unchanged: 4, Deactivated: 6}},
		{name: "already inactive orphans are no removals", users: 10, present: 4,
			prepare: func(us []reconcile.User) []reconcile.User {
				us[8] = edit(us[8], inactive(reconcile.ReasonOrphan))
				us[9] = edit(us[9], inactive(reconcile.ReasonAdmin))
				return us
			},
			total: 10, counts: reconcile.Counts{Unchanged: 4, Deactivated: 4}},
		{name: "tombstones are not part of the total", users: 15, present: 4,
			prepare: func(us []reconcile.User) []reconcile.User {
				for i := 10; i < 15; i++ {
					us[i] = edit(us[i], tombstone)
				}
				return us
			},
			total: 10, counts: reconcile.Counts{Unchanged: 4, Deactivated: 6}, hold: holdMessage(6, 0, 10, 1)},
		{name: "a plan with errors never holds", users: 10, present: 4, extra: []sources.Record{rec(99, "new", "zed")},
			foreign: map[string]string{"zed": foreignHolder},
			total:   10, counts: reconcile.Counts{Unchanged: 4, Deactivated: 6}, errors: 1},
		{name: "zero records hold", users: 3, present: 0,
			total: 3, counts: reconcile.Counts{Deactivated: 3}, hold: emptyMessage(3)},
		{name: "zero records hold with orphans ignore", users: 3, present: 0,
			set:   []func(*reconcile.Settings){orphans(reconcile.OrphansIgnore)},
			total: 3, hold: emptyMessage(3)},
		{name: "zero records hold without max_removals", users: 3, present: 0,
			set:   []func(*reconcile.Settings){maxRemovals(nil)},
			total: 3, counts: reconcile.Counts{Deactivated: 3}, hold: emptyMessage(3)},
		{name: "zero records into an empty source hold", users: 0, present: 0,
			total: 0, hold: emptyMessage(0)},
		{name: "zero records with allow_empty", users: 3, present: 0,
			set:   []func(*reconcile.Settings){allowEmpty},
			total: 3, counts: reconcile.Counts{Deactivated: 3}},
		{name: "zero records with allow_empty still meet max_removals", users: 10, present: 0,
			set:   []func(*reconcile.Settings){allowEmpty},
			total: 10, counts: reconcile.Counts{Deactivated: 10}, hold: holdMessage(10, 0, 10, 1)},
		// Force is how an operator approves a held plan, so it passes an
		// empty snapshot too.
		{name: "zero records with force", users: 3, present: 0,
			set:   []func(*reconcile.Settings){force},
			total: 3, counts: reconcile.Counts{Deactivated: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			users := make([]reconcile.User, tc.users)
			for i := range users {
				n := strconv.Itoa(i + 1)
				users[i] = usr("u-"+n, n, "user-"+n)
			}
			if tc.prepare != nil {
				users = tc.prepare(users)
			}
			var records []sources.Record
			for i := range tc.present {
				n := strconv.Itoa(i + 1)
				records = append(records, rec(i+1, n, "user-"+n))
			}
			records = append(records, tc.extra...)
			snap := reconcile.Snapshot{Revision: rev, Users: users, Foreign: tc.foreign}
			p := reconcile.PlanSnapshot(records, &snap, settings(tc.set...), seq())

			if p.Total != tc.total || p.Records != len(records) {
				t.Errorf("Total, Records = %d, %d, want %d, %d", p.Total, p.Records, tc.total, len(records))
			}
			if p.Counts != tc.counts {
				t.Errorf("Counts = %+v, want %+v", p.Counts, tc.counts)
			}
			if len(p.Errors) != tc.errors {
				t.Errorf("Errors = %v, want %d", p.Errors, tc.errors)
			}
			if p.Hold != tc.hold {
				t.Errorf("Hold = %q, want %q", p.Hold, tc.hold)
			}
			if got, want := p.Removals(), tc.counts.Deactivated+tc.counts.Deleted; got != want {
				t.Errorf("Removals() = %d, want %d", got, want)
			}
			// The held plan is complete: the operator approves what it shows.
			n := 0
			for _, c := range p.Changes {
				if c.Action == reconcile.Deactivate || c.Action == reconcile.Delete {
					n++
				}
			}
			if n != p.Removals() {
				t.Errorf("%d removal changes, want %d", n, p.Removals())
			}
		})
	}
}

func TestPlanSnapshotGroups(t *testing.T) {
	eng := reconcile.Group{ID: "g-eng", DisplayName: "Eng"}
	ops := reconcile.Group{ID: "g-ops", DisplayName: "Ops"}
	u1 := usr("u-1", "1", "ada", "eng")
	u2 := usr("u-2", "2", "bob", "eng")

	runPlanCases(t, []planCase{
		{
			name:    "one group per spelling; the first wins",
			records: []sources.Record{rec(1, "1", "ada", "Eng"), rec(2, "2", "bob", "ENG", "eng")},
			want: reconcile.Plan{
				Records: 2,
				Counts:  reconcile.Counts{Created: 2},
				Changes: []reconcile.Change{
					created(1, usr("new-2", "1", "ada", "eng")),
					created(2, usr("new-3", "2", "bob", "eng")),
				},
				GroupCreates: []reconcile.Group{{ID: "new-1", DisplayName: "Eng"}},
				MembershipAdds: []reconcile.Membership{
					{GroupID: "new-1", UserID: "new-2"},
					{GroupID: "new-1", UserID: "new-3"},
				},
			},
		},
		{
			name:    "another spelling of an existing group renames it",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1}, Groups: []reconcile.Group{eng}},
			records: []sources.Record{rec(1, "1", "ada", "ENG")},
			want: reconcile.Plan{
				Records:      1,
				Total:        1,
				Counts:       reconcile.Counts{Unchanged: 1},
				GroupRenames: []reconcile.Group{{ID: "g-eng", DisplayName: "ENG"}},
			},
		},
		{
			name:    "a rename takes the first spelling, once",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, u2}, Groups: []reconcile.Group{eng}},
			records: []sources.Record{rec(1, "1", "ada", "eng"), rec(2, "2", "bob", "ENG")},
			want: reconcile.Plan{
				Records:      2,
				Total:        2,
				Counts:       reconcile.Counts{Unchanged: 2},
				GroupRenames: []reconcile.Group{{ID: "g-eng", DisplayName: "eng"}},
			},
		},
		{
			name:    "the existing spelling first: no rename",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, u2}, Groups: []reconcile.Group{eng}},
			records: []sources.Record{rec(1, "1", "ada", "Eng"), rec(2, "2", "bob", "ENG")},
			want:    reconcile.Plan{Records: 2, Total: 2, Counts: reconcile.Counts{Unchanged: 2}},
			empty:   true,
		},
		{
			name:    "a group no longer referenced is deleted (deactivate)",
			snap:    reconcile.Snapshot{Users: []reconcile.User{edit(u1, groups("eng", "ops"))}, Groups: []reconcile.Group{eng, ops}},
			records: []sources.Record{rec(1, "1", "ada", "Eng")},
			want: reconcile.Plan{
				Records:           1,
				Total:             1,
				Counts:            reconcile.Counts{Updated: 1},
				Changes:           []reconcile.Change{updated(1, edit(u1, groups("eng", "ops")), u1, "groups")},
				GroupDeletes:      []reconcile.Group{ops},
				MembershipRemoves: []reconcile.Membership{{GroupID: "g-ops", UserID: "u-1"}},
			},
		},
		{
			name:    "a group no longer referenced is deleted (delete)",
			snap:    reconcile.Snapshot{Users: []reconcile.User{edit(u1, groups("eng", "ops"))}, Groups: []reconcile.Group{eng, ops}},
			records: []sources.Record{rec(1, "1", "ada", "Eng")},
			set:     []func(*reconcile.Settings){orphans(reconcile.OrphansDelete)},
			want: reconcile.Plan{
				Records:           1,
				Total:             1,
				Counts:            reconcile.Counts{Updated: 1},
				Changes:           []reconcile.Change{updated(1, edit(u1, groups("eng", "ops")), u1, "groups")},
				GroupDeletes:      []reconcile.Group{ops},
				MembershipRemoves: []reconcile.Membership{{GroupID: "g-ops", UserID: "u-1"}},
			},
		},
		{
			name:    "ignore keeps a group no longer referenced",
			snap:    reconcile.Snapshot{Users: []reconcile.User{edit(u1, groups("eng", "ops"))}, Groups: []reconcile.Group{eng, ops}},
			records: []sources.Record{rec(1, "1", "ada", "Eng")},
			set:     []func(*reconcile.Settings){orphans(reconcile.OrphansIgnore)},
			want: reconcile.Plan{
				Records:           1,
				Total:             1,
				Counts:            reconcile.Counts{Updated: 1},
				Changes:           []reconcile.Change{updated(1, edit(u1, groups("eng", "ops")), u1, "groups")},
				MembershipRemoves: []reconcile.Membership{{GroupID: "g-ops", UserID: "u-1"}},
			},
		},
		{
			name:    "a group only orphans are in is deleted",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, usr("u-2", "2", "bob", "ops")}, Groups: []reconcile.Group{eng, ops}},
			records: []sources.Record{rec(1, "1", "ada", "Eng")},
			want: reconcile.Plan{
				Records:      1,
				Total:        2,
				Counts:       reconcile.Counts{Unchanged: 1, Deactivated: 1},
				Changes:      []reconcile.Change{deactivated(usr("u-2", "2", "bob", "ops"))},
				GroupDeletes: []reconcile.Group{ops},
			},
		},
		{
			name:    "a deleted orphan loses its groups",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, usr("u-2", "2", "bob", "eng", "ops")}, Groups: []reconcile.Group{eng, ops}},
			records: []sources.Record{rec(1, "1", "ada", "Eng")},
			set:     []func(*reconcile.Settings){orphans(reconcile.OrphansDelete)},
			want: reconcile.Plan{
				Records:      1,
				Total:        2,
				Counts:       reconcile.Counts{Unchanged: 1, Deleted: 1},
				Changes:      []reconcile.Change{deleted(usr("u-2", "2", "bob", "eng", "ops"))},
				GroupDeletes: []reconcile.Group{ops},
			},
		},
		{
			name:    "a new group for an existing user",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1}, Groups: []reconcile.Group{eng}},
			records: []sources.Record{rec(1, "1", "ada", "Eng", "Dev")},
			want: reconcile.Plan{
				Records:        1,
				Total:          1,
				Counts:         reconcile.Counts{Updated: 1},
				Changes:        []reconcile.Change{updated(1, u1, edit(u1, groups("dev", "eng")), "groups")},
				GroupCreates:   []reconcile.Group{{ID: "new-1", DisplayName: "Dev"}},
				MembershipAdds: []reconcile.Membership{{GroupID: "new-1", UserID: "u-1"}},
			},
		},
		{
			name:    "membership moves from one user to another",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, usr("u-2", "2", "bob")}, Groups: []reconcile.Group{eng}},
			records: []sources.Record{rec(1, "1", "ada"), rec(2, "2", "bob", "Eng")},
			want: reconcile.Plan{
				Records: 2,
				Total:   2,
				Counts:  reconcile.Counts{Updated: 2},
				Changes: []reconcile.Change{
					updated(1, u1, edit(u1, groups()), "groups"),
					updated(2, usr("u-2", "2", "bob"), u2, "groups"),
				},
				MembershipAdds:    []reconcile.Membership{{GroupID: "g-eng", UserID: "u-2"}},
				MembershipRemoves: []reconcile.Membership{{GroupID: "g-eng", UserID: "u-1"}},
			},
		},
		{
			name:    "a rename and a new member together",
			snap:    reconcile.Snapshot{Users: []reconcile.User{u1, usr("u-2", "2", "bob")}, Groups: []reconcile.Group{eng}},
			records: []sources.Record{rec(1, "1", "ada", "Engineering", "ENG"), rec(2, "2", "bob", "eng")},
			want: reconcile.Plan{
				Records: 2,
				Total:   2,
				Counts:  reconcile.Counts{Updated: 2},
				Changes: []reconcile.Change{
					updated(1, u1, edit(u1, groups("eng", "engineering")), "groups"),
					updated(2, usr("u-2", "2", "bob"), u2, "groups"),
				},
				GroupCreates: []reconcile.Group{{ID: "new-1", DisplayName: "Engineering"}},
				GroupRenames: []reconcile.Group{{ID: "g-eng", DisplayName: "ENG"}},
				MembershipAdds: []reconcile.Membership{
					{GroupID: "new-1", UserID: "u-1"},
					{GroupID: "g-eng", UserID: "u-2"},
				},
			},
		},
	})
}

func TestPlanSnapshotActive(t *testing.T) {
	u1 := usr("u-1", "1", "ada")
	u2 := edit(usr("u-2", "2", "bob"), inactive(reconcile.ReasonAdmin))
	u3 := edit(usr("u-3", "3", "carl"), inactive(reconcile.ReasonSource))
	u4 := edit(usr("u-4", "4", "dora"), inactive(reconcile.ReasonPending))
	snap := reconcile.Snapshot{Users: []reconcile.User{u1, u2, u3, u4}}
	// records returns the four records, with Active set on some of them.
	records := func(act map[string]bool) []sources.Record {
		rs := []sources.Record{rec(1, "1", "ada"), rec(2, "2", "bob"), rec(3, "3", "carl"), rec(4, "4", "dora")}
		for i := range rs {
			if a, ok := act[rs[i].ExternalID]; ok {
				rs[i].Active = boolPtr(a)
			}
		}
		return rs
	}
	same := reconcile.Plan{Records: 4, Total: 4, Counts: reconcile.Counts{Unchanged: 4}}

	runPlanCases(t, []planCase{
		{
			name:    "false deactivates an active user",
			snap:    snap,
			records: records(map[string]bool{"1": false}),
			want: reconcile.Plan{
				Records: 4,
				Total:   4,
				Counts:  reconcile.Counts{Updated: 1, Unchanged: 3},
				Changes: []reconcile.Change{updated(1, u1, edit(u1, inactive(reconcile.ReasonSource)), "active")},
			},
		},
		{
			name: "false with other changes",
			snap: snap,
			records: edit(records(map[string]bool{"1": false}), func(rs *[]sources.Record) {
				(*rs)[0].Email = "ada@example.com"
			}),
			want: reconcile.Plan{
				Records: 4,
				Total:   4,
				Counts:  reconcile.Counts{Updated: 1, Unchanged: 3},
				Changes: []reconcile.Change{updated(1, u1, edit(u1, inactive(reconcile.ReasonSource),
					func(u *reconcile.User) { u.Email = "ada@example.com" }), "email", "active")},
			},
		},
		{
			name:    "true reactivates a user the source deactivated",
			snap:    snap,
			records: records(map[string]bool{"3": true}),
			want: reconcile.Plan{
				Records: 4,
				Total:   4,
				Counts:  reconcile.Counts{Updated: 1, Unchanged: 3},
				Changes: []reconcile.Change{updated(3, u3, edit(u3, active), "active")},
			},
		},
		{
			name:    "an admin's choice is kept either way",
			snap:    snap,
			records: records(map[string]bool{"2": true}),
			want:    same,
			empty:   true,
		},
		{
			name:    "false on an admin-deactivated user",
			snap:    snap,
			records: records(map[string]bool{"2": false}),
			want:    same,
			empty:   true,
		},
		{
			name:    "an active user the source calls active",
			snap:    snap,
			records: records(map[string]bool{"1": true, "3": false}),
			want:    same,
			empty:   true,
		},
		{
			name:    "an admin-activated user the source calls inactive stays active",
			snap:    reconcile.Snapshot{Users: []reconcile.User{edit(u1, func(u *reconcile.User) { u.StateReason = reconcile.ReasonAdmin }), u2, u3, u4}},
			records: records(map[string]bool{"1": false}),
			want:    same,
			empty:   true,
		},
		{
			name:    "true on a pending user: it waits for an operator",
			snap:    snap,
			records: records(map[string]bool{"4": true}),
			want:    same,
			empty:   true,
			bug:     `a pending user (activate_new false) whose record has Active=true is activated by the next sync, without an operator (SPEC §4.2 "wait for an operator")`,
		},
		{
			name:    "false on a new record creates the user inactive",
			snap:    snap,
			records: append(records(nil), edit(rec(5, "5", "eve"), func(r *sources.Record) { r.Active = boolPtr(false) })),
			want: reconcile.Plan{
				Records: 5,
				Total:   4,
				Counts:  reconcile.Counts{Created: 1, Unchanged: 4},
				Changes: []reconcile.Change{created(5, edit(usr("new-1", "5", "eve"), inactive(reconcile.ReasonSource)))},
			},
			bug: `a new record with Active=false is created active (activate_new), and the next sync of the same input deactivates it`,
		},
		{
			name: "false on a returning orphan restores it inactive",
			snap: reconcile.Snapshot{Users: []reconcile.User{u1, u2, u3, u4,
				edit(usr("u-5", "5", "eve"), inactive(reconcile.ReasonOrphan))}},
			records: append(records(nil), edit(rec(5, "5", "eve"), func(r *sources.Record) { r.Active = boolPtr(false) })),
			want: reconcile.Plan{
				Records: 5,
				Total:   5,
				Counts:  reconcile.Counts{Restored: 1, Unchanged: 4},
				Changes: []reconcile.Change{restored(5, edit(usr("u-5", "5", "eve"), inactive(reconcile.ReasonOrphan)),
					edit(usr("u-5", "5", "eve"), inactive(reconcile.ReasonSource)))},
			},
			bug: `a returning orphan whose record has Active=false is restored active, and the next sync of the same input deactivates it`,
		},
	})
}
