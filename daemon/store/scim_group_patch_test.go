package store_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestSCIMGroupPatchSemantics: a group PATCH applied as membership
// inserts and deletes keeps RFC 7644 §3.5.2 as the whole-group PATCH had
// it, on both stores: adding a member already there and removing one
// that is not (with a value) change nothing, a filter matching no member
// is noTarget, a PATCH that changes nothing (an add and a remove of one
// member included) keeps meta.version, one that writes no row records
// nothing in the outbox,
// unknown members, a group in itself and nesting cycles are refused and
// change nothing, If-Match holds, and requests that need the members'
// values are still applied.
func TestSCIMGroupPatchSemantics(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		e := newSCIMWriteEnv(t, s)
		anna, bob := e.idOf("anna"), e.idOf("bob")
		carla, _ := want(t, e.do("POST", "/scim/v2/Users", writeTok, entraCreate), http.StatusCreated, "", "")["id"].(string)
		team, _ := want(t, e.do("POST", "/scim/v2/Groups", writeTok,
			`{"displayName":"Team","members":[{"value":"`+anna+`"}]}`), http.StatusCreated, "", "")["id"].(string)
		leads, _ := want(t, e.do("POST", "/scim/v2/Groups", writeTok,
			`{"displayName":"Leads","members":[{"value":"`+team+`"}]}`), http.StatusCreated, "", "")["id"].(string)
		if err := s.RegisterSinks(ctx, []string{"wiki"}); err != nil {
			t.Fatal(err)
		}
		deliver(t, s, "wiki")
		add := func(ids ...string) string {
			var vs []string
			for _, id := range ids {
				vs = append(vs, `{"value":"`+id+`"}`)
			}
			return `{"op":"add","path":"members","value":[` + strings.Join(vs, ",") + `]}`
		}
		rmFilter := func(id string) string { return `{"op":"Remove","path":"members[value eq \"` + id + `\"]"}` }
		rmValue := func(id string) string { return `{"op":"remove","path":"members","value":[{"value":"` + id + `"}]}` }
		for _, step := range []struct {
			name, ops, ifMatch string
			status             int
			scimType, detail   string
			members            []string // stored after the step
			changed            bool
			// rewrites: rows were written and written back, so the outbox
			// (row triggers) names the group though the PATCH changed
			// nothing; a sink finds nothing to send.
			rewrites bool
		}{
			{"add a member", add(carla), "", 200, "", "", []string{anna, carla}, true, false},
			{"add a member already there", add(anna), "", 200, "", "", []string{anna, carla}, false, false},
			{"add a member already there, in upper case", add(strings.ToUpper(carla)), "", 200, "", "", []string{anna, carla}, false, false},
			{"remove a non-member with a value (Okta)", rmValue(bob), "", 200, "", "", []string{anna, carla}, false, false},
			{"remove a non-member through a filter", rmFilter(bob), "", 400, "noTarget", "matches no value", []string{anna, carla}, false, false},
			{"remove through a filter, in upper case", rmFilter(strings.ToUpper(carla)), "", 200, "", "", []string{anna}, true, false},
			{"the same displayName", `{"op":"replace","path":"displayName","value":"Team"}`, "", 200, "", "", []string{anna}, false, false},
			{"an unknown member", add(bob, "ghost"), "", 400, "invalidValue", "ghost", []string{anna}, false, false},
			{"a member of another type", `{"op":"add","path":"members","value":[{"value":"` + bob + `","type":"Group"}]}`, "", 400, "invalidValue", bob, []string{anna}, false, false},
			{"a member without value", `{"op":"add","path":"members","value":[{"type":"User"}]}`, "", 400, "invalidValue", "no value", []string{anna}, false, false},
			{"the group in itself", add(team), "", 400, "invalidValue", "itself", []string{anna}, false, false},
			{"a nesting cycle", add(leads), "", 400, "invalidValue", "cycle", []string{anna}, false, false},
			{"add and remove one member", add(bob) + "," + rmFilter(bob), "", 200, "", "", []string{anna}, false, true},
			{"remove and add back one member", rmValue(anna) + "," + add(anna), "", 200, "", "", []string{anna}, false, true},
			{"remove all and add back", `{"op":"remove","path":"members"}` + "," + add(anna), "", 200, "", "", []string{anna}, false, true},
			{"replace the members", `{"op":"replace","path":"members","value":[{"value":"` + bob + `"},{"value":"` + carla + `"}]}`, "", 200, "", "", []string{bob, carla}, true, false},
			{"replace the members by the same", `{"op":"replace","path":"members","value":[{"value":"` + carla + `"},{"value":"` + bob + `"}]}`, "", 200, "", "", []string{bob, carla}, false, false},
			{"remove every member", `{"op":"remove","path":"members"}`, "", 200, "", "", nil, true, false},
			{"remove every member of none", `{"op":"remove","path":"members"}`, "", 200, "", "", nil, false, false},
			{"path-less replace (Okta)", `{"op":"replace","value":{"id":"` + team + `","displayName":"Team 2","members":[{"value":"` + anna + `"}]}}`, "", 200, "", "", []string{anna}, true, false},
			{"a stale If-Match", add(bob), `W/"1"`, 412, "", "", []string{anna}, false, false},
			{"remove through a filter on type and value", add(carla) + `,{"op":"remove","path":"members[type eq \"User\" and value eq \"` + anna + `\"]"}`, "", 200, "", "", []string{carla}, true, false},
			{"remove through a filter on display, none", `{"op":"remove","path":"members[display eq \"nobody\"]"}`, "", 400, "noTarget", "matches no value", []string{carla}, false, false},
			{"remove through a filter on $ref", add(anna, leads) + `,{"op":"remove","path":"members[$ref ew \"/Groups/` + leads + `\" or display sw \"G1\"]"}`, "", 200, "", "", []string{carla}, false, true},
			{"replace through a filter (whole group)", `{"op":"replace","path":"members[value eq \"` + carla + `\"]","value":{"value":"` + anna + `"}}`, "", 200, "", "", []string{anna}, true, false},
		} {
			v := e.groupVersion(team)
			header := []string{}
			if step.ifMatch != "" {
				header = []string{"If-Match", step.ifMatch}
			}
			a := e.do("PATCH", "/scim/v2/Groups/"+team, writeTok, fmt.Sprintf(patchOp, step.ops), header...)
			if a.status != step.status {
				t.Fatalf("%s: status %d, want %d: %s", step.name, a.status, step.status, a.body)
			}
			m := want(t, a, step.status, step.scimType, step.detail)
			got := storedMembers(t, s, team)
			if !slices.Equal(got, sorted(step.members...)) {
				t.Errorf("%s: members %v, want %v", step.name, got, sorted(step.members...))
			}
			if step.status == 200 {
				if ids := memberIDs(m); !slices.Equal(ids, got) {
					t.Errorf("%s: answered members %v, stored %v", step.name, ids, got)
				}
				if meta, _ := m["meta"].(map[string]any); meta["version"] != fmt.Sprintf(`W/"%d"`, e.groupVersion(team)) || a.header.Get("ETag") != meta["version"] {
					t.Errorf("%s: meta %v, ETag %q", step.name, meta, a.header.Get("ETag"))
				}
			}
			if nv := e.groupVersion(team); (nv != v) != step.changed || step.changed && nv != v+1 {
				t.Errorf("%s: version %d → %d; changed %v", step.name, v, nv, step.changed)
			}
			if rec := deliver(t, s, "wiki"); rec["Group/"+team] != (step.changed || step.rewrites) {
				t.Errorf("%s: the outbox holds %v; want the group %v", step.name, rec, step.changed)
			}
		}
		// A current If-Match is a write like any other.
		a := e.do("PATCH", "/scim/v2/Groups/"+team, writeTok, fmt.Sprintf(patchOp, add(bob)), "If-Match", fmt.Sprintf(`W/"%d"`, e.groupVersion(team)))
		want(t, a, http.StatusOK, "", "")
		if !slices.Equal(storedMembers(t, s, team), sorted(anna, bob)) {
			t.Errorf("after a PATCH with a current If-Match: %v", storedMembers(t, s, team))
		}
	})
}
