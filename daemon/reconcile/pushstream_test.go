package reconcile_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources/push"
)

// TestPushStreamIsPlanPush: a user payload planned in parts of any size,
// each against the users its records name as the parts before left them
// (a directory in memory here, the store's transaction in roster), gives,
// part after part, the changes, memberships, pending memberships
// and owners of PlanPush's plan in its order, and the same counts,
// warnings and errors: applied in order, the parts do what the whole plan
// does. The payload updates, renames, restores, creates, deletes and
// adopts, moves users between departments that exist and that have not
// arrived, makes and unmakes owners, and runs into login conflicts with
// the snapshot, one of them freed by a record before it.
func TestPushStreamIsPlanPush(t *testing.T) {
	snap := func() *reconcile.DeltaSnapshot {
		tomb := usr("u-3", "3", "cyd")
		tomb.Active, tomb.State, tomb.StateReason = false, reconcile.StateDeleted, reconcile.ReasonSource
		ann := usr("u-1", "1", "ann")
		ann.Groups, ann.DepartmentUID, ann.Department, ann.Owns = []string{"d-1"}, "d-1", "One", []string{"d-1"}
		bob := usr("u-2", "2", "bob")
		bob.PendingGroups = []string{"d-9"}
		zed := other("o-1", "old-1", "zed")
		zed.Email = "zed@example.com"
		return &reconcile.DeltaSnapshot{
			Revision: rev,
			Users:    []reconcile.User{ann, bob, tomb, usr("u-4", "10", "gus"), usr("u-5", "14", "ivy")},
			Groups: []reconcile.Group{{ID: "g-1", ExternalID: "d-1", DisplayName: "One"},
				{ID: "g-2", ExternalID: "d-2", DisplayName: "Two"}},
			Pending: []reconcile.Pending{{DeptUID: "d-9", MemberID: "u-2"}},
			Foreign: map[string]string{"kim": "uid \"k\" of source \"other\""},
			Others:  []reconcile.User{zed},
		}
	}
	body := `{"dataType":"user","matchKey":"email","records":[
		{"uid":"1","username":"ann","email":"user1@example.com","departments":[{"uid":"d-2","isOwner":true},"d-8"]},
		{"uid":"2","username":"bob","email":"user2@example.com","departments":["d-1"]},
		{"uid":"3","username":"cyd","email":"user3@example.com"},
		{"uid":"4","username":"dan","email":"dan@example.com","departments":[{"uid":"d-1","isMain":true}]},
		{"uid":"5","username":"kim","email":"kim@example.com"},
		{"uid":"6","username":"zed2","email":"zed@example.com"},
		{"uid":"10","isDeleted":true,"email":"user10@example.com"},
		{"uid":"11","username":"gus","email":"gus@example.com"},
		{"uid":"13","username":"ivy","email":"ivy@example.com"},
		{"uid":"8","username":"eve","email":"eve@example.com","nickname":"Eve","departments":["d-9","d-2"]},
		{"uid":"9","email":"fay@example.com"}
	]}`
	for _, skip := range []bool{false, true} {
		for _, adopt := range []bool{false, true} {
			s := reconcile.DeltaSettings{OnDelete: reconcile.OnDeleteDelete, SkipConflicts: skip, Adopt: adopt}
			p, err := push.Decode([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			whole := reconcile.PlanPush(p, snap(), s, seq())
			if skip && whole.Counts.Skipped == 0 || !skip && len(whole.Errors) == 0 {
				t.Fatalf("the payload tests nothing: %+v", whole)
			}
			for _, size := range []int{1, 2, 3, 4, 7, len(p.Users)} {
				t.Run(fmt.Sprintf("skip=%v/adopt=%v/parts of %d", skip, adopt, size), func(t *testing.T) {
					dir := newDirectory(snap())
					ps := reconcile.NewPushParts(&reconcile.DeltaSnapshot{Revision: rev, Groups: snap().Groups}, s, seq())
					var got reconcile.Plan
					parts := 0
					for start := 0; start < len(p.Users); start += size {
						chunk := &push.Payload{DataType: p.DataType, MatchKey: p.MatchKey, Users: p.Users[start:min(start+size, len(p.Users))]}
						part := ps.Users(chunk, dir.read(chunk))
						dir.apply(part)
						parts++
						if part.Revision != rev || len(part.Errors) > 0 || len(part.Warnings) > 0 || part.Counts != (reconcile.Counts{}) {
							t.Errorf("part %d carries more than its changes: %+v", parts, part)
						}
						got.Changes = append(got.Changes, part.Changes...)
						got.MembershipAdds = append(got.MembershipAdds, part.MembershipAdds...)
						got.MembershipRemoves = append(got.MembershipRemoves, part.MembershipRemoves...)
						got.PendingAdds = append(got.PendingAdds, part.PendingAdds...)
						got.PendingRemoves = append(got.PendingRemoves, part.PendingRemoves...)
						got.OwnerAdds = append(got.OwnerAdds, part.OwnerAdds...)
						got.OwnerRemoves = append(got.OwnerRemoves, part.OwnerRemoves...)
					}
					sum := ps.Summary()
					// Total counts each part's users (see Summary); the
					// whole plan's snapshot holds every user at once.
					got.Revision, got.Counts, got.Records, got.Total = sum.Revision, sum.Counts, sum.Records, whole.Total
					got.Warnings, got.Errors = sum.Warnings, sum.Errors
					if diffs := diffPlan(&got, whole); len(diffs) > 0 {
						report(t, "the parts are not the whole plan", diffs)
					}
					if !reflect.DeepEqual(got.Changes, whole.Changes) {
						t.Errorf("changes differ in order or content:\n got %+v\nwant %+v", got.Changes, whole.Changes)
					}
				})
			}
		}
	}
}

// directory stands in for the store between the parts of a push: it holds
// the source's users, other sources' and the logins others hold, answers
// a part's look-ups as store.StreamTx.PushUsers does, and applies its
// changes.
type directory struct {
	own, others []reconcile.User
	foreign     map[string]string
}

func newDirectory(s *reconcile.DeltaSnapshot) *directory {
	return &directory{own: s.Users, others: s.Others, foreign: s.Foreign}
}

// read returns copies of the users the part's records name: the source's
// by uid, live login, e-mail or phone; others' by the matchKey's values;
// and the foreign holders of the logins the records and those users have.
func (d *directory) read(part *push.Payload) *reconcile.DeltaSnapshot {
	uids, logins, emails, phones := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range part.Users {
		uids[r.UID] = true
		if r.UserName != nil {
			logins[reconcile.Key(*r.UserName)] = true
		}
		if r.Email != nil && *r.Email != "" {
			emails[strings.ToLower(*r.Email)] = true
		}
		if r.Phone != nil && *r.Phone != "" {
			phones[*r.Phone] = true
		}
	}
	snap := &reconcile.DeltaSnapshot{Foreign: map[string]string{}}
	held := map[string]bool{}
	for k := range logins {
		held[k] = true
	}
	for k := range emails {
		held[k] = true
	}
	for _, u := range d.own {
		if uids[u.ExternalID] || u.State != reconcile.StateDeleted && logins[reconcile.Key(u.UserName)] ||
			emails[strings.ToLower(u.Email)] || phones[u.Phone] {
			snap.Users = append(snap.Users, u)
			held[reconcile.Key(u.UserName)] = true
		}
	}
	for _, u := range d.others {
		switch {
		case part.MatchKey == push.MatchUserName && logins[reconcile.Key(u.UserName)],
			part.MatchKey == push.MatchEmail && emails[strings.ToLower(u.Email)],
			part.MatchKey == push.MatchPhone && phones[u.Phone]:
			snap.Others = append(snap.Others, u)
		}
	}
	for k, holder := range d.foreign {
		if held[k] {
			snap.Foreign[k] = holder
		}
	}
	return snap
}

func (d *directory) apply(part *reconcile.Plan) {
	for _, c := range part.Changes {
		switch c.Action {
		case reconcile.Skip:
		case reconcile.Create:
			d.own = append(d.own, c.After)
		case reconcile.Adopt:
			d.others = slices.DeleteFunc(d.others, func(u reconcile.User) bool { return u.ID == c.After.ID })
			delete(d.foreign, reconcile.Key(c.Before.UserName))
			d.own = append(d.own, c.After)
		default:
			for i := range d.own {
				if d.own[i].ID == c.After.ID {
					d.own[i] = c.After
				}
			}
		}
	}
}
