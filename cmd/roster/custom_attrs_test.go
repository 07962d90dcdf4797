package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store/storetest"
)

// customAttrsURN is the extension schema TestServeCustomAttributes
// declares: not the default one, so that the URN is seen to come from the
// configuration.
const customAttrsURN = "urn:example:params:scim:schemas:extension:acme:2.0:User"

// TestServeCustomAttributes goes from the configuration to SCIM through
// `roster serve` on both stores: attributes.custom_schema and
// attributes.custom (a string, an integer and a multi-valued string) are
// published in /Schemas and /ResourceTypes, and a user's custom values are
// written by POST, changed by PATCH with the URN path, filtered on and
// checked by their declared type.
func TestServeCustomAttributes(t *testing.T) {
	const core = "urn:ietf:params:scim:schemas:core:2.0:User"
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			h := startHostileWith(t, driver, "attributes:\n  custom_schema: "+customAttrsURN+"\n  custom:\n"+
				"    - {name: costCentreCode, type: string}\n"+
				"    - {name: floor, type: integer}\n"+
				"    - {name: badges, type: string, multi_valued: true, case_exact: true}\n")
			scimHdr := map[string]string{"Content-Type": "application/scim+json"}
			object := func(what string, r reply, code int) map[string]any {
				t.Helper()
				var m map[string]any
				if r.code != code || json.Unmarshal(r.body, &m) != nil {
					t.Fatalf("%s: got %s, want %d and a JSON object", what, r, code)
				}
				return m
			}

			// /Schemas lists the extension after the enterprise one, with
			// the declared attributes as declared.
			list := object("GET /Schemas", h.do(t, "GET", "/scim/v2/Schemas", hTokRead, nil, nil), 200)
			var ids []string
			var listed map[string]any
			for _, r := range list["Resources"].([]any) {
				m := r.(map[string]any)
				ids = append(ids, m["id"].(string))
				if m["id"] == customAttrsURN {
					listed = m
				}
			}
			ent := slices.Index(ids, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
			if i := slices.Index(ids, customAttrsURN); i < 0 || ent < 0 || i < ent {
				t.Fatalf("/Schemas ids %v: the custom schema must follow the enterprise one", ids)
			}
			one := object("GET /Schemas/<urn>", h.do(t, "GET", "/scim/v2/Schemas/"+customAttrsURN, hTokRead, nil, nil), 200)
			if !reflect.DeepEqual(one["attributes"], listed["attributes"]) || one["id"] != customAttrsURN {
				t.Errorf("/Schemas/%s differs from its entry in /Schemas:\n%v\n%v", customAttrsURN, one, listed)
			}
			want := []struct {
				name, typ        string
				multi, caseExact bool
			}{{"costCentreCode", "string", false, false}, {"floor", "integer", false, false}, {"badges", "string", true, true}}
			attrs, _ := one["attributes"].([]any)
			if len(attrs) != len(want) {
				t.Fatalf("/Schemas/%s: %d attributes, want %d: %v", customAttrsURN, len(attrs), len(want), attrs)
			}
			for i, w := range want {
				a := attrs[i].(map[string]any)
				if a["name"] != w.name || a["type"] != w.typ || a["multiValued"] != w.multi || a["required"] != false ||
					a["mutability"] != "readWrite" || a["returned"] != "default" || a["uniqueness"] != "none" ||
					(w.typ == "string" && a["caseExact"] != w.caseExact) {
					t.Errorf("/Schemas/%s attribute %d: %v, want %+v", customAttrsURN, i, a, w)
				}
			}
			rt := object("GET /ResourceTypes/User", h.do(t, "GET", "/scim/v2/ResourceTypes/User", hTokRead, nil, nil), 200)
			found := false
			for _, e := range rt["schemaExtensions"].([]any) {
				if m := e.(map[string]any); m["schema"] == customAttrsURN {
					found = m["required"] == false
				}
			}
			if !found {
				t.Errorf("/ResourceTypes/User does not name %s as an optional extension: %v", customAttrsURN, rt["schemaExtensions"])
			}

			// POST with custom values; a value of the wrong type is refused.
			created := object("POST", h.do(t, "POST", "/scim/v2/Users", hTokWrite, fmt.Sprintf(`{"schemas":[%q,%q],"userName":"cara",
				%q:{"costCentreCode":"CC-7","floor":3,"badges":["b1","b2"]}}`, core, customAttrsURN, customAttrsURN), scimHdr), 201)
			id := created["id"].(string)
			if !slices.Contains(created["schemas"].([]any), any(customAttrsURN)) ||
				!reflect.DeepEqual(created[customAttrsURN], map[string]any{"costCentreCode": "CC-7", "floor": 3.0, "badges": []any{"b1", "b2"}}) {
				t.Errorf("POST answered %v", created)
			}
			scimErr(t, "POST with floor a string", h.do(t, "POST", "/scim/v2/Users", hTokWrite,
				fmt.Sprintf(`{"userName":"dov",%q:{"floor":"third"}}`, customAttrsURN), scimHdr), 400, "invalidValue")

			// PATCH by the URN path.
			patched := object("PATCH", h.do(t, "PATCH", "/scim/v2/Users/"+id, hTokWrite, fmt.Sprintf(
				`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
				{"op":"replace","path":"%[1]s:floor","value":5},
				{"op":"add","path":"%[1]s:badges","value":["b3"]},
				{"op":"remove","path":"%[1]s:costCentreCode"}]}`, customAttrsURN), scimHdr), 200)
			wantAfter := map[string]any{"floor": 5.0, "badges": []any{"b1", "b2", "b3"}}
			if !reflect.DeepEqual(patched[customAttrsURN], wantAfter) {
				t.Errorf("after PATCH: %v, want %v", patched[customAttrsURN], wantAfter)
			}
			got := object("GET", h.do(t, "GET", "/scim/v2/Users/"+id, hTokRead, nil, nil), 200)
			if !reflect.DeepEqual(got[customAttrsURN], wantAfter) {
				t.Errorf("GET after PATCH: %v, want %v", got[customAttrsURN], wantAfter)
			}

			// Filters, by the URN path and the bare name.
			for f, n := range map[string]int{
				customAttrsURN + ":floor eq 5": 1, "floor gt 5": 0, "floor ge 5 and userName eq \"cara\"": 1,
				customAttrsURN + `:badges eq "b3"`: 1, `badges eq "B3"`: 0, "costCentreCode pr": 0, "not (floor pr)": 3,
			} {
				if got := listTotal(t, f, h.do(t, "GET", "/scim/v2/Users?filter="+q(f), hTokRead, nil, nil)); got != n {
					t.Errorf("filter %s: %d users, want %d", f, got, n)
				}
			}
			if r := h.do(t, "GET", "/scim/v2/Users?filter="+q(customAttrsURN+":floor eq 5"), hTokRead, nil, nil); !strings.Contains(string(r.body), id) {
				t.Errorf("floor eq 5 does not find %s: %s", id, r)
			}
		})
	}
}
