package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/push"
)

// On-delete policies of push sources.
const (
	OnDeleteDeactivate = "deactivate"
	OnDeleteDelete     = "delete"
)

// DeltaSettings are a push source's reconcile settings.
type DeltaSettings struct {
	// OnDelete is what isDeleted does to a user.
	OnDelete      string
	SkipConflicts bool
	// Adopt takes over the user of another source that a record's
	// matchKey finds (on_conflict: adopt), keeping its id; without it,
	// finding one is a conflict like a login held by another source.
	Adopt bool
	// Attributes are the configured custom attributes (see Settings).
	Attributes *attrs.Model
}

// DeltaSnapshot is the part of the directory a push can touch: the
// source's users the payload names (by uid, by its match key or by login),
// tombstones included, every department of the source, and the pending
// memberships of those users, of departments, and in the departments the
// payload names.
type DeltaSnapshot struct {
	Revision int64
	// Users carry, as Groups and PendingGroups, the uids of the
	// departments they are in or wait for.
	Users  []User
	Groups []Group
	// ParentPending holds the uids of departments whose Parent has not
	// arrived yet.
	ParentPending map[string]bool
	Pending       []Pending
	// Foreign maps login keys held by users of other sources to a
	// description of the holder, as in Snapshot.
	Foreign map[string]string
	// Others are the users of other sources (not deleted) that the
	// payload's matchKey values find: NocoBase's matchKey searches its one
	// users table (SPEC §3.3). Source is set, Groups are empty.
	Others []User
}

// PlanPush computes the plan of one pushed payload (SPEC §3.3, §4.3): each
// record is created, updated, restored or removed in the order given, and
// records not mentioned are left alone. Problems that need the directory,
// such as a login held by another user, end up in Plan.Errors (or, with
// SkipConflicts, as skipped records).
func PlanPush(p *push.Payload, snap *DeltaSnapshot, s DeltaSettings, newID func() string) *Plan {
	return planPush(p, snap, s, newID).plan
}

func planPush(p *push.Payload, snap *DeltaSnapshot, s DeltaSettings, newID func() string) *delta {
	d := newDelta(snap, s, newID)
	d.plan.Records = len(p.Users) + len(p.Departments)
	if p.DataType == push.DataDepartment {
		for i := range p.Departments {
			d.department(&p.Departments[i])
		}
		d.cycles()
	} else {
		for i := range p.Users {
			d.user(&p.Users[i], p.MatchKey)
		}
	}
	return d
}

// delta is the working state of a push plan: the snapshot as the records
// before the current one left it.
type delta struct {
	plan     *Plan
	settings DeltaSettings
	newID    func() string
	foreign  map[string]string

	byExt   map[string]*User
	byLogin map[string]*User // live users only
	byEmail map[string]*User
	byPhone map[string]*User
	// sharedBy counts, by matchKey and value, the users of other sources
	// that have that e-mail or phone number: more than one cannot be
	// taken over by one record.
	sharedBy map[[2]string]int

	groups        map[string]*Group // by uid
	uidOf         map[string]string // group id -> uid
	names         map[string]string // display name key -> uid
	parentPending map[string]bool
	// children lists, by uid, the departments that were given that parent;
	// an entry whose Parent changed since is stale and skipped.
	children map[string][]string
	pending  map[string][]Pending // by department uid
	// pendingAt is where each pending membership sits in pending: a
	// dropped one is blanked there (MemberID ""), so that dropping costs
	// the same however many wait for one department.
	pendingAt map[pendingKey]int
	// parentSet holds, by uid, where the records that gave a department
	// a new parent are and what they gave, for the cycle check once every
	// record is planned: a few words a department, not its record, so that
	// a department push planned in parts holds no record of the parts
	// before.
	parentSet map[string]parentRecord

	// reuse lets keep write a changed user's new state over its old one
	// in the snapshot (each PushParts part's snapshot is its own).
	reuse bool

	// work counts the steps of the loops whose length depends on the
	// payload or the directory, so that tests hold planning to linear
	// time without a clock.
	work int
}

type pendingKey struct{ dept, member string }

// parentRecord is the record that gave a department its parent: its index
// in the payload and the parent's uid.
type parentRecord struct {
	index  int
	parent string
}

func newDelta(snap *DeltaSnapshot, s DeltaSettings, newID func() string) *delta {
	d := &delta{
		plan:     &Plan{Revision: snap.Revision},
		settings: s, newID: newID,
		groups: map[string]*Group{}, uidOf: map[string]string{}, names: map[string]string{}, parentPending: map[string]bool{},
		children: map[string][]string{}, pending: map[string][]Pending{}, pendingAt: map[pendingKey]int{},
		parentSet: map[string]parentRecord{},
	}
	d.loadUsers(snap)
	for i := range snap.Groups {
		g := snap.Groups[i]
		d.groups[g.ExternalID] = &g
		d.uidOf[g.ID] = g.ExternalID
		d.names[Key(g.DisplayName)] = g.ExternalID
		if g.Parent != "" {
			d.children[g.Parent] = append(d.children[g.Parent], g.ExternalID)
		}
	}
	for uid := range snap.ParentPending {
		d.parentPending[uid] = true
	}
	for _, pm := range snap.Pending {
		d.addPending(pm)
	}
	return d
}

// loadUsers makes snap's users, those of other sources and the logins
// they hold what the records planned next find, in place of any loaded
// before: PushParts loads each part's users.
func (d *delta) loadUsers(snap *DeltaSnapshot) {
	d.foreign = maps.Clone(snap.Foreign)
	d.byExt, d.byLogin, d.byEmail, d.byPhone = map[string]*User{}, map[string]*User{}, map[string]*User{}, map[string]*User{}
	// Other sources' users first: where one of them shares an e-mail or a
	// phone number with a user of the source, the source's own is found.
	d.sharedBy = map[[2]string]int{}
	// The snapshot's users are indexed where they are, not copied: a
	// change copies the user it changes (after := *before), and nothing
	// writes through the index.
	for i := range snap.Others {
		u := &snap.Others[i]
		d.index(u)
		if u.Email != "" {
			d.sharedBy[[2]string{push.MatchEmail, strings.ToLower(u.Email)}]++
		}
		if u.Phone != "" {
			d.sharedBy[[2]string{push.MatchPhone, u.Phone}]++
		}
	}
	for i := range snap.Users {
		u := &snap.Users[i]
		d.index(u)
		if u.State != StateDeleted {
			d.plan.Total++
		}
	}
}

// addPending lets pm wait for its department, once.
func (d *delta) addPending(pm Pending) {
	k := pendingKey{pm.DeptUID, pm.MemberID}
	if _, ok := d.pendingAt[k]; ok {
		return
	}
	d.pendingAt[k] = len(d.pending[pm.DeptUID])
	d.pending[pm.DeptUID] = append(d.pending[pm.DeptUID], pm)
}

// dropPending forgets that member waits for the department uid.
func (d *delta) dropPending(uid, member string) {
	k := pendingKey{uid, member}
	if i, ok := d.pendingAt[k]; ok {
		d.pending[uid][i].MemberID = ""
		delete(d.pendingAt, k)
	}
}

// index makes u findable by every key it has now; a user of another
// source only by the keys matchKey searches.
func (d *delta) index(u *User) {
	if u.Source == "" {
		d.byExt[u.ExternalID] = u
	}
	if u.State != StateDeleted {
		d.byLogin[Key(u.UserName)] = u
	}
	if u.Email != "" {
		d.byEmail[strings.ToLower(u.Email)] = u
	}
	if u.Phone != "" {
		d.byPhone[u.Phone] = u
	}
}

// unindex forgets the keys u had before a change.
func (d *delta) unindex(u *User) {
	if d.byLogin[Key(u.UserName)] == u {
		delete(d.byLogin, Key(u.UserName))
	}
	if d.byEmail[strings.ToLower(u.Email)] == u {
		delete(d.byEmail, strings.ToLower(u.Email))
	}
	if d.byPhone[u.Phone] == u {
		delete(d.byPhone, u.Phone)
	}
}

// find returns the user a record updates: by its match key, else by uid.
// The match key may find a user of another source (User.Source set).
func (d *delta) find(r *push.User, matchKey string) *User {
	var u *User
	switch v := r.MatchValue(matchKey); matchKey {
	case push.MatchUserName:
		u = d.byLogin[Key(v)]
	case push.MatchEmail:
		u = d.byEmail[strings.ToLower(v)]
	case push.MatchPhone:
		u = d.byPhone[v]
	}
	if u == nil {
		u = d.byExt[r.UID]
	}
	return u
}

func (d *delta) fail(r *push.User, field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if d.settings.SkipConflicts {
		d.plan.Changes = append(d.plan.Changes, Change{Action: Skip, Line: r.Index + 1,
			After: User{ExternalID: r.UID, UserName: deref(r.UserName)}, Reason: msg})
		d.plan.Warnings = append(d.plan.Warnings, fmt.Sprintf("records[%d] (%s): %s; the record was skipped", r.Index, field, msg))
		d.plan.Counts.Skipped++
		return
	}
	d.plan.Errors = append(d.plan.Errors, sources.FieldError{Field: field,
		Message: fmt.Sprintf("records[%d] (%s): %s", r.Index, field, msg)})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (d *delta) user(r *push.User, matchKey string) {
	before := d.find(r, matchKey)
	if before != nil && before.Source != "" && r.IsDeleted {
		// isDeleted removes the source's own users only: another
		// source's user, even one it could adopt, is not its to remove.
		before = d.byExt[r.UID]
	}
	if r.IsDeleted {
		d.remove(r, before)
		return
	}
	adopt := before != nil && before.Source != ""
	if adopt {
		field := matchKey
		if field == push.MatchUserName {
			field = "username"
		}
		value := r.MatchValue(matchKey)
		shared := value
		if matchKey == push.MatchEmail {
			shared = strings.ToLower(value)
		}
		switch {
		case d.sharedBy[[2]string{matchKey, shared}] > 1:
			d.fail(r, field, "%s finds several users of other sources; matchKey must find one user to update",
				sources.QuoteMember(value))
			return
		case !d.settings.Adopt:
			d.fail(r, field, "%s finds a user of source %q (id %q); set on_conflict: adopt on the source to take such users over",
				sources.QuoteMember(value), before.Source, before.ExternalID)
			return
		case d.byExt[r.UID] != nil:
			d.fail(r, "uid", "%s belongs to another user of this source (%s) than the one of source %q its %s matches (%s), who is not adopted",
				sources.QuoteMember(r.UID), sources.QuoteMember(d.byExt[r.UID].UserName), before.Source, matchKey, sources.QuoteMember(before.UserName))
			return
		}
	}
	var after User
	if before != nil {
		after = *before
		if adopt {
			after.Source, after.DepartmentUID = "", ""
			after.Groups, after.PendingGroups = nil, nil
			// The login the user brings is the source's now.
			delete(d.foreign, Key(before.UserName))
		}
		if holder := d.byExt[r.UID]; holder != nil && holder.ID != before.ID {
			d.fail(r, "uid", "%s belongs to another user of this source (%s) than the one its %s matches (%s)",
				sources.QuoteMember(r.UID), sources.QuoteMember(holder.UserName), matchKey, sources.QuoteMember(before.UserName))
			return
		}
	} else {
		login := deref(r.UserName)
		if login == "" {
			login = deref(r.Email)
		}
		if login == "" {
			d.fail(r, "username", "is required to create a user (or an email to use as the login name)")
			return
		}
		after = User{ID: d.newID(), UserName: login, Active: true, State: StateActive}
	}
	after.ExternalID = r.UID
	if r.UserName != nil {
		after.UserName = *r.UserName
	}
	if r.NickName != nil {
		after.DisplayName = *r.NickName
	}
	if r.Email != nil {
		after.Email = *r.Email
	}
	if r.Phone != nil {
		after.Phone = *r.Phone
	}
	if len(r.Attributes) > 0 {
		mergeAttributes(&after, r.Attributes, d.settings.Attributes)
	}
	if after.DisplayName == "" {
		after.DisplayName = after.UserName
	}
	if before == nil || before.State == StateDeleted || Key(before.UserName) != Key(after.UserName) {
		if why := d.loginTaken(after.UserName, before); why != "" {
			d.fail(r, "username", "%s %s", sources.QuoteMember(after.UserName), why)
			return
		}
	}
	restore := before != nil && (before.State == StateDeleted ||
		before.State == StateInactive && (before.StateReason == ReasonSource || before.StateReason == ReasonOrphan))
	if restore {
		after.Active, after.State, after.StateReason = true, StateActive, ""
	}
	if r.Departments != nil {
		d.departments(&after, r)
	}

	c := Change{Line: r.Index + 1, Before: before}
	switch {
	case adopt:
		// The old owner's memberships are not the source's: what the
		// store leaves of them it removes with the adoption.
		adopted := *before
		adopted.Groups, adopted.PendingGroups = nil, nil
		c.Action, c.Fields = Adopt, changedFields(&adopted, &after)
		d.plan.Counts.Adopted++
	case before == nil:
		c.Action = Create
		d.plan.Counts.Created++
	case restore:
		c.Action = Restore
		d.plan.Counts.Restored++
	default:
		if c.Fields = changedFields(before, &after); len(c.Fields) == 0 {
			d.plan.Counts.Unchanged++
			return
		}
		c.Action = Update
		d.plan.Counts.Updated++
	}
	c.After = after
	d.keep(&c, before)
}

// keep records the change c of the user that was before (nil for a
// create) and makes the user findable by its new keys. With d.reuse the
// new state takes the place of the old in the snapshot, which the delta
// then owns, and c.Before becomes a copy of the old state, released with
// the part that holds c: a push planned in parts holds one copy of each
// user it changes, not two.
func (d *delta) keep(c *Change, before *User) {
	if before != nil {
		d.unindex(before)
	}
	if d.reuse && before != nil {
		old := *before
		c.Before = &old
		*before = c.After
		d.index(before)
	} else {
		after := c.After
		d.index(&after)
	}
	d.plan.Changes = append(d.plan.Changes, *c)
}

// loginTaken says why login may not be used by the user who had before,
// or "" when it is free.
func (d *delta) loginTaken(login string, before *User) string {
	k := Key(login)
	if holder, ok := d.foreign[k]; ok {
		return "is already used by " + holder
	}
	if holder := d.byLogin[k]; holder != nil && (before == nil || holder.ID != before.ID) {
		if holder.Source != "" {
			return fmt.Sprintf("is already used by a user of source %q (id %q)", holder.Source, holder.ExternalID)
		}
		return fmt.Sprintf("is already used by uid %q of this source", holder.ExternalID)
	}
	return ""
}

// remove applies isDeleted to a user: the source's on_delete.
func (d *delta) remove(r *push.User, before *User) {
	if before == nil || before.State == StateDeleted {
		d.plan.Counts.Unchanged++ // nothing to remove: a repeated push
		return
	}
	after := *before
	c := Change{Line: r.Index + 1, Before: before}
	switch {
	case d.settings.OnDelete == OnDeleteDelete:
		after.Active, after.State, after.StateReason = false, StateDeleted, ReasonSource
		after.Groups, after.PendingGroups = nil, nil
		for _, uid := range before.Owns {
			d.plan.OwnerRemoves = append(d.plan.OwnerRemoves, Pending{DeptUID: uid, MemberID: before.ID})
		}
		after.Owns = nil
		c.Action = Delete
		d.plan.Counts.Deleted++
	case before.State == StateActive:
		after.Active, after.State, after.StateReason = false, StateInactive, ReasonSource
		c.Action = Deactivate
		d.plan.Counts.Deactivated++
	default:
		d.plan.Counts.Unchanged++
		return
	}
	c.After = after
	d.keep(&c, before)
}

// departments makes the user's memberships the record's list: existing
// departments become memberships, others wait as pending ones.
func (d *delta) departments(u *User, r *push.User) {
	var member, waiting, owns []string
	for _, ref := range r.Departments {
		if ref.IsOwner {
			owns = append(owns, ref.UID)
		}
		if d.groups[ref.UID] != nil {
			member = append(member, ref.UID)
		} else {
			waiting = append(waiting, ref.UID)
		}
	}
	slices.Sort(member)
	slices.Sort(waiting)
	// Sets, not scans: a user's lists are compared in time linear in them.
	had, hadPending, has, hasPending := set(u.Groups), set(u.PendingGroups), set(member), set(waiting)
	d.work += 2 * (len(u.Groups) + len(u.PendingGroups) + len(member) + len(waiting))
	for _, uid := range member {
		if !had[uid] {
			d.plan.MembershipAdds = append(d.plan.MembershipAdds, Membership{GroupID: d.groups[uid].ID, UserID: u.ID})
		}
	}
	for _, uid := range u.Groups {
		if !has[uid] {
			d.plan.MembershipRemoves = append(d.plan.MembershipRemoves, Membership{GroupID: d.groups[uid].ID, UserID: u.ID})
		}
	}
	for _, uid := range waiting {
		if !hadPending[uid] {
			d.plan.PendingAdds = append(d.plan.PendingAdds, Pending{DeptUID: uid, MemberID: u.ID})
		}
	}
	for _, uid := range u.PendingGroups {
		if !hasPending[uid] {
			d.plan.PendingRemoves = append(d.plan.PendingRemoves, Pending{DeptUID: uid, MemberID: u.ID})
		}
	}
	u.Groups, u.PendingGroups = member, waiting
	slices.Sort(owns)
	owned, owning := set(u.Owns), set(owns)
	d.work += len(u.Owns) + len(owns)
	for _, uid := range owns {
		if !owned[uid] {
			d.plan.OwnerAdds = append(d.plan.OwnerAdds, Pending{DeptUID: uid, MemberID: u.ID})
		}
	}
	for _, uid := range u.Owns {
		if !owning[uid] {
			d.plan.OwnerRemoves = append(d.plan.OwnerRemoves, Pending{DeptUID: uid, MemberID: u.ID})
		}
	}
	u.Owns = owns
	u.DepartmentUID = r.MainDepartment()
	u.Department = ""
	if g := d.groups[u.DepartmentUID]; g != nil {
		u.Department = g.DisplayName
	}
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

func (d *delta) failDept(r *push.Department, field, format string, args ...any) {
	d.plan.Errors = append(d.plan.Errors, sources.FieldError{Field: field,
		Message: fmt.Sprintf("records[%d] (%s): %s", r.Index, field, fmt.Sprintf(format, args...))})
}

func (d *delta) department(r *push.Department) {
	g := d.groups[r.UID]
	if r.IsDeleted {
		if g == nil {
			d.plan.Counts.Unchanged++
			return
		}
		d.plan.GroupDeletes = append(d.plan.GroupDeletes, *g)
		d.plan.Counts.GroupsDeleted++
		delete(d.names, Key(g.DisplayName))
		delete(d.groups, r.UID)
		delete(d.uidOf, g.ID)
		// Its children wait for it again, as its members do (see the store).
		for _, uid := range d.children[r.UID] {
			d.work++
			if child := d.groups[uid]; child != nil && child.Parent == r.UID {
				d.parentPending[uid] = true
			}
		}
		return
	}
	created := g == nil
	if created {
		if r.Title == nil {
			d.failDept(r, "title", "is required to create a department")
			return
		}
		g = &Group{ID: d.newID(), ExternalID: r.UID}
	}
	changed := false
	if r.Title != nil && (created || *r.Title != g.DisplayName && !strings.HasPrefix(g.DisplayName, *r.Title+" (")) {
		name, ok := d.uniqueName(*r.Title, r.UID)
		if !ok {
			d.failDept(r, "title", "%q is already the name of another group of this source", *r.Title)
			return
		}
		if name != g.DisplayName {
			delete(d.names, Key(g.DisplayName))
			g.DisplayName = name
			d.names[Key(name)] = r.UID
			changed = true
		}
	}
	if r.ParentUID != nil && *r.ParentUID != g.Parent {
		d.setParent(r, g)
		changed = true
	}
	if created {
		d.groups[r.UID] = g
		d.uidOf[g.ID] = r.UID
		d.plan.GroupCreates = append(d.plan.GroupCreates, *g)
		d.plan.Counts.GroupsCreated++
		// Whoever waited for this department joins it now.
		for _, pm := range d.pending[r.UID] {
			d.work++
			if pm.MemberID == "" {
				continue // dropped
			}
			d.plan.PendingRemoves = append(d.plan.PendingRemoves, pm)
			d.plan.MembershipAdds = append(d.plan.MembershipAdds, Membership{GroupID: g.ID, UserID: pm.MemberID, MemberType: pm.MemberType})
			if pm.MemberType == MemberGroup {
				if uid, ok := d.uidOf[pm.MemberID]; ok {
					delete(d.parentPending, uid)
				}
			}
			delete(d.pendingAt, pendingKey{r.UID, pm.MemberID})
		}
		delete(d.pending, r.UID)
		return
	}
	if !changed {
		d.plan.Counts.Unchanged++
		return
	}
	d.plan.GroupRenames = append(d.plan.GroupRenames, *g)
	d.plan.Counts.GroupsUpdated++
}

// uniqueName is title, or "title (uid)" when another department of the
// source already has that name: group names are unique per source, and
// organisations have two "Sales" in different places.
func (d *delta) uniqueName(title, uid string) (string, bool) {
	if owner, taken := d.names[Key(title)]; !taken || owner == uid {
		return title, true
	}
	alt := title + " (" + uid + ")"
	if owner, taken := d.names[Key(alt)]; taken && owner != uid {
		return "", false
	}
	d.plan.Warnings = append(d.plan.Warnings, fmt.Sprintf("department %q is named %q: another department of the source is called %q", uid, alt, title))
	return alt, true
}

// setParent moves g under the record's parent: a membership when the
// parent exists, else a pending one. Whether that makes a department its
// own ancestor is checked once all records are planned (cycles): a walk up
// the tree for each record would cost the depth of the tree every time.
func (d *delta) setParent(r *push.Department, g *Group) {
	parent := *r.ParentUID
	if old := g.Parent; old != "" {
		if d.parentPending[r.UID] || d.groups[old] == nil {
			d.plan.PendingRemoves = append(d.plan.PendingRemoves, Pending{DeptUID: old, MemberID: g.ID, MemberType: MemberGroup})
			d.dropPending(old, g.ID)
		} else {
			d.plan.MembershipRemoves = append(d.plan.MembershipRemoves, Membership{GroupID: d.groups[old].ID, UserID: g.ID, MemberType: MemberGroup})
		}
	}
	delete(d.parentPending, r.UID)
	g.Parent = parent
	switch {
	case parent == "":
	case d.groups[parent] != nil:
		d.plan.MembershipAdds = append(d.plan.MembershipAdds, Membership{GroupID: d.groups[parent].ID, UserID: g.ID, MemberType: MemberGroup})
	default:
		pm := Pending{DeptUID: parent, MemberID: g.ID, MemberType: MemberGroup}
		d.plan.PendingAdds = append(d.plan.PendingAdds, pm)
		d.addPending(pm)
		d.parentPending[r.UID] = true
	}
	if parent != "" {
		d.children[parent] = append(d.children[parent], r.UID)
		d.parentSet[r.UID] = parentRecord{index: r.Index, parent: parent}
	}
}

// cycles refuses the parents that made a department its own ancestor
// through departments stored earlier (the payload's own cycles were
// refused when it was decoded). A department has one parent, so a cycle
// is found by one walk up from each department that stops where an
// earlier walk went: time linear in the source's departments, whatever
// the depth of the tree. Of each cycle, the record that closed it (the
// last of the payload's records on it) is named, as when the records are
// applied one after the other.
func (d *delta) cycles() {
	if len(d.parentSet) == 0 {
		return
	}
	walked := map[string]int{}
	walk := 0
	type closer struct {
		uid string
		parentRecord
	}
	var closers []closer
	for uid := range d.parentSet {
		walk++
		p := uid
		for d.groups[p] != nil && walked[p] == 0 {
			d.work++
			walked[p] = walk
			p = d.groups[p].Parent
		}
		if d.groups[p] == nil || walked[p] != walk {
			continue // the walk reached a root or an earlier walk
		}
		var last *closer
		for c := p; ; {
			d.work++
			if r, ok := d.parentSet[c]; ok && (last == nil || r.index > last.index) {
				last = &closer{c, r}
			}
			if c = d.groups[c].Parent; c == p {
				break
			}
		}
		if last != nil {
			closers = append(closers, *last)
		}
	}
	slices.SortFunc(closers, func(a, b closer) int { return a.index - b.index })
	for _, c := range closers {
		d.plan.Errors = append(d.plan.Errors, sources.FieldError{Field: "parentUid",
			Message: fmt.Sprintf("records[%d] (parentUid): %q would make department %q its own ancestor", c.index, c.parent, c.uid)})
	}
}

// mergeAttributes sets the attribute values of a pushed record on u: a
// push is a delta, so the attributes it does not name stay as they are,
// and an empty value unassigns its attribute.
func mergeAttributes(u *User, values []sources.Attribute, m *attrs.Model) {
	doc, err := attrs.Decode([]byte(u.Attrs))
	if err != nil {
		doc = attrs.Doc{} // the store hands the engine only documents it wrote
	}
	for i, a := range values {
		setAttribute(u, &doc, a, i > 0 && values[i-1].Path == a.Path, m)
	}
	u.Attrs, _ = doc.Encode()
}
