package reconcile

import "github.com/rosterd/roster/sources/push"

// PushStream plans a user payload in parts, so that a large push is
// applied without its whole plan in memory: each part holds the changes of
// the next records only, and is applied (in one transaction with the
// others) before the next is planned. The records are planned in order
// against the state the records before them left, as PlanPush plans
// them, so the parts applied in order do what PlanPush's plan does. A
// department payload is planned whole (PlanPush): its cycle check needs
// every record first, and departments are few.
type PushStream struct {
	d        *delta
	users    []push.User
	matchKey string
	next     int
}

// NewPushStream starts planning the user payload p against snap. snap
// becomes the stream's own: the users it changes take their new state in
// snap's Users (and Others, when adopted), so that a large push holds each
// user once; the caller must not read them afterwards.
func NewPushStream(p *push.Payload, snap *DeltaSnapshot, s DeltaSettings, newID func() string) *PushStream {
	d := newDelta(snap, s, newID)
	d.reuse = true
	d.plan.Records = len(p.Users)
	return &PushStream{d: d, users: p.Users, matchKey: p.MatchKey}
}

// Next plans up to n more records and returns their part of the plan:
// its changes, memberships, pending memberships and owners. It returns nil
// once every record is planned. Counts, warnings and errors are not in the
// parts; Summary has them for every record planned so far.
func (ps *PushStream) Next(n int) *Plan {
	if ps.next >= len(ps.users) {
		return nil
	}
	end := min(ps.next+max(n, 1), len(ps.users))
	for i := ps.next; i < end; i++ {
		ps.d.user(&ps.users[i], ps.matchKey)
	}
	ps.next = end
	p := ps.d.plan
	part := &Plan{Source: p.Source, Revision: p.Revision,
		Changes: p.Changes, MembershipAdds: p.MembershipAdds, MembershipRemoves: p.MembershipRemoves,
		PendingAdds: p.PendingAdds, PendingRemoves: p.PendingRemoves, OwnerAdds: p.OwnerAdds, OwnerRemoves: p.OwnerRemoves}
	p.Changes, p.MembershipAdds, p.MembershipRemoves = nil, nil, nil
	p.PendingAdds, p.PendingRemoves, p.OwnerAdds, p.OwnerRemoves = nil, nil, nil, nil
	return part
}

// Summary is the plan of the records planned so far without its changes:
// revision, counts, warnings and errors. A push with errors is applied
// in no part.
func (ps *PushStream) Summary() *Plan { return ps.d.plan }
