package reconcile

import "github.com/rosterd/roster/sources/push"

// PushParts plans a pushed payload in parts, so that a large push is
// applied without its records, its plan or the users it names held all at
// once: each part is planned, applied (in one transaction with the
// others) and dropped before the next.
//
// A user payload's part is planned against the users its records name,
// read for that part from the transaction that applied the parts before
// (Users): the directory, not memory, carries what earlier parts did, so
// a login freed, taken or adopted by an earlier part is seen as PlanPush
// sees it. A department payload's parts are planned against the source's
// departments, which PushParts holds (departments are few next to users):
// its cycle check then runs over what each department's parent is, once
// every part is planned (Finish).
type PushParts struct {
	d *delta
}

// NewPushParts starts planning a payload against snap, which holds the
// source's revision and departments (Groups, ParentPending, and the
// departments' pending memberships); users come with each part.
func NewPushParts(snap *DeltaSnapshot, s DeltaSettings, newID func() string) *PushParts {
	d := newDelta(snap, s, newID)
	// Each part's snapshot is PushParts' own: a changed user's new state
	// takes the old one's place in it.
	d.reuse = true
	return &PushParts{d: d}
}

// Users plans the user records of part against users, the source's users
// (and others', and the logins they hold) that the part's records name as
// the parts before left them (see store.PushKeys), and returns the part's
// changes, memberships, pending memberships and owners. users becomes
// PushParts' own until the next part. Counts, warnings and errors are not
// in the part; Summary has them for every record planned so far.
func (pp *PushParts) Users(part *push.Payload, users *DeltaSnapshot) *Plan {
	d := pp.d
	d.loadUsers(users)
	d.plan.Records += len(part.Users)
	for i := range part.Users {
		d.user(&part.Users[i], part.MatchKey)
	}
	return pp.cut()
}

// Departments plans the department records of part, after adding pending,
// the memberships of users waiting for the part's departments, and
// returns the part's group creations, renames and deletions and their
// memberships and pending memberships. Whether a department became its
// own ancestor is known once every part is planned: see Finish.
func (pp *PushParts) Departments(part *push.Payload, pending []Pending) *Plan {
	d := pp.d
	for _, pm := range pending {
		d.addPending(pm)
	}
	d.plan.Records += len(part.Departments)
	for i := range part.Departments {
		d.department(&part.Departments[i])
	}
	return pp.cut()
}

// Finish runs the checks that need every record: a department payload's
// cycles through departments stored earlier. Its errors are the Summary's.
func (pp *PushParts) Finish() {
	pp.d.cycles()
}

// cut returns what was planned since the last part and leaves the
// summary's counts, warnings and errors.
func (pp *PushParts) cut() *Plan {
	p := pp.d.plan
	part := &Plan{Source: p.Source, Revision: p.Revision,
		Changes: p.Changes, GroupCreates: p.GroupCreates, GroupRenames: p.GroupRenames, GroupDeletes: p.GroupDeletes,
		MembershipAdds: p.MembershipAdds, MembershipRemoves: p.MembershipRemoves,
		PendingAdds: p.PendingAdds, PendingRemoves: p.PendingRemoves, OwnerAdds: p.OwnerAdds, OwnerRemoves: p.OwnerRemoves}
	p.Changes, p.GroupCreates, p.GroupRenames, p.GroupDeletes = nil, nil, nil, nil
	p.MembershipAdds, p.MembershipRemoves = nil, nil
	p.PendingAdds, p.PendingRemoves, p.OwnerAdds, p.OwnerRemoves = nil, nil, nil, nil
	return part
}

// Summary is the plan of the records planned so far without their
// changes: revision, counts, warnings and errors. A push with errors is
// applied in no part. Total counts the users each part read that were not
// deleted: a user named in two parts counts twice.
func (pp *PushParts) Summary() *Plan { return pp.d.plan }
