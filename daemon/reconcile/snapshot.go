package reconcile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/sources"
)

// Orphan policies of full snapshot sources (SPEC §4.2).
const (
	OrphansIgnore     = "ignore"
	OrphansDeactivate = "deactivate"
	OrphansDelete     = "delete"
)

// Settings are a full snapshot source's reconcile settings.
type Settings struct {
	Orphans     string
	ActivateNew bool
	Restore     bool
	// MaxRemovals gives the number of removals allowed for a source that
	// owns total users; nil allows any number.
	MaxRemovals func(total int) int
	AllowEmpty  bool
	// SkipConflicts skips records whose login another owner holds instead
	// of failing the task (on_conflict: skip).
	SkipConflicts bool
	// Adopt takes over, keeping its id, a user of another source whose
	// login a record has (on_conflict: adopt), instead of failing.
	Adopt bool
	// Force skips the safety valve once (sync --force, approve).
	Force bool
	// EmployeeNumberIsExternalID sets the enterprise employeeNumber to the
	// record's id, as the CSV source defines it.
	EmployeeNumberIsExternalID bool
	// Attributes are the configured custom attributes, which records'
	// attribute paths may name; nil when there are none.
	Attributes *attrs.Model
}

// Snapshot is what the directory holds for one source, read at Revision.
type Snapshot struct {
	Revision int64
	// Users are every user the source owns, tombstones included, with
	// their group keys.
	Users  []User
	Groups []Group
	// Nested are the memberships of the source's groups in its groups
	// (MemberType MemberGroup; UserID is the member group's id).
	Nested []Membership
	// Foreign maps the login keys of the incoming records that users of
	// other sources hold (not deleted) to a description of the holder.
	Foreign map[string]string
	// Adoptable holds, by login key, those holders themselves (with
	// Source set and no Groups), for a source that adopts.
	Adoptable map[string]User
}

// minRemovalsToHold is the number of removals that never trips the valve.
const minRemovalsToHold = 5

// PlanSnapshot computes the plan that makes the source's part of the
// directory equal to records. Records must already be valid on their own
// (unique ids and logins); problems that need the directory, such as a
// login held by another source, end up in Plan.Errors.
func PlanSnapshot(records []sources.Record, snap *Snapshot, s Settings, newID func() string) *Plan {
	return PlanSnapshotGroups(records, nil, snap, s, newID)
}

// Groups is what a source says of its groups beyond its records'
// memberships: every group's name (groups without users too) and which
// group is a member of which (an ldap source's nested groups). Nested
// must form no cycle.
type Groups struct {
	Names  []string
	Nested []Nesting
	// Partial says that the records are the users changed since an
	// earlier read, not every user: the users absent are no orphans, and
	// an empty read holds nothing. The groups are still all of them.
	Partial bool
}

// Nesting makes the group named Child a member of the group named Parent.
type Nesting struct {
	Child, Parent string
}

// PlanSnapshotGroups is PlanSnapshot for a source that also lists its
// groups and nests them (g may be nil), and whose records may name their
// manager (Record.Manager, the manager's ExternalID).
func PlanSnapshotGroups(records []sources.Record, g *Groups, snap *Snapshot, s Settings, newID func() string) *Plan {
	p := &Plan{Revision: snap.Revision, Records: len(records)}

	byExt := make(map[string]*User, len(snap.Users))
	byLogin := make(map[string]*User, len(snap.Users))
	for i := range snap.Users {
		u := &snap.Users[i]
		byExt[u.ExternalID] = u
		if u.State != StateDeleted {
			byLogin[Key(u.UserName)] = u
			p.Total++
		}
	}
	present := make(map[string]bool, len(records))
	creates, joins := 0, 0
	for i := range records {
		present[records[i].ExternalID] = true
		if byExt[records[i].ExternalID] == nil {
			creates++
			joins += len(records[i].Groups)
		}
	}
	// Every new user is a change and joins its groups: sized once, the
	// lists of a large first import are not copied as they grow (at a
	// million users each copy would hold hundreds of megabytes twice).
	p.Changes = make([]Change, 0, creates)
	p.MembershipAdds = make([]Membership, 0, joins)

	names := groupNames(records)
	if g != nil {
		names = append(names, g.Names...)
	}
	groups := planGroups(p, names, snap.Groups, s.Orphans != OrphansIgnore, newID)
	if g != nil {
		planNested(p, g.Nested, snap.Nested, groups)
	}
	ids := managerIDs(records, byExt, newID)
	if s.Adopt && ids.byExt != nil {
		// An adopted user keeps its id, which its reports name.
		for i := range records {
			if h, ok := snap.Adoptable[Key(records[i].UserName)]; ok && byExt[records[i].ExternalID] == nil {
				ext := records[i].ExternalID
				ids.byExt[ext] = h.ID
				delete(ids.fresh, ext)
			}
		}
	}

	// Orphans first: whether a login is free depends on who is deleted.
	isPresent := func(ext string) bool { return present[ext] }
	if g != nil && g.Partial {
		isPresent = func(string) bool { return true }
	}
	orphans, deleting := planOrphans(p, snap.Users, isPresent, s)

	conflicts := findConflicts(records, byExt, byLogin, snap.Foreign, present, deleting, s.Restore)
	for i := range records {
		r := &records[i]
		conflict, ok := conflicts[i]
		if ok && s.Adopt {
			if holder, found := snap.Adoptable[Key(r.UserName)]; found {
				if byExt[r.ExternalID] == nil {
					planAdopt(p, r, &holder, groups, s, ids.manager(r))
					continue
				}
				conflict += fmt.Sprintf(", who is not adopted because id %q already belongs to a user of this source", r.ExternalID)
			}
		}
		if ok {
			if !s.SkipConflicts {
				p.Errors = append(p.Errors, sources.NewFieldError(r.Line, 4, "login", "%s %s", sources.QuoteValue(r.UserName), conflict))
				continue
			}
			before := byExt[r.ExternalID]
			c := Change{Action: Skip, Line: r.Line, Reason: conflict}
			if before != nil {
				c.Before, c.After = before, *before
			} else {
				c.After = User{ExternalID: r.ExternalID, UserName: r.UserName}
			}
			p.Changes = append(p.Changes, c)
			p.Warnings = append(p.Warnings, fmt.Sprintf("line %d, column 4 (login): %s %s; the record was skipped", r.Line, sources.QuoteValue(r.UserName), conflict))
			p.Counts.Skipped++
			continue
		}
		planRecord(p, r, byExt[r.ExternalID], groups, s, ids.id(newID), ids.manager(r))
	}
	p.Changes = append(p.Changes, orphans...)

	if g != nil && g.Partial {
		// Only orphans and empty inputs trip the valve, and a changed-only
		// read has neither.
		return p
	}
	checkHold(p, s)
	return p
}

// planOrphans plans what happens to the users absent from the input (and
// not yet deleted) under the orphan policy, in external id order; deleting
// holds those deleted, whose logins become free.
func planOrphans(p *Plan, users []User, present func(ext string) bool, s Settings) (orphans []Change, deleting map[string]bool) {
	deleting = map[string]bool{}
	for i := range users {
		u := &users[i]
		if u.State == StateDeleted || present(u.ExternalID) {
			continue
		}
		switch {
		case s.Orphans == OrphansDelete:
			after := *u
			after.Active, after.State, after.StateReason = false, StateDeleted, ReasonOrphan
			after.Groups = nil
			orphans = append(orphans, Change{Action: Delete, Before: u, After: after})
			deleting[u.ExternalID] = true
			p.Counts.Deleted++
		case s.Orphans == OrphansDeactivate && u.State == StateActive:
			after := *u
			after.Active, after.State, after.StateReason = false, StateInactive, ReasonOrphan
			orphans = append(orphans, Change{Action: Deactivate, Before: u, After: after})
			p.Counts.Deactivated++
		}
	}
	slices.SortFunc(orphans, func(a, b Change) int { return strings.Compare(a.After.ExternalID, b.After.ExternalID) })
	return orphans, deleting
}

// checkHold sets p.Hold when the safety valve stops the plan: an empty
// input, or more removals than max_removals allows (and more than
// minRemovalsToHold).
func checkHold(p *Plan, s Settings) {
	if len(p.Errors) > 0 || s.Force {
		return
	}
	switch {
	case p.Records == 0 && !s.AllowEmpty:
		p.Hold = fmt.Sprintf("the snapshot has no records; applying it would treat all %d users of the source as orphans (set allow_empty: true if an empty source is expected)", p.Total)
	case overValve(p.Counts, p.Total, s):
		p.Hold = holdReason(p, s)
	}
}

// overValve reports whether counts weigh more than max_removals allows a
// source that owns total users: removals and adoptions together. A share
// is taken of the users the source owns once it adopted (a new source
// that takes over another's hundred users owns a hundred), so that
// max_removals: 100% lets a source replace another without a hold.
func overValve(c Counts, total int, s Settings) bool {
	return s.MaxRemovals != nil && c.Valved() > max(minRemovalsToHold, s.MaxRemovals(total+c.Adopted))
}

// holdReason says why a plan that weighs too much is held, naming the
// threshold that applies: max_removals of the users the source would own,
// or the removals that never trip the valve when that is more (a
// max_removals of 10% of 40 users allows 4, yet 5 pass).
func holdReason(p *Plan, s Settings) string {
	owned := p.Total + p.Counts.Adopted
	limit := s.MaxRemovals(owned)
	head := fmt.Sprintf("the plan would deactivate %d and delete %d of the source's %d users: %d removals", p.Counts.Deactivated, p.Counts.Deleted, p.Total, p.Removals())
	if p.Counts.Adopted > 0 {
		head = fmt.Sprintf("the plan would deactivate %d, delete %d and adopt %d users of other sources (the source would own %d): %d removals and adoptions",
			p.Counts.Deactivated, p.Counts.Deleted, p.Counts.Adopted, owned, p.Counts.Valved())
	}
	if limit >= minRemovalsToHold {
		return fmt.Sprintf("%s, more than the %d that max_removals allows", head, limit)
	}
	return fmt.Sprintf("%s, more than the %d that always pass (max_removals allows %d of %d users, but %d or fewer removals never hold a sync)",
		head, minRemovalsToHold, limit, owned, minRemovalsToHold)
}

// findConflicts returns, by record index, why a record may not have its
// login. A login is free when nobody holds it, when its holder is this
// record's own user, or when its holder is being deleted or takes another
// login in this plan. A holder whose record is skipped or not restored
// keeps its login, which can make further records conflict: hence the loop
// until nothing changes.
func findConflicts(records []sources.Record, byExt, byLogin map[string]*User, foreign map[string]string,
	present, deleting map[string]bool, restore bool) map[int]string {
	// keeps holds the users who keep their current login although they
	// are in the input.
	keeps := map[string]bool{}
	for i := range records {
		if u := byExt[records[i].ExternalID]; u != nil && !restore && u.State == StateInactive && u.StateReason == ReasonOrphan {
			keeps[u.ExternalID] = true
		}
	}
	conflicts := map[int]string{}
	for changed := true; changed; {
		changed = false
		for i := range records {
			r := &records[i]
			if _, done := conflicts[i]; done || keeps[r.ExternalID] {
				continue
			}
			lk := Key(r.UserName)
			why := ""
			if holder, ok := foreign[lk]; ok {
				why = "is already used by " + holder
			} else if holder := byLogin[lk]; holder != nil && holder.ExternalID != r.ExternalID && !deleting[holder.ExternalID] {
				switch {
				case !present[holder.ExternalID]:
					why = fmt.Sprintf("is already used by id %q of this source, who is no longer in the input but is kept (%s)", holder.ExternalID, holder.State)
				case keeps[holder.ExternalID]:
					why = fmt.Sprintf("is already used by id %q of this source, who keeps it in this sync", holder.ExternalID)
				}
			}
			if why != "" {
				conflicts[i] = why
				if u := byExt[r.ExternalID]; u != nil && u.State != StateDeleted {
					keeps[u.ExternalID] = true
				}
				changed = true
			}
		}
	}
	return conflicts
}

// planGroups plans the source's groups and returns their ids by key.
func planGroups(p *Plan, names []string, existing []Group, deleteOrphans bool, newID func() string) map[string]string {
	ids := make(map[string]string, len(existing))
	had := make(map[string]string, len(existing))
	for _, g := range existing {
		ids[Key(g.DisplayName)] = g.ID
		had[Key(g.DisplayName)] = g.DisplayName
	}
	wanted := map[string]bool{}
	for _, name := range names {
		k := Key(name)
		if wanted[k] {
			continue
		}
		wanted[k] = true
		switch id, ok := ids[k]; {
		case !ok:
			g := Group{ID: newID(), DisplayName: name}
			ids[k] = g.ID
			p.GroupCreates = append(p.GroupCreates, g)
		case had[k] != name:
			p.GroupRenames = append(p.GroupRenames, Group{ID: id, DisplayName: name})
		}
	}
	if deleteOrphans {
		for _, g := range existing {
			if !wanted[Key(g.DisplayName)] {
				p.GroupDeletes = append(p.GroupDeletes, g)
			}
		}
	}
	return ids
}

// groupNames lists the group names of records in order of first mention.
func groupNames(records []sources.Record) []string {
	var names []string
	seen := map[string]bool{}
	for i := range records {
		for _, g := range records[i].Groups {
			if !seen[g] {
				seen[g] = true
				names = append(names, g)
			}
		}
	}
	return names
}

// managers resolves the Manager of records to user ids. The ids of new
// users are chosen before they are planned, so that a report can name a
// manager created in the same plan.
type managers struct {
	byExt map[string]string
	fresh map[string]string // ExternalID → id chosen for a new user
}

func managerIDs(records []sources.Record, byExt map[string]*User, newID func() string) *managers {
	m := &managers{}
	for i := range records {
		if records[i].Manager == "" {
			continue
		}
		if m.byExt == nil {
			m.byExt = map[string]string{}
			m.fresh = map[string]string{}
			for ext, u := range byExt {
				m.byExt[ext] = u.ID
			}
			for j := range records {
				if ext := records[j].ExternalID; byExt[ext] == nil {
					id := newID()
					m.byExt[ext], m.fresh[ext] = id, id
				}
			}
		}
		break
	}
	return m
}

// manager is the id of r's manager, or "".
func (m *managers) manager(r *sources.Record) string {
	if r.Manager == "" || r.Manager == sources.KeepManager || m.byExt == nil || r.Manager == r.ExternalID {
		return ""
	}
	return m.byExt[r.Manager]
}

// id gives new users the id chosen for them.
func (m *managers) id(newID func() string) func(ext string) string {
	return func(ext string) string {
		if id, ok := m.fresh[ext]; ok {
			return id
		}
		return newID()
	}
}

// planNested plans the memberships of groups in groups: want by name,
// had by id.
func planNested(p *Plan, want []Nesting, had []Membership, ids map[string]string) {
	wanted := map[[2]string]bool{}
	for _, n := range want {
		child, okc := ids[Key(n.Child)]
		parent, okp := ids[Key(n.Parent)]
		if !okc || !okp || child == parent {
			continue
		}
		wanted[[2]string{parent, child}] = true
	}
	have := map[[2]string]bool{}
	for _, m := range had {
		k := [2]string{m.GroupID, m.UserID}
		have[k] = true
		if !wanted[k] {
			p.MembershipRemoves = append(p.MembershipRemoves, Membership{GroupID: m.GroupID, UserID: m.UserID, MemberType: MemberGroup})
		}
	}
	keys := make([][2]string, 0, len(wanted))
	for k := range wanted {
		if !have[k] {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+"|"+a[1], b[0]+"|"+b[1]) })
	for _, k := range keys {
		p.MembershipAdds = append(p.MembershipAdds, Membership{GroupID: k[0], UserID: k[1], MemberType: MemberGroup})
	}
}

// planAdopt plans a record that takes over holder, the user of another
// source that holds its login: the user keeps its id and becomes the
// source's, with the record's values. The old owner's reasons for an
// inactive user (an orphan, its own say-so) go with it; an operator's
// choice and a pending activation stay.
func planAdopt(p *Plan, r *sources.Record, holder *User, groups map[string]string, s Settings, manager string) {
	before := *holder
	before.Groups = nil // the old owner's groups are not the source's
	after := before
	after.Source = ""
	after.DepartmentUID = ""
	if before.StateReason == ReasonOrphan || before.StateReason == ReasonSource {
		after.Active, after.State, after.StateReason = true, StateActive, ""
	}
	planFields(&after, r, &before, s, manager)
	after.Department = fieldsOf(r, s).department
	if r.Active != nil && !*r.Active && after.StateReason != ReasonAdmin {
		after.Active, after.State, after.StateReason = false, StateInactive, ReasonSource
	}
	c := Change{Action: Adopt, Line: r.Line, Before: holder, After: after}
	c.Fields = changedFields(&before, &after)
	p.Changes = append(p.Changes, c)
	p.Counts.Adopted++
	for _, k := range after.Groups {
		p.MembershipAdds = append(p.MembershipAdds, Membership{GroupID: groups[k], UserID: after.ID})
	}
}

// planFields sets on after the values record r gives a user whose state
// before was (nil for a new one); manager is the id of its manager.
func planFields(after *User, r *sources.Record, before *User, s Settings, manager string) {
	after.ExternalID = r.ExternalID
	after.UserName = r.UserName
	after.GivenName = r.GivenName
	after.FamilyName = r.FamilyName
	f := fieldsOf(r, s)
	after.DisplayName, after.Email, after.Phone, after.Attrs = f.display, f.email, f.phone, f.attrs
	if f.emp != "" || s.EmployeeNumberIsExternalID {
		after.EmployeeNumber = f.emp
	}
	if f.department != "" || before == nil || before.DepartmentUID == "" {
		after.Department = f.department
	}
	after.Groups = groupKeys(r.Groups)
	if r.Manager != sources.KeepManager {
		after.Manager = manager
	}
	after.PasswordHash = ""
	if r.PasswordHash != "" && (before == nil || !before.HasPassword) {
		after.PasswordHash = r.PasswordHash
		after.HasPassword = true
	}
}

// planRecord plans one valid record whose login is free; newID gives a
// new user its id by ExternalID, and manager is the id of its manager.
func planRecord(p *Plan, r *sources.Record, before *User, groups map[string]string, s Settings, newID func(ext string) string, manager string) {
	after := User{State: StateActive, Active: true}
	if before != nil {
		after = *before
	}
	planFields(&after, r, before, s, manager)

	c := Change{Line: r.Line, Before: before}
	sourceSaysInactive := r.Active != nil && !*r.Active
	switch {
	case before == nil:
		c.Action = Create
		after.ID = newID(r.ExternalID)
		after.InitialPassword = r.InitialPassword
		setNewState(&after, s.ActivateNew, sourceSaysInactive)
		p.Counts.Created++
	case before.State == StateDeleted || (before.State == StateInactive && before.StateReason == ReasonOrphan):
		if !s.Restore {
			p.Changes = append(p.Changes, Change{Action: NotRestored, Line: r.Line, Before: before, After: *before})
			p.Counts.NotRestored++
			return
		}
		c.Action = Restore
		setNewState(&after, s.ActivateNew, sourceSaysInactive)
		p.Counts.Restored++
	default:
		// A source may switch off its own users, and on again those it
		// switched off; an operator's choice and pending users stay.
		switch {
		case sourceSaysInactive && before.Active && before.StateReason != ReasonAdmin:
			after.Active, after.State, after.StateReason = false, StateInactive, ReasonSource
		case r.Active != nil && *r.Active && !before.Active && before.StateReason == ReasonSource:
			after.Active, after.State, after.StateReason = true, StateActive, ""
		}
		c.Fields = changedFields(before, &after)
		if len(c.Fields) == 0 {
			p.Counts.Unchanged++
			return
		}
		c.Action = Update
		p.Counts.Updated++
	}
	c.After = after
	p.Changes = append(p.Changes, c)

	var had []string
	if before != nil && before.State != StateDeleted {
		had = before.Groups
	}
	for _, k := range after.Groups {
		if !slices.Contains(had, k) {
			p.MembershipAdds = append(p.MembershipAdds, Membership{GroupID: groups[k], UserID: after.ID})
		}
	}
	for _, k := range had {
		if !slices.Contains(after.Groups, k) {
			if id, ok := groups[k]; ok {
				p.MembershipRemoves = append(p.MembershipRemoves, Membership{GroupID: id, UserID: after.ID})
			}
		}
	}
}

// setNewState sets the state of a created or restored user.
func setNewState(u *User, activate, sourceSaysInactive bool) {
	u.Active, u.State, u.StateReason = true, StateActive, ""
	switch {
	case sourceSaysInactive:
		u.Active, u.State, u.StateReason = false, StateInactive, ReasonSource
	case !activate:
		u.Active, u.State, u.StateReason = false, StateInactive, ReasonPending
	}
}

func groupKeys(names []string) []string {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if k := Key(n); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// recordFields are the values a snapshot record gives its user beyond
// the ones it names itself: derived ones, and those its attribute values
// fill (SPEC §2.1).
type recordFields struct {
	display, email, phone, emp, department, attrs string
}

// fieldsOf works out a record's recordFields. Attribute paths were checked
// by the configuration; one that does not parse is left out.
func fieldsOf(r *sources.Record, s Settings) recordFields {
	u := User{DisplayName: strings.TrimSpace(r.GivenName + " " + r.FamilyName), Email: r.Email, Phone: r.Phone}
	if s.EmployeeNumberIsExternalID {
		u.EmployeeNumber = r.ExternalID
	}
	if len(r.Attributes) > 0 {
		var doc attrs.Doc
		for i, a := range r.Attributes {
			if a.Value != "" { // a snapshot's empty cell leaves the attribute unassigned
				setAttribute(&u, &doc, a, i > 0 && r.Attributes[i-1].Path == a.Path, s.Attributes)
			}
		}
		u.Attrs, _ = doc.Encode() // a Doc of strings always encodes
	}
	return recordFields{display: u.DisplayName, email: u.Email, phone: u.Phone, emp: u.EmployeeNumber,
		department: u.Department, attrs: u.Attrs}
}

// setAttribute gives u the value of one attribute path: a column of the
// user, or a place in its document doc ("" unassigns it there). more
// marks a further value of the path before it (sources.Attribute), which
// a multi-valued path adds to the ones before.
func setAttribute(u *User, doc *attrs.Doc, a sources.Attribute, more bool, m *attrs.Model) {
	p, err := m.Lookup(a.Path)
	if err != nil {
		return
	}
	switch p.Column {
	case attrs.DisplayName:
		u.DisplayName = a.Value
	case attrs.Email:
		u.Email = a.Value
	case attrs.Phone:
		u.Phone = a.Value
	case attrs.EmployeeNumber:
		u.EmployeeNumber = a.Value
	case attrs.Department:
		u.Department = a.Value
	default:
		if more && p.Multi() {
			p.Add(doc, a.Value)
			return
		}
		p.Unset(doc)
		p.Set(doc, a.Value)
	}
}

// changedFields names the attributes that differ between a and b.
func changedFields(a, b *User) []string {
	var f []string
	add := func(name string, changed bool) {
		if changed {
			f = append(f, name)
		}
	}
	add("userName", a.UserName != b.UserName)
	add("givenName", a.GivenName != b.GivenName)
	add("familyName", a.FamilyName != b.FamilyName)
	add("displayName", a.DisplayName != b.DisplayName)
	add("email", a.Email != b.Email)
	add("phone", a.Phone != b.Phone)
	add("externalId", a.ExternalID != b.ExternalID)
	add("employeeNumber", a.EmployeeNumber != b.EmployeeNumber)
	add("department", a.Department != b.Department)
	add("manager", a.Manager != b.Manager)
	add("attributes", a.Attrs != b.Attrs)
	add("active", a.Active != b.Active)
	add("password", b.PasswordHash != "")
	add("groups", !slices.Equal(a.Groups, b.Groups) || !slices.Equal(a.PendingGroups, b.PendingGroups))
	add("owns", !slices.Equal(a.Owns, b.Owns))
	return f
}
