package reconcile_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources/push"
)

// TestPushStreamIsPlanPush: a user payload planned in parts of any size
// gives, part after part, the changes, memberships, pending memberships
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
					ps := reconcile.NewPushStream(p, snap(), s, seq())
					var got reconcile.Plan
					parts := 0
					for part := ps.Next(size); part != nil; part = ps.Next(size) {
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
					if want := (len(p.Users) + size - 1) / size; parts != want {
						t.Errorf("%d parts, want %d", parts, want)
					}
					sum := ps.Summary()
					got.Revision, got.Counts, got.Records, got.Total = sum.Revision, sum.Counts, sum.Records, sum.Total
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
