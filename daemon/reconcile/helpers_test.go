package reconcile_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources"
)

// rev is the revision every test snapshot is read at; plans must carry it.
const rev = 7

// seq returns a deterministic newID: new-1, new-2, ...
func seq() func() string {
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("new-%d", n)
	}
}

// rec is a valid record of person ext. Its names and e-mail derive from ext,
// so that rec and usr describe the same person.
func rec(line int, ext, login string, groups ...string) sources.Record {
	return sources.Record{
		Line:       line,
		ExternalID: ext,
		GivenName:  "Given" + ext,
		FamilyName: "Family" + ext,
		UserName:   login,
		Email:      "user" + ext + "@example.com",
		Groups:     groups,
	}
}

// usr is the active directory user that rec(_, ext, login, ...) creates,
// with the given group keys (already lower case and sorted).
func usr(id, ext, login string, groupKeys ...string) reconcile.User {
	return reconcile.User{
		ID:          id,
		ExternalID:  ext,
		UserName:    login,
		GivenName:   "Given" + ext,
		FamilyName:  "Family" + ext,
		DisplayName: "Given" + ext + " Family" + ext,
		Email:       "user" + ext + "@example.com",
		Active:      true,
		State:       reconcile.StateActive,
		Groups:      groupKeys,
	}
}

// edit returns a copy of v changed by fs.
func edit[T any](v T, fs ...func(*T)) T {
	for _, f := range fs {
		f(&v)
	}
	return v
}

func inactive(reason string) func(*reconcile.User) {
	return func(u *reconcile.User) {
		u.Active, u.State, u.StateReason = false, reconcile.StateInactive, reason
	}
}

// tombstone is the state of a user deleted as an orphan.
func tombstone(u *reconcile.User) {
	u.Active, u.State, u.StateReason = false, reconcile.StateDeleted, reconcile.ReasonOrphan
	u.Groups = nil
}

func active(u *reconcile.User) {
	u.Active, u.State, u.StateReason = true, reconcile.StateActive, ""
}

func login(l string) func(*reconcile.User) { return func(u *reconcile.User) { u.UserName = l } }

func groups(keys ...string) func(*reconcile.User) {
	return func(u *reconcile.User) { u.Groups = keys }
}

func hasPassword(u *reconcile.User) { u.HasPassword = true }

// percent is max_removals as a share, rounded down like config.Removals.
func percent(p int) func(int) int { return func(total int) int { return total * p / 100 } }

// limit is max_removals as an absolute number.
func limit(n int) func(int) int { return func(int) int { return n } }

// settings are the defaults of a csv source (SPEC §8) changed by fs.
func settings(fs ...func(*reconcile.Settings)) reconcile.Settings {
	s := reconcile.Settings{
		Orphans:     reconcile.OrphansDeactivate,
		ActivateNew: true,
		Restore:     true,
		MaxRemovals: percent(10),
	}
	for _, f := range fs {
		f(&s)
	}
	return s
}

func orphans(policy string) func(*reconcile.Settings) {
	return func(s *reconcile.Settings) { s.Orphans = policy }
}

// Change constructors for expected plans.

func created(line int, after reconcile.User) reconcile.Change {
	return reconcile.Change{Action: reconcile.Create, Line: line, After: after}
}

func updated(line int, before, after reconcile.User, fields ...string) reconcile.Change {
	return reconcile.Change{Action: reconcile.Update, Line: line, Before: &before, After: after, Fields: fields}
}

func restored(line int, before, after reconcile.User) reconcile.Change {
	return reconcile.Change{Action: reconcile.Restore, Line: line, Before: &before, After: after}
}

func notRestored(line int, before reconcile.User) reconcile.Change {
	return reconcile.Change{Action: reconcile.NotRestored, Line: line, Before: &before, After: before}
}

func deactivated(before reconcile.User) reconcile.Change {
	return reconcile.Change{Action: reconcile.Deactivate, Before: &before, After: edit(before, inactive(reconcile.ReasonOrphan))}
}

func deleted(before reconcile.User) reconcile.Change {
	return reconcile.Change{Action: reconcile.Delete, Before: &before, After: edit(before, tombstone)}
}

func skippedNew(line int, ext, login, reason string) reconcile.Change {
	return reconcile.Change{Action: reconcile.Skip, Line: line, After: reconcile.User{ExternalID: ext, UserName: login}, Reason: reason}
}

func skippedExisting(line int, before reconcile.User, reason string) reconcile.Change {
	return reconcile.Change{Action: reconcile.Skip, Line: line, Before: &before, After: before, Reason: reason}
}

// planCase is one table case: PlanSnapshot(records, snap, settings) must
// return want exactly (Revision is always rev).
type planCase struct {
	name    string
	snap    reconcile.Snapshot
	records []sources.Record
	set     []func(*reconcile.Settings)
	want    reconcile.Plan
	// empty is what Plan.Empty must say.
	empty bool
	// bug, when set, names a defect this case once showed.
	bug string
}

func runPlanCases(t *testing.T, cases []planCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := tc.snap
			snap.Revision = rev
			snapBefore := cloneSnapshot(&snap)
			recordsBefore := cloneRecords(tc.records)

			got := reconcile.PlanSnapshot(tc.records, &snap, settings(tc.set...), seq())

			want := tc.want
			want.Revision = rev
			diffs := diffPlan(got, &want)
			if e := got.Empty(); e != tc.empty {
				diffs = append(diffs, fmt.Sprintf("Empty() = %v, want %v", e, tc.empty))
			}
			if !reflect.DeepEqual(&snap, snapBefore) {
				diffs = append(diffs, "PlanSnapshot modified the snapshot")
			}
			if !reflect.DeepEqual(tc.records, recordsBefore) {
				diffs = append(diffs, "PlanSnapshot modified the records")
			}
			report(t, tc.bug, diffs)
		})
	}
}

// report fails t with diffs.
func report(t *testing.T, bug string, diffs []string) {
	t.Helper()
	if len(diffs) == 0 {
		return
	}
	if bug != "" {
		diffs = append([]string{"regression of a fixed bug: " + bug}, diffs...)
	}
	t.Error(strings.Join(diffs, "\n"))
}

func cloneSnapshot(s *reconcile.Snapshot) *reconcile.Snapshot {
	c := *s
	c.Users = slices.Clone(s.Users)
	for i := range c.Users {
		c.Users[i].Groups = slices.Clone(c.Users[i].Groups)
	}
	c.Groups = slices.Clone(s.Groups)
	c.Foreign = maps.Clone(s.Foreign)
	return &c
}

func cloneRecords(rs []sources.Record) []sources.Record {
	c := slices.Clone(rs)
	for i := range c {
		c[i].Groups = slices.Clone(c[i].Groups)
		if c[i].Active != nil {
			a := *c[i].Active
			c[i].Active = &a
		}
	}
	return c
}

// diffPlan lists how got differs from want. Empty and nil slices are equal
// (the JSON form omits both).
func diffPlan(got, want *reconcile.Plan) []string {
	var d []string
	eq := func(name string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			d = append(d, fmt.Sprintf("%s:\n\tgot  %+v\n\twant %+v", name, g, w))
		}
	}
	eq("Source", got.Source, want.Source)
	eq("Revision", got.Revision, want.Revision)
	eq("Records", got.Records, want.Records)
	eq("Total", got.Total, want.Total)
	eq("Counts", got.Counts, want.Counts)
	gc, wc := normChanges(got.Changes), normChanges(want.Changes)
	if len(gc) != len(wc) {
		d = append(d, fmt.Sprintf("Changes: got %d, want %d:\n\tgot  %s\n\twant %s",
			len(gc), len(wc), fmtChanges(gc), fmtChanges(wc)))
	} else {
		for i := range gc {
			if !reflect.DeepEqual(gc[i], wc[i]) {
				d = append(d, fmt.Sprintf("Changes[%d]:\n\tgot  %s\n\twant %s", i, fmtChange(gc[i]), fmtChange(wc[i])))
			}
		}
	}
	eq("GroupCreates", norm(got.GroupCreates), norm(want.GroupCreates))
	eq("GroupRenames", norm(got.GroupRenames), norm(want.GroupRenames))
	eq("GroupDeletes", norm(got.GroupDeletes), norm(want.GroupDeletes))
	eq("MembershipAdds", norm(got.MembershipAdds), norm(want.MembershipAdds))
	eq("MembershipRemoves", norm(got.MembershipRemoves), norm(want.MembershipRemoves))
	eq("Warnings", norm(got.Warnings), norm(want.Warnings))
	eq("Errors", norm(got.Errors), norm(want.Errors))
	eq("Hold", got.Hold, want.Hold)
	return d
}

func norm[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func normUser(u reconcile.User) reconcile.User {
	u.Groups = norm(u.Groups)
	return u
}

func normChanges(cs []reconcile.Change) []reconcile.Change {
	out := make([]reconcile.Change, len(cs))
	for i, c := range cs {
		if c.Before != nil {
			b := normUser(*c.Before)
			c.Before = &b
		}
		c.After = normUser(c.After)
		c.Fields = norm(c.Fields)
		out[i] = c
	}
	return out
}

func fmtChange(c reconcile.Change) string {
	before := "<nil>"
	if c.Before != nil {
		before = fmt.Sprintf("%+v", *c.Before)
	}
	return fmt.Sprintf("{%s line=%d fields=%v reason=%q\n\t\tbefore=%s\n\t\tafter= %+v}", c.Action, c.Line, c.Fields, c.Reason, before, c.After)
}

func fmtChanges(cs []reconcile.Change) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmtChange(c)
	}
	return "[" + strings.Join(parts, "\n\t     ") + "]"
}

func boolPtr(b bool) *bool { return &b }
