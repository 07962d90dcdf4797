package reconcile_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
)

func TestPlanEmpty(t *testing.T) {
	u := usr("u-1", "1", "ada")
	g := reconcile.Group{ID: "g-1", DisplayName: "Eng"}
	m := reconcile.Membership{GroupID: "g-1", UserID: "u-1"}
	cases := []struct {
		name string
		plan reconcile.Plan
		want bool
	}{
		{"nothing", reconcile.Plan{}, true},
		{"only counts", reconcile.Plan{Counts: reconcile.Counts{Unchanged: 3}}, true},
		{"skips and not restored", reconcile.Plan{Changes: []reconcile.Change{
			skippedNew(1, "1", "ada", "taken"), notRestored(2, u),
		}}, true},
		{"errors alone change nothing", reconcile.Plan{Errors: nil, Warnings: []string{"w"}}, true},
		{"create", reconcile.Plan{Changes: []reconcile.Change{created(1, u)}}, false},
		{"update", reconcile.Plan{Changes: []reconcile.Change{updated(1, u, u, "email")}}, false},
		{"restore", reconcile.Plan{Changes: []reconcile.Change{restored(1, u, u)}}, false},
		{"deactivate", reconcile.Plan{Changes: []reconcile.Change{deactivated(u)}}, false},
		{"delete", reconcile.Plan{Changes: []reconcile.Change{deleted(u)}}, false},
		{"a skip before a create", reconcile.Plan{Changes: []reconcile.Change{skippedNew(1, "1", "ada", "taken"), created(2, u)}}, false},
		{"group create", reconcile.Plan{GroupCreates: []reconcile.Group{g}}, false},
		{"group rename", reconcile.Plan{GroupRenames: []reconcile.Group{g}}, false},
		{"group delete", reconcile.Plan{GroupDeletes: []reconcile.Group{g}}, false},
		{"membership add", reconcile.Plan{MembershipAdds: []reconcile.Membership{m}}, false},
		{"membership remove", reconcile.Plan{MembershipRemoves: []reconcile.Membership{m}}, false},
		{"owner add", reconcile.Plan{OwnerAdds: []reconcile.Pending{{DeptUID: "d-1", MemberID: "u-1"}}}, false},
		{"owner remove", reconcile.Plan{OwnerRemoves: []reconcile.Pending{{DeptUID: "d-1", MemberID: "u-1"}}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.plan.Empty(); got != tc.want {
				t.Errorf("Empty() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPlanRemovals(t *testing.T) {
	cases := []struct {
		counts reconcile.Counts
		want   int
	}{
		{reconcile.Counts{}, 0},
		{reconcile.Counts{Deactivated: 2}, 2},
		{reconcile.Counts{Deleted: 3}, 3},
		{reconcile.Counts{Deactivated: 2, Deleted: 3, Created: 9, Updated: 9, Restored: 9, NotRestored: 9, Skipped: 9, Unchanged: 9}, 5},
	}
	for _, tc := range cases {
		p := reconcile.Plan{Counts: tc.counts}
		if got := p.Removals(); got != tc.want {
			t.Errorf("Removals() of %+v = %d, want %d", tc.counts, got, tc.want)
		}
	}
}

func TestKey(t *testing.T) {
	cases := []struct{ a, b string }{
		{"ada", "ADA"},
		{"Ada.Lovelace@Example.COM", "ada.lovelace@example.com"},
		{"ÄRGER", "ärger"},
	}
	for _, tc := range cases {
		if reconcile.Key(tc.a) != reconcile.Key(tc.b) {
			t.Errorf("Key(%q) = %q, Key(%q) = %q, want equal", tc.a, reconcile.Key(tc.a), tc.b, reconcile.Key(tc.b))
		}
	}
	if reconcile.Key("ada") == reconcile.Key("ada ") {
		t.Error(`Key("ada") equals Key("ada "); keys must not trim`)
	}
}

// TestCountsJSON pins the task counts to SPEC §8.1, with adopted (§4.4).
func TestCountsJSON(t *testing.T) {
	b, err := json.Marshal(reconcile.Counts{Created: 1, Updated: 2, Unchanged: 3, Deactivated: 4, Deleted: 5, Restored: 6, NotRestored: 7, Skipped: 8, Adopted: 9})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"created":1,"updated":2,"unchanged":3,"deactivated":4,"deleted":5,"restored":6,"not_restored":7,"skipped":8,"adopted":9}`
	if string(b) != want {
		t.Errorf("Counts JSON = %s, want %s", b, want)
	}
}

// TestPlanJSONHasNoPassword checks that a plan, which is printed by dry runs
// and stored for held tasks, never carries a password hash (SPEC §2).
func TestPlanJSONHasNoPassword(t *testing.T) {
	u := edit(usr("u-1", "1", "ada"), func(u *reconcile.User) { u.PasswordHash, u.HasPassword = "$argon2id$secret-hash", true })
	p := reconcile.Plan{Changes: []reconcile.Change{created(1, u), updated(2, u, u, "password")}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"secret-hash", "argon2id", "PasswordHash", "passwordHash", "hasPassword"} {
		if strings.Contains(string(b), s) {
			t.Errorf("plan JSON contains %q: %s", s, b)
		}
	}
}
