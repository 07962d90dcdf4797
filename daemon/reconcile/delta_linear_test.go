package reconcile

import (
	"fmt"
	"testing"

	"github.com/rosterd/roster/sources/push"
)

// TestPlanPushWorkIsLinear: planning four times the records costs about
// four times the work, not sixteen, for every shape that was quadratic:
// chains in either order, deletions of many departments, many departments
// leaving the parent they wait for, deep moves in a stored tree, and a
// user with many departments. Work is counted in steps, not on a clock.
func TestPlanPushWorkIsLinear(t *testing.T) {
	str := func(s string) *string { return &s }
	uid := func(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
	dept := func(i int, id, title, parent string) push.Department {
		d := push.Department{Index: i, UID: id, Title: str(title)}
		if parent != "-" {
			d.ParentUID = str(parent)
		}
		return d
	}
	// chain is a stored chain of n departments under prefix, each under the one before.
	chain := func(snap *DeltaSnapshot, prefix string, n int) {
		for i := range n {
			g := Group{ID: "id-" + uid(prefix, i), ExternalID: uid(prefix, i), DisplayName: uid(prefix, i)}
			if i > 0 {
				g.Parent = uid(prefix, i-1)
			}
			snap.Groups = append(snap.Groups, g)
		}
	}
	cases := []struct {
		name string
		plan func(n int) (*push.Payload, *DeltaSnapshot)
	}{
		{"chain, parents first", func(n int) (*push.Payload, *DeltaSnapshot) {
			p := &push.Payload{DataType: push.DataDepartment}
			for i := range n {
				p.Departments = append(p.Departments, dept(i, uid("d", i), "D", uid("d", i-1)))
			}
			p.Departments[0].ParentUID = nil
			return p, &DeltaSnapshot{}
		}},
		{"chain, children first", func(n int) (*push.Payload, *DeltaSnapshot) {
			p := &push.Payload{DataType: push.DataDepartment}
			for i := range n {
				j := n - 1 - i
				p.Departments = append(p.Departments, dept(i, uid("d", j), uid("D", j), uid("d", j-1)))
			}
			return p, &DeltaSnapshot{}
		}},
		{"deletions", func(n int) (*push.Payload, *DeltaSnapshot) {
			snap := &DeltaSnapshot{}
			chain(snap, "d", n)
			p := &push.Payload{DataType: push.DataDepartment}
			for i := range n {
				p.Departments = append(p.Departments, push.Department{Index: i, UID: uid("d", i), IsDeleted: true})
			}
			return p, snap
		}},
		{"leaving a parent that has not come", func(n int) (*push.Payload, *DeltaSnapshot) {
			snap := &DeltaSnapshot{ParentPending: map[string]bool{}}
			p := &push.Payload{DataType: push.DataDepartment}
			for i := range n {
				snap.Groups = append(snap.Groups, Group{ID: "id-" + uid("d", i), ExternalID: uid("d", i), DisplayName: uid("d", i), Parent: "missing"})
				snap.ParentPending[uid("d", i)] = true
				snap.Pending = append(snap.Pending, Pending{DeptUID: "missing", MemberID: "id-" + uid("d", i), MemberType: MemberGroup})
				p.Departments = append(p.Departments, dept(i, uid("d", i), uid("d", i), ""))
			}
			return p, snap
		}},
		{"deep moves", func(n int) (*push.Payload, *DeltaSnapshot) {
			snap := &DeltaSnapshot{}
			chain(snap, "a", n)
			p := &push.Payload{DataType: push.DataDepartment}
			for i := range n {
				// b-i has a child, so that moving it could close a cycle.
				snap.Groups = append(snap.Groups, Group{ID: "id-" + uid("b", i), ExternalID: uid("b", i), DisplayName: uid("b", i)},
					Group{ID: "id-" + uid("c", i), ExternalID: uid("c", i), DisplayName: uid("c", i), Parent: uid("b", i)})
				p.Departments = append(p.Departments, dept(i, uid("b", i), uid("b", i), uid("a", i)))
			}
			return p, snap
		}},
		{"a user with many departments", func(n int) (*push.Payload, *DeltaSnapshot) {
			snap := &DeltaSnapshot{}
			u := User{ID: "id-u", ExternalID: "u", UserName: "u", Active: true, State: StateActive}
			var refs []push.DeptRef
			for i := range n {
				snap.Groups = append(snap.Groups, Group{ID: "id-" + uid("d", i), ExternalID: uid("d", i), DisplayName: uid("d", i)})
				u.Groups = append(u.Groups, uid("d", i))
				refs = append(refs, push.DeptRef{UID: uid("d", n-1-i)}, push.DeptRef{UID: uid("new", i)})
			}
			snap.Users = []User{u}
			return &push.Payload{DataType: push.DataUser, MatchKey: push.MatchUID, Users: []push.User{{UID: "u", Departments: refs}}}, snap
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			work := func(n int) int {
				p, snap := c.plan(n)
				d := planPush(p, snap, DeltaSettings{OnDelete: OnDeleteDeactivate}, seqID())
				if len(d.plan.Errors) > 0 {
					t.Fatalf("plan of %d records: %v", n, d.plan.Errors)
				}
				return d.work
			}
			small, large := work(1000), work(4000)
			if large > 5*small {
				t.Fatalf("work for 1,000 records: %d, for 4,000: %d (%.1f times, want about 4)", small, large, float64(large)/float64(max(small, 1)))
			}
		})
	}
}

func seqID() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("new-%d", n) }
}
