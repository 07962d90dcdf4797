package store_test

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim/schema"
)

const customURN = "urn:example:params:scim:schemas:extension:roster:2.0:User"

// customUsers is the User resource type with a custom attribute of every
// type, as the configuration declares them.
var customUsers = schema.NewUsers(schema.Custom(customURN, []*schema.Attribute{
	schema.CustomAttribute("costCentreCode", schema.TypeString, false, false),
	schema.CustomAttribute("badge", schema.TypeString, false, true),
	schema.CustomAttribute("tags", schema.TypeString, true, false),
	schema.CustomAttribute("remote", schema.TypeBoolean, false, false),
	schema.CustomAttribute("floor", schema.TypeInteger, false, false),
	schema.CustomAttribute("fte", schema.TypeDecimal, false, false),
	schema.CustomAttribute("hired", schema.TypeDateTime, false, false),
	schema.CustomAttribute("wiki", schema.TypeReference, false, false),
	schema.CustomAttribute("shifts", schema.TypeInteger, true, false),
}))

// TestSCIMCustomAttributes: custom attributes are written by POST, PUT
// and PATCH (with their URN or without), checked by type, returned under
// their URN, and filtered and sorted by type on both stores, with
// unassigned values matching no comparison and sorting last.
func TestSCIMCustomAttributes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnvFor(t, s, customUsers)
		post := func(name, custom string) map[string]any {
			t.Helper()
			body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","` + customURN + `"],"userName":"` + name + `"`
			if custom != "" {
				body += `,"` + customURN + `":{` + custom + `}`
			}
			return want(t, e.do("POST", "/scim/v2/Users", writeTok, body+"}"), http.StatusCreated, "", "")
		}
		// "full" has a value of every attribute; "low" smaller ones, where
		// text order and number order differ (9 < 10, "10" < "9"); "none"
		// none.
		full := post("zz-full", `"costCentreCode":"CC-Ber","badge":"B-7","tags":["Red","blue"],"remote":true,"floor":10,
			"fte":0.75,"hired":"2026-03-01T10:00:00+01:00","wiki":"https://wiki.example.com/u/full","shifts":[3,1]`)
		low := post("zz-low", `"COSTCENTRECODE":"aa","badge":"a-1","tags":"green","remote":"False","floor":9,"fte":0.5,
			"hired":"2025-12-31T23:59:59.5Z","wiki":"https://wiki.example.com/u/low","shifts":[2]`)
		none := post("zz-none", "")
		ids := map[string]string{full["id"].(string): "full", low["id"].(string): "low", none["id"].(string): "none"}

		ext, _ := full[customURN].(map[string]any)
		wantExt := map[string]any{"costCentreCode": "CC-Ber", "badge": "B-7", "tags": []any{"Red", "blue"}, "remote": true,
			"floor": 10.0, "fte": 0.75, "hired": "2026-03-01T09:00:00Z", "wiki": "https://wiki.example.com/u/full", "shifts": []any{3.0, 1.0}}
		if !reflect.DeepEqual(ext, wantExt) {
			t.Errorf("returned %v\nwant %v", ext, wantExt)
		}
		if got := fmt.Sprint(full["schemas"]); !strings.Contains(got, customURN) {
			t.Errorf("schemas %s lack %s", got, customURN)
		}
		if _, ok := none[customURN]; ok || strings.Contains(fmt.Sprint(none["schemas"]), customURN) {
			t.Errorf("a user without custom values: %v", none)
		}
		// Read back as stored.
		got := want(t, e.do("GET", "/scim/v2/Users/"+full["id"].(string), readTok, ""), 200, "", "")
		if !reflect.DeepEqual(got[customURN], wantExt) {
			t.Errorf("read back %v", got[customURN])
		}

		list := func(query string) string {
			t.Helper()
			m := want(t, e.do("GET", "/scim/v2/Users?"+query, readTok, ""), 200, "", "")
			var out []string
			for _, r := range m["Resources"].([]any) {
				out = append(out, ids[r.(map[string]any)["id"].(string)])
			}
			return strings.Join(out, ",")
		}
		u := customURN + ":"
		for f, wantIDs := range map[string]string{
			// Strings: case-insensitive unless declared case-exact.
			`costCentreCode eq "cc-ber"`: "full", u + `costCentreCode sw "C"`: "full", `costCentreCode gt "b"`: "full",
			`costCentreCode eq ""`: "", `costCentreCode ne "x"`: "full,low", `costCentreCode pr`: "full,low",
			`not (costCentreCode pr)`: "none", `costCentreCode eq null`: "none",
			`badge eq "B-7"`: "full", `badge eq "b-7"`: "", `badge co "-"`: "full,low", `badge sw "b"`: "",
			`tags eq "BLUE"`: "full", `tags co "ee"`: "low", `tags pr`: "full,low", `not (tags eq "red")`: "low,none",
			`tags eq "red" or costCentreCode eq "aa"`: "full,low", `tags eq "red" or shifts eq 2`: "full,low",
			// References are case-exact.
			`wiki ew "/full"`: "full", `wiki eq "HTTPS://wiki.example.com/u/low"`: "",
			// Booleans: unassigned is neither true nor false.
			`remote eq true`: "full", `remote eq false`: "low", `remote ne true`: "low", `not (remote eq true)`: "low,none",
			`remote pr`: "full,low",
			// Numbers compare as numbers.
			`floor gt 9`: "full", `floor ge 9`: "full,low", `floor lt 10`: "low", `floor eq 10`: "full", `floor ne 10`: "low",
			`floor le 100`: "full,low", `not (floor gt 9)`: "low,none", `fte gt 0.6`: "full", `fte eq 0.5`: "low",
			`shifts eq 1`: "full", `shifts gt 2`: "full", `shifts le 2`: "full,low", `shifts pr`: "full,low",
			// dateTimes compare as instants, in any zone.
			`hired gt "2026-01-01T00:00:00Z"`: "full", `hired eq "2026-03-01T11:00:00+02:00"`: "full",
			`hired lt "2026-01-01T01:00:00+01:00"`: "low", `hired eq "2025-12-31T23:59:59.5Z"`: "low", `hired pr`: "full,low",
			`not (hired lt "2030-01-01T00:00:00Z")`: "none",
		} {
			q := "filter=" + url.QueryEscape("("+f+`) and userName sw "zz-"`) + "&sortBy=userName"
			if got := list(q); got != wantIDs {
				t.Errorf("%s: %s, want %s", f, got, wantIDs)
			}
		}
		for attr, order := range map[string]string{
			"costCentreCode": "low,full,none", u + "badge": "full,low,none", "tags": "low,full,none", "remote": "low,full,none",
			"floor": "low,full,none", "fte": "low,full,none", "hired": "low,full,none", "wiki": "full,low,none",
			"shifts": "low,full,none",
		} {
			q := "filter=" + url.QueryEscape(`userName sw "zz-"`) + "&sortBy=" + url.QueryEscape(attr)
			if got := list(q); got != order {
				t.Errorf("sortBy %s: %s, want %s", attr, got, order)
			}
			parts := strings.Split(order, ",")
			desc := parts[2] + "," + parts[1] + "," + parts[0]
			if got := list(q + "&sortOrder=descending"); got != desc {
				t.Errorf("sortBy %s descending: %s, want %s", attr, got, desc)
			}
			// Cursor pages of one resource walk the same order.
			var walked []string
			m := want(t, e.do("GET", "/scim/v2/Users?"+q+"&count=1&cursor=", readTok, ""), 200, "", "")
			for {
				for _, r := range m["Resources"].([]any) {
					walked = append(walked, ids[r.(map[string]any)["id"].(string)])
				}
				next, _ := m["nextCursor"].(string)
				if next == "" || len(walked) > 3 {
					break
				}
				m = want(t, e.do("GET", "/scim/v2/Users?"+q+"&count=1&cursor="+url.QueryEscape(next), readTok, ""), 200, "", "")
			}
			if got := strings.Join(walked, ","); got != order {
				t.Errorf("sortBy %s by cursor: %s, want %s", attr, got, order)
			}
		}

		// Wrong types and unknown names are refused by every verb,
		// naming the attribute; nothing is stored.
		id := low["id"].(string)
		for _, c := range []struct{ method, path, body, scimType, detail string }{
			{"POST", "/scim/v2/Users", `{"userName":"zz-bad","` + customURN + `":{"floor":"ten"}}`, "invalidValue", "floor must be an integer"},
			{"POST", "/scim/v2/Users", `{"userName":"zz-bad","` + customURN + `":{"floor":2.5}}`, "invalidValue", "floor must be an integer"},
			{"POST", "/scim/v2/Users", `{"userName":"zz-bad","` + customURN + `":{"hired":"yesterday"}}`, "invalidValue", "hired must be a date and time"},
			{"POST", "/scim/v2/Users", `{"userName":"zz-bad","` + customURN + `":{"remote":"maybe"}}`, "invalidValue", "remote must be true or false"},
			{"POST", "/scim/v2/Users", `{"userName":"zz-bad","` + customURN + `":{"shoeSize":42}}`, "invalidValue", `"shoeSize"`},
			{"POST", "/scim/v2/Users", `{"userName":"zz-bad","` + customURN + `:shoeSize":42}`, "invalidValue", `"shoeSize"`},
			{"PUT", "/scim/v2/Users/" + id, `{"userName":"zz-low","` + customURN + `":{"fte":"half"}}`, "invalidValue", "fte must be a number"},
			{"PATCH", "/scim/v2/Users/" + id, patchOps(`{"op":"replace","path":"` + u + `floor","value":"x"}`), "invalidValue", "floor"},
			{"PATCH", "/scim/v2/Users/" + id, patchOps(`{"op":"add","path":"` + u + `shoeSize","value":1}`), "invalidPath", "shoeSize"},
		} {
			want(t, e.do(c.method, c.path, writeTok, c.body), http.StatusBadRequest, c.scimType, c.detail)
		}
		if got := want(t, e.do("GET", "/scim/v2/Users/"+id, readTok, ""), 200, "", ""); got[customURN].(map[string]any)["floor"] != 9.0 {
			t.Errorf("a refused write changed the user: %v", got[customURN])
		}

		// PATCH with and without the URN; remove unassigns.
		m := want(t, e.do("PATCH", "/scim/v2/Users/"+id, writeTok, patchOps(
			`{"op":"replace","path":"`+u+`floor","value":12},{"op":"remove","path":"remote"},{"op":"add","path":"tags","value":["grey"]},`+
				`{"op":"replace","value":{"`+u+`fte":1}}`)), 200, "", "")
		got2 := m[customURN].(map[string]any)
		if got2["floor"] != 12.0 || got2["remote"] != nil || got2["fte"] != 1.0 || !reflect.DeepEqual(got2["tags"], []any{"green", "grey"}) {
			t.Errorf("after PATCH: %v", got2)
		}
		if got := list("filter=" + url.QueryEscape(`floor gt 11 and not (remote pr)`)); got != "low" {
			t.Errorf("the PATCH is not what the store filters: %s", got)
		}
		// A PATCH that changes nothing keeps meta.
		again := want(t, e.do("PATCH", "/scim/v2/Users/"+id, writeTok, patchOps(`{"op":"replace","path":"`+u+`floor","value":12}`)), 200, "", "")
		if !reflect.DeepEqual(again["meta"], m["meta"]) {
			t.Errorf("a no-op PATCH moved meta: %v, was %v", again["meta"], m["meta"])
		}
		// PUT replaces them all.
		m = want(t, e.do("PUT", "/scim/v2/Users/"+id, writeTok, `{"userName":"zz-low","`+customURN+`":{"badge":"only"}}`), 200, "", "")
		if !reflect.DeepEqual(m[customURN], map[string]any{"badge": "only"}) {
			t.Errorf("after PUT: %v", m[customURN])
		}

		// Removing the extension removes every custom value.
		m = want(t, e.do("PATCH", "/scim/v2/Users/"+id, writeTok, patchOps(`{"op":"remove","path":"`+customURN+`"}`)), 200, "", "")
		if _, ok := m[customURN]; ok || strings.Contains(fmt.Sprint(m["schemas"]), customURN) {
			t.Errorf("after removing the extension: %v", m)
		}

		// Discovery lists the schema and the extension.
		sch := want(t, e.do("GET", "/scim/v2/Schemas/"+customURN, readTok, ""), 200, "", "")
		if n := len(sch["attributes"].([]any)); n != 9 {
			t.Errorf("/Schemas/%s has %d attributes", customURN, n)
		}
		rt := want(t, e.do("GET", "/scim/v2/ResourceTypes/User", readTok, ""), 200, "", "")
		if !strings.Contains(fmt.Sprint(rt["schemaExtensions"]), customURN) {
			t.Errorf("schemaExtensions %v", rt["schemaExtensions"])
		}
		// attributes and excludedAttributes reach them.
		fid := full["id"].(string)
		m = want(t, e.do("GET", "/scim/v2/Users/"+fid+"?attributes="+url.QueryEscape(u+"floor"), readTok, ""), 200, "", "")
		if !reflect.DeepEqual(m[customURN], map[string]any{"floor": 10.0}) {
			t.Errorf("attributes=floor: %v", m[customURN])
		}
		m = want(t, e.do("GET", "/scim/v2/Users/"+fid+"?excludedAttributes="+url.QueryEscape(customURN), readTok, ""), 200, "", "")
		if _, ok := m[customURN]; ok {
			t.Errorf("excluded extension returned: %v", m[customURN])
		}
	})
}

func patchOps(ops string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + ops + `]}`
}

// retyped gives two users of the store custom values: one of the declared
// types, and one of other types, as an earlier declaration (before an
// operator changed a type or multi_valued) may have left them.
func retyped(tb testing.TB, s *store.Store) (fits, misfits string) {
	tb.Helper()
	var ids []string
	if err := s.DB().Raw(`SELECT id FROM users WHERE state <> 'deleted' ORDER BY id LIMIT 2`).Scan(&ids).Error; err != nil || len(ids) < 2 {
		tb.Fatalf("two users to give custom values: %v %v", ids, err)
	}
	for i, doc := range []string{
		`{"custom":{"costcentrecode":"CC","badge":"B","tags":["a"],"remote":true,"floor":3,"fte":0.5,"hired":"2026-01-02T03:04:05Z","wiki":"https://w/1","shifts":[1,2]}}`,
		`{"custom":{"costcentrecode":7,"badge":false,"tags":"a","remote":"true","floor":"3","fte":[0.5],"hired":"2026-13-45T99:00:00Z","wiki":{"x":1},"shifts":["2",true,null,{"a":1},[1]]}}`,
	} {
		if err := s.DB().Exec(`UPDATE users SET attrs = ? WHERE id = ?`, doc, ids[i]).Error; err != nil {
			tb.Fatal(err)
		}
	}
	return ids[0], ids[1]
}

// TestSCIMCustomRetyped: values of another type than declared, left by an
// earlier declaration, never break a filter or a sort on either store
// (PostgreSQL would fail a cast), compare like unassigned ones, and are
// not served.
func TestSCIMCustomRetyped(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnvFor(t, s, customUsers)
		fits, misfits := retyped(t, s)
		names := map[string]string{fits: "fits", misfits: "misfits"}
		list := func(query string) string {
			t.Helper()
			m := want(t, e.do("GET", "/scim/v2/Users?"+query, readTok, ""), 200, "", "")
			var out []string
			for _, r := range m["Resources"].([]any) {
				if n := names[r.(map[string]any)["id"].(string)]; n != "" {
					out = append(out, n)
				}
			}
			return strings.Join(out, ",")
		}
		for _, f := range []string{`floor eq 3`, `floor pr`, `fte lt 1`, `remote eq true`, `remote pr`, `hired gt "2000-01-01T00:00:00Z"`,
			`hired pr`, `shifts eq 2`, `shifts pr`, `tags eq "a"`} {
			if got := list("filter=" + url.QueryEscape(f)); got != "fits" {
				t.Errorf("%s: %s, want fits", f, got)
			}
		}
		for _, by := range []string{"floor", "fte", "remote", "hired", "shifts", "tags", "wiki"} {
			if got := list("sortBy=" + by + "&count=1000"); !strings.HasPrefix(got, "fits") {
				t.Errorf("sortBy %s: %s, want fits first", by, got)
			}
		}
		m := want(t, e.do("GET", "/scim/v2/Users/"+misfits, readTok, ""), 200, "", "")
		if ext, _ := m[customURN].(map[string]any); len(ext) != 0 {
			t.Errorf("values of another type are served: %v", ext)
		}
	})
}
