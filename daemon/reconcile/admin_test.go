package reconcile_test

import (
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources"
)

// TestPlanSnapshotKeepsAdminChoice: an operator's change of active (the
// admin API's PATCH /api/v1/users/{id}, reason admin) survives the syncs
// that follow (SPEC §4.4), whatever the record says, as long as the user
// is in the source. A user who leaves the source is an orphan like any
// other, except that a deactivated one is not deactivated again (and so
// keeps the reason admin: it is not restored when it comes back).
func TestPlanSnapshotKeepsAdminChoice(t *testing.T) {
	off := edit(usr("u-1", "1", "ada"), inactive(reconcile.ReasonAdmin))
	on := edit(usr("u-2", "2", "bob"), func(u *reconcile.User) { u.StateReason = reconcile.ReasonAdmin })
	cy := usr("u-3", "3", "cy")
	snap := reconcile.Snapshot{Users: []reconcile.User{off, on, cy}}
	all := []sources.Record{rec(1, "1", "ada"), rec(2, "2", "bob"), rec(3, "3", "cy")}
	unchanged := reconcile.Plan{Records: 3, Total: 3, Counts: reconcile.Counts{Unchanged: 3}}

	runPlanCases(t, []planCase{
		{
			name:    "both stay as the operator set them while in the source",
			snap:    snap,
			records: all,
			want:    unchanged,
			empty:   true,
		},
		{
			name:    "with restore off too",
			snap:    snap,
			records: all,
			set:     []func(*reconcile.Settings){func(s *reconcile.Settings) { s.Restore = false }},
			want:    unchanged,
			empty:   true,
		},
		{
			name: "changed data is updated, active is not",
			snap: snap,
			records: []sources.Record{
				edit(all[0], func(r *sources.Record) { r.Email = "ada@example.com" }),
				edit(all[1], func(r *sources.Record) { r.Email = "bob@example.com" }),
				all[2],
			},
			want: reconcile.Plan{Records: 3, Total: 3, Counts: reconcile.Counts{Updated: 2, Unchanged: 1},
				Changes: []reconcile.Change{
					updated(1, off, edit(off, func(u *reconcile.User) { u.Email = "ada@example.com" }), "email"),
					updated(2, on, edit(on, func(u *reconcile.User) { u.Email = "bob@example.com" }), "email"),
				}},
		},
		{
			name: "the source cannot switch them: active=false on the activated, true on the deactivated",
			snap: snap,
			records: []sources.Record{
				edit(all[0], func(r *sources.Record) { r.Active = boolPtr(true) }),
				edit(all[1], func(r *sources.Record) { r.Active = boolPtr(false) }),
				all[2],
			},
			want:  unchanged,
			empty: true,
		},
		{
			name:    "a deactivated user absent from the source stays admin-deactivated, not an orphan",
			snap:    snap,
			records: all[1:],
			want:    reconcile.Plan{Records: 2, Total: 3, Counts: reconcile.Counts{Unchanged: 2}},
			empty:   true,
		},
		{
			name:    "with orphans: delete, a deactivated user who leaves the source is deleted like any orphan",
			snap:    snap,
			records: all[1:],
			set:     []func(*reconcile.Settings){orphans(reconcile.OrphansDelete)},
			want: reconcile.Plan{Records: 2, Total: 3, Counts: reconcile.Counts{Unchanged: 2, Deleted: 1},
				Changes: []reconcile.Change{deleted(off)}},
		},
		{
			name:    "an activated user who leaves the source is an orphan",
			snap:    snap,
			records: []sources.Record{all[0], all[2]},
			want: reconcile.Plan{Records: 2, Total: 3, Counts: reconcile.Counts{Unchanged: 2, Deactivated: 1},
				Changes: []reconcile.Change{deactivated(on)}},
		},
	})
}
