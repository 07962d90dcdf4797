package reconcile

import (
	"slices"
	"testing"

	"github.com/rosterd/roster/sources/push"
)

// TestPlanPushOwners: isOwner makes a user an owner of a department, also
// of one that has not arrived; the user's next list of departments says
// which ownerships stay; deleting the user ends them; a user record that
// names no departments leaves them.
func TestPlanPushOwners(t *testing.T) {
	str := func(s string) *string { return &s }
	stored := func(owns ...string) *DeltaSnapshot {
		return &DeltaSnapshot{
			Groups: []Group{{ID: "g-1", ExternalID: "d-1", DisplayName: "One"}},
			Users: []User{{ID: "u-1", ExternalID: "1", UserName: "ada", DisplayName: "ada", Active: true, State: StateActive,
				Groups: []string{"d-1"}, DepartmentUID: "d-1", Department: "One", Owns: owns}},
		}
	}
	user := func(deps ...push.DeptRef) push.User {
		return push.User{UID: "1", UserName: str("ada"), Departments: deps}
	}
	pairs := func(ps []Pending) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.MemberID+">"+p.DeptUID)
		}
		return out
	}
	cases := []struct {
		name          string
		snap          *DeltaSnapshot
		rec           push.User
		onDelete      string
		adds, removes []string
		updated       int
	}{
		{"owner of a department and of one not arrived", stored(),
			user(push.DeptRef{UID: "d-1", IsOwner: true}, push.DeptRef{UID: "d-9", IsOwner: true}), "",
			[]string{"u-1>d-1", "u-1>d-9"}, nil, 1},
		{"the same again changes nothing", stored("d-1"), user(push.DeptRef{UID: "d-1", IsOwner: true}), "", nil, nil, 0},
		{"no longer owner, still a member", stored("d-1"), user(push.DeptRef{UID: "d-1"}), "", nil, []string{"u-1>d-1"}, 1},
		{"departments not named: ownership stays", stored("d-1"), push.User{UID: "1", NickName: str("Ada")}, "", nil, nil, 1},
		{"deleted", stored("d-1", "d-9"), push.User{UID: "1", IsDeleted: true}, OnDeleteDelete, nil, []string{"u-1>d-1", "u-1>d-9"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &push.Payload{DataType: push.DataUser, MatchKey: push.MatchUID, Users: []push.User{c.rec}}
			plan := PlanPush(p, c.snap, DeltaSettings{OnDelete: c.onDelete}, seqID())
			if len(plan.Errors) > 0 {
				t.Fatalf("errors: %+v", plan.Errors)
			}
			if got := pairs(plan.OwnerAdds); !slices.Equal(got, c.adds) {
				t.Errorf("owner adds %v, want %v", got, c.adds)
			}
			if got := pairs(plan.OwnerRemoves); !slices.Equal(got, c.removes) {
				t.Errorf("owner removes %v, want %v", got, c.removes)
			}
			if plan.Counts.Updated != c.updated {
				t.Errorf("updated %d, want %d: %+v", plan.Counts.Updated, c.updated, plan.Counts)
			}
		})
	}
}
