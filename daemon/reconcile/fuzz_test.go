package reconcile_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources"
)

// fuzzBytes hands out the fuzz input one byte at a time, then zeros.
type fuzzBytes struct {
	b []byte
	i int
}

func (f *fuzzBytes) next() int {
	if f.i >= len(f.b) {
		return 0
	}
	v := f.b[f.i]
	f.i++
	return int(v)
}

func (f *fuzzBytes) pick(n int) int { return f.next() % n }

func (f *fuzzBytes) bit() bool { return f.next()&1 == 1 }

// Small pools, so that logins, ids and groups collide often.
var (
	fuzzLogins = []string{"ada", "ADA", "bob", "Bob", "carl", "dora", "eve", "fay", "gus", "hal"}
	fuzzGroups = []string{"Eng", "ENG", "eng", "Ops", "ops", "Dev", "Sales", "sales"}
	fuzzGiven  = []string{"Ada", "Bob", "", "Carl"}
	fuzzFamily = []string{"King", "Lee", "", "Moe"}
	fuzzEmails = []string{"", "a@example.com", "b@example.com"}
	fuzzStates = []struct{ state, reason string }{
		{reconcile.StateActive, ""},
		{reconcile.StateInactive, reconcile.ReasonOrphan},
		{reconcile.StateInactive, reconcile.ReasonAdmin},
		{reconcile.StateInactive, reconcile.ReasonPending},
		{reconcile.StateInactive, reconcile.ReasonSource},
		{reconcile.StateDeleted, reconcile.ReasonOrphan},
		{reconcile.StateActive, reconcile.ReasonAdmin},
	}
)

// fuzzCase builds a consistent snapshot (unique external ids, unique login
// keys among users that are not deleted, memberships only in the source's
// groups, foreign logins nobody of the source holds), valid records (unique
// ids and login keys) and settings from the fuzz input.
func fuzzCase(data []byte) (reconcile.Snapshot, []sources.Record, reconcile.Settings) {
	in := &fuzzBytes{b: data}
	var s reconcile.Settings
	s.Orphans = []string{reconcile.OrphansIgnore, reconcile.OrphansDeactivate, reconcile.OrphansDelete}[in.pick(3)]
	flags := in.next()
	s.ActivateNew = flags&1 != 0
	s.Restore = flags&2 != 0
	s.AllowEmpty = flags&4 != 0
	s.SkipConflicts = flags&8 != 0
	s.Force = flags&16 != 0
	s.EmployeeNumberIsExternalID = flags&32 != 0
	withActive := flags&64 != 0
	s.Adopt = flags&128 != 0
	switch in.pick(3) {
	case 1:
		s.MaxRemovals = percent(in.pick(101))
	case 2:
		s.MaxRemovals = limit(in.pick(10))
	}

	snap := reconcile.Snapshot{Revision: int64(in.next())}
	groupKeys := []string{}
	for _, name := range fuzzGroups {
		if k := reconcile.Key(name); in.pick(3) == 0 && !slices.Contains(groupKeys, k) {
			groupKeys = append(groupKeys, k)
			snap.Groups = append(snap.Groups, reconcile.Group{ID: "g-" + strconv.Itoa(len(snap.Groups)+1), DisplayName: name})
		}
	}

	exts := map[string]bool{}
	logins := map[string]bool{}
	for i, n := 0, in.pick(10); i < n; i++ {
		ext := strconv.Itoa(in.pick(12))
		l := fuzzLogins[in.pick(len(fuzzLogins))]
		st := fuzzStates[in.pick(len(fuzzStates))]
		if exts[ext] || (st.state != reconcile.StateDeleted && logins[reconcile.Key(l)]) {
			continue
		}
		exts[ext] = true
		if st.state != reconcile.StateDeleted {
			logins[reconcile.Key(l)] = true
		}
		u := reconcile.User{
			ID:          "u-" + strconv.Itoa(i+1),
			ExternalID:  ext,
			UserName:    l,
			GivenName:   fuzzGiven[in.pick(len(fuzzGiven))],
			FamilyName:  fuzzFamily[in.pick(len(fuzzFamily))],
			Email:       fuzzEmails[in.pick(len(fuzzEmails))],
			Active:      st.state == reconcile.StateActive,
			State:       st.state,
			StateReason: st.reason,
			HasPassword: in.bit(),
		}
		u.DisplayName = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
		if in.bit() {
			u.EmployeeNumber = ext
		}
		if st.state != reconcile.StateDeleted {
			mask := in.next()
			for j, k := range groupKeys {
				if mask&(1<<j) != 0 {
					u.Groups = append(u.Groups, k)
				}
			}
			slices.Sort(u.Groups)
		}
		snap.Users = append(snap.Users, u)
	}

	var records []sources.Record
	exts = map[string]bool{}
	recLogins := map[string]bool{}
	for i, n := 0, in.pick(10); i < n; i++ {
		ext := strconv.Itoa(in.pick(12))
		l := fuzzLogins[in.pick(len(fuzzLogins))]
		if exts[ext] || recLogins[reconcile.Key(l)] {
			continue
		}
		exts[ext] = true
		recLogins[reconcile.Key(l)] = true
		r := sources.Record{
			Line:       i + 1,
			ExternalID: ext,
			UserName:   l,
			GivenName:  fuzzGiven[in.pick(len(fuzzGiven))],
			FamilyName: fuzzFamily[in.pick(len(fuzzFamily))],
			Email:      fuzzEmails[in.pick(len(fuzzEmails))],
		}
		for range in.pick(4) {
			r.Groups = append(r.Groups, fuzzGroups[in.pick(len(fuzzGroups))])
		}
		if in.bit() {
			r.PasswordHash = "$hash-" + ext
		}
		if withActive {
			switch in.pick(3) {
			case 1:
				r.Active = boolPtr(true)
			case 2:
				r.Active = boolPtr(false)
			}
		}
		if in.pick(4) == 0 && !logins[reconcile.Key(l)] {
			if snap.Foreign == nil {
				snap.Foreign, snap.Adoptable = map[string]string{}, map[string]reconcile.User{}
			}
			snap.Foreign[reconcile.Key(l)] = `a user of source "other"`
			st := fuzzStates[in.pick(len(fuzzStates)-2)] // not deleted: tombstones hold no login
			if st.state == reconcile.StateDeleted {
				st = fuzzStates[0]
			}
			o := reconcile.User{ID: "o-" + strconv.Itoa(i+1), ExternalID: "x" + ext, UserName: strings.ToUpper(l), Source: "other",
				GivenName: fuzzGiven[in.pick(len(fuzzGiven))], Email: fuzzEmails[in.pick(len(fuzzEmails))],
				Active: st.state == reconcile.StateActive, State: st.state, StateReason: st.reason, HasPassword: in.bit()}
			snap.Adoptable[reconcile.Key(l)] = o
		}
		records = append(records, r)
	}
	return snap, records, s
}

// applyPlan simulates what the store makes of snap when it applies p, as
// the next sync's snapshot.
func applyPlan(snap *reconcile.Snapshot, p *reconcile.Plan) reconcile.Snapshot {
	out := reconcile.Snapshot{Revision: snap.Revision + 1, Foreign: maps.Clone(snap.Foreign), Adoptable: maps.Clone(snap.Adoptable)}
	for _, c := range p.Changes {
		if c.Action == reconcile.Adopt {
			delete(out.Foreign, reconcile.Key(c.Before.UserName))
			delete(out.Adoptable, reconcile.Key(c.Before.UserName))
		}
	}
	groups := map[string]reconcile.Group{}
	for _, g := range snap.Groups {
		groups[g.ID] = g
	}
	for _, g := range p.GroupCreates {
		groups[g.ID] = g
	}
	for _, g := range p.GroupRenames {
		groups[g.ID] = g
	}
	for _, g := range p.GroupDeletes {
		delete(groups, g.ID)
	}
	keys := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		out.Groups = append(out.Groups, groups[id])
		keys[reconcile.Key(groups[id].DisplayName)] = true
	}
	after := map[string]reconcile.User{}
	for _, c := range p.Changes {
		if c.Action != reconcile.Skip && c.Action != reconcile.NotRestored {
			after[c.After.ID] = c.After
		}
	}
	add := func(u reconcile.User) {
		if u.PasswordHash != "" {
			u.PasswordHash, u.HasPassword = "", true
		}
		var gs []string
		for _, k := range u.Groups {
			if keys[k] {
				gs = append(gs, k)
			}
		}
		u.Groups = gs
		out.Users = append(out.Users, u)
	}
	for _, u := range snap.Users {
		if a, ok := after[u.ID]; ok {
			u = a
			delete(after, u.ID)
		}
		add(u)
	}
	for _, c := range p.Changes {
		if _, ok := after[c.After.ID]; ok && (c.Action == reconcile.Create || c.Action == reconcile.Adopt) {
			add(c.After)
		}
	}
	return out
}

func FuzzPlanSnapshot(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01\x03\x01\x05\x07\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Add([]byte("\x02\x0b\x02\x03\x09\x00\x00\x00\x06\x00\x00\x01\x02\x03\x00\x01\x01\x01\x02\x02\x02\x01\x02\x00\x01"))
	f.Add([]byte("\x00\x7f\x00\x00\x01\x01\x01\x08\x01\x02\x00\x00\x00\x00\x01\x02\x02\x03\x05\x01\x01\x01\x01\x03\x01\x01"))
	f.Add([]byte("\x01\x43\x01\x32\x00\x02\x00\x00\x00\x00\x00\x00\x00\x09\x03\x04\x01\x01\x01\x01\x01\x01\x09\x03\x02\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, records, s := fuzzCase(data)
		before := cloneSnapshot(&snap)
		recordsBefore := cloneRecords(records)
		newID := seq()
		p := reconcile.PlanSnapshot(records, &snap, s, newID)

		var problems []string
		fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
		if !reflect.DeepEqual(&snap, before) || !reflect.DeepEqual(records, recordsBefore) {
			fail("PlanSnapshot modified its input")
		}
		checkPlanInvariants(&snap, records, s, p, fail)

		// No two users of the source end with one login.
		dup := false
		if len(p.Errors) == 0 {
			for k, ids := range finalLogins(&snap, p) {
				if len(ids) < 2 {
					continue
				}
				dup = true
				fail("users %v end with login key %q", ids, k)
			}
		}

		// Reconciling is idempotent: once the plan is applied, the same
		// input plans nothing.
		if len(problems) == 0 && !dup && len(p.Errors) == 0 {
			next := applyPlan(&snap, p)
			again := reconcile.PlanSnapshot(records, &next, s, newID)
			if !again.Empty() || again.Counts.Created+again.Counts.Updated+again.Counts.Restored+again.Removals() != 0 || len(again.Errors) != 0 {
				fail("the same input planned again after the plan was applied is not empty: counts %+v, changes %s, errors %v, groups +%v ~%v -%v, members +%v -%v",
					again.Counts, fmtChanges(again.Changes), again.Errors, again.GroupCreates, again.GroupRenames, again.GroupDeletes,
					again.MembershipAdds, again.MembershipRemoves)
			}
		}

		if len(problems) == 0 {
			return
		}
		t.Fatalf("settings %+v\nsnapshot %+v\nrecords %s\nplan changes %s\n%s",
			s, snap, fmtRecords(records), fmtChanges(p.Changes), strings.Join(problems, "\n"))
	})
}

func fmtRecords(rs []sources.Record) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		a := "nil"
		if r.Active != nil {
			a = strconv.FormatBool(*r.Active)
		}
		parts[i] = fmt.Sprintf("{line %d ext %q login %q groups %q hash %q active %s}", r.Line, r.ExternalID, r.UserName, r.Groups, r.PasswordHash, a)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// checkPlanInvariants reports what must hold for any plan.
func checkPlanInvariants(snap *reconcile.Snapshot, records []sources.Record, s reconcile.Settings, p *reconcile.Plan, fail func(string, ...any)) {
	if p.Revision != snap.Revision {
		fail("Revision = %d, want %d", p.Revision, snap.Revision)
	}
	if p.Records != len(records) {
		fail("Records = %d, want %d", p.Records, len(records))
	}
	total := 0
	known := map[string]bool{} // every id the directory holds
	byID := map[string]reconcile.User{}
	for _, u := range snap.Users {
		known[u.ID] = true
		byID[u.ID] = u
		if u.State != reconcile.StateDeleted {
			total++
		}
	}
	for _, g := range snap.Groups {
		known[g.ID] = true
	}
	if p.Total != total {
		fail("Total = %d, want %d", p.Total, total)
	}
	recByExt := map[string]sources.Record{}
	for _, r := range records {
		recByExt[r.ExternalID] = r
	}

	// Counts match the changes; every record is counted exactly once.
	n := map[reconcile.Action]int{}
	perRecord := 0
	seen := map[string]bool{}
	for _, c := range p.Changes {
		n[c.Action]++
		ext := c.After.ExternalID
		if seen[ext] {
			fail("two changes for external id %q", ext)
		}
		seen[ext] = true
		r, inRecords := recByExt[ext]
		switch c.Action {
		case reconcile.Create, reconcile.Update, reconcile.Restore, reconcile.NotRestored, reconcile.Skip:
			perRecord++
			if !inRecords || r.Line != c.Line {
				fail("%s change for %q on line %d matches no record", c.Action, ext, c.Line)
			}
		case reconcile.Adopt:
			perRecord++
			if !s.Adopt || !inRecords || r.Line != c.Line {
				fail("adopt change for %q on line %d without adopt or matching no record", ext, c.Line)
			}
		case reconcile.Deactivate, reconcile.Delete:
			if inRecords {
				fail("%s of %q, which is in the input", c.Action, ext)
			}
			if c.Before == nil || c.Before.State == reconcile.StateDeleted {
				fail("%s of a tombstone or of nobody: %s", c.Action, fmtChange(c))
			}
		default:
			fail("unknown action %q", c.Action)
		}
		switch {
		case c.Action == reconcile.Create:
			if c.Before != nil {
				fail("create with a Before: %s", fmtChange(c))
			}
			if c.After.ID == "" || known[c.After.ID] {
				fail("create with an id that is not fresh: %q", c.After.ID)
			}
			known[c.After.ID] = true
		case c.Action == reconcile.Adopt:
			holder, ok := snap.Adoptable[reconcile.Key(r.UserName)]
			if c.Before == nil || !ok || c.Before.ID != holder.ID || c.After.ID != holder.ID || c.After.Source != "" {
				fail("adopt does not take over the holder of the login with its id: %s", fmtChange(c))
			}
			for _, u := range snap.Users {
				if u.ExternalID == ext {
					fail("adopt for %q, which already has a user of the source: %s", ext, fmtChange(c))
				}
			}
			known[c.After.ID] = true
		case c.Action == reconcile.Skip && c.Before == nil:
			if _, exists := byID[c.After.ID]; c.After.ID != "" || exists {
				fail("skip of a new record with an id: %s", fmtChange(c))
			}
		default:
			if c.Before == nil || c.After.ID != c.Before.ID || byID[c.Before.ID].ExternalID != ext {
				fail("%s does not keep the user's id: %s", c.Action, fmtChange(c))
			}
		}
		if (c.Action == reconcile.Skip || c.Action == reconcile.NotRestored) && c.Before != nil && !reflect.DeepEqual(*c.Before, c.After) {
			fail("%s changes the user: %s", c.Action, fmtChange(c))
		}
		if c.Action == reconcile.Update && len(c.Fields) == 0 {
			fail("update without fields: %s", fmtChange(c))
		}
	}
	want := reconcile.Counts{
		Created:     n[reconcile.Create],
		Updated:     n[reconcile.Update],
		Unchanged:   len(records) - len(p.Errors) - perRecord,
		Deactivated: n[reconcile.Deactivate],
		Deleted:     n[reconcile.Delete],
		Restored:    n[reconcile.Restore],
		NotRestored: n[reconcile.NotRestored],
		Skipped:     n[reconcile.Skip],
		Adopted:     n[reconcile.Adopt],
	}
	if p.Counts != want {
		fail("Counts = %+v, want %+v from the changes", p.Counts, want)
	}
	if !s.SkipConflicts && p.Counts.Skipped != 0 || s.SkipConflicts && len(p.Errors) != 0 {
		fail("conflicts handled against on_conflict: %d skipped, errors %v", p.Counts.Skipped, p.Errors)
	}
	for _, e := range p.Errors {
		if e.Column != 4 || e.Field != "login" {
			fail("error not on column 4 (login): %+v", e)
		}
	}

	// Group ids are fresh too.
	for _, g := range p.GroupCreates {
		if g.ID == "" || known[g.ID] {
			fail("group create with an id that is not fresh: %+v", g)
		}
		known[g.ID] = true
	}

	// The valve.
	switch {
	case p.Hold != "" && (len(p.Errors) != 0 || s.Force):
		fail("held despite errors or force: %q", p.Hold)
	case p.Hold == "" && len(p.Errors) == 0 && !s.Force && len(records) == 0 && !s.AllowEmpty:
		fail("an empty snapshot is not held")
	case p.Hold != "" && !(len(records) == 0 && !s.AllowEmpty) && p.Counts.Valved() <= 5:
		fail("held with %d removals and adoptions: %q", p.Counts.Valved(), p.Hold)
	}

	if len(p.Errors) != 0 {
		return
	}
	// No user takes a login of another source.
	for _, c := range p.Changes {
		switch c.Action {
		case reconcile.Create, reconcile.Update, reconcile.Restore:
			if _, ok := snap.Foreign[reconcile.Key(c.After.UserName)]; ok {
				fail("%s takes login %q of another source", c.Action, c.After.UserName)
			}
		}
	}
	// Memberships name groups and users that exist after the plan.
	groupsAfter := map[string]bool{}
	for _, g := range snap.Groups {
		groupsAfter[g.ID] = true
	}
	for _, g := range p.GroupCreates {
		groupsAfter[g.ID] = true
	}
	for _, g := range p.GroupDeletes {
		delete(groupsAfter, g.ID)
	}
	for _, m := range p.MembershipAdds {
		if !groupsAfter[m.GroupID] || !known[m.UserID] {
			fail("membership of a missing group or user: %+v", m)
		}
	}
}
