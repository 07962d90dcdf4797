package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/patch"
	"github.com/rosterd/roster/scim/schema"
)

// everyAttribute is a user with every writable attribute of the published
// schemas (SPEC §2.1), as a client writes it.
const everyAttribute = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "externalId": "ext-7",
  "userName": "mara@example.com",
  "name": {"formatted": "Dr. Mara Luise Vogt, PhD", "familyName": "Vogt", "givenName": "Mara",
    "middleName": "Luise", "honorificPrefix": "Dr.", "honorificSuffix": "PhD"},
  "displayName": "Mara Vogt",
  "nickName": "Mo",
  "profileUrl": "https://people.example.com/mara",
  "title": "Engineer",
  "userType": "Employee",
  "preferredLanguage": "de-DE",
  "locale": "de-DE",
  "timezone": "Europe/Berlin",
  "active": true,
  "emails": [{"value": "mara@example.com", "display": "Work mail", "type": "work", "primary": true}],
  "phoneNumbers": [{"value": "+49 30 1", "display": "Desk", "type": "work", "primary": true}, {"value": "+49 170 2", "type": "mobile"}],
  "ims": [{"value": "mara@xmpp.example.com", "display": "Chat", "type": "xmpp"}],
  "photos": [{"value": "https://photos.example.com/mara.jpg", "display": "Portrait", "type": "photo"}],
  "addresses": [{"type": "work", "streetAddress": "Hauptstr. 1", "locality": "Berlin", "region": "BE",
    "postalCode": "10115", "country": "DE", "formatted": "Hauptstr. 1, 10115 Berlin", "primary": true},
    {"type": "home", "locality": "Potsdam", "country": "DE"}],
  "entitlements": [{"value": "wiki-admin", "display": "Wiki admin", "type": "app"}],
  "roles": [{"value": "developer", "display": "Developer", "type": "job", "primary": true}],
  "x509Certificates": [{"value": "MIIBszCCAVmgAwIBAgIU", "display": "Badge", "type": "signing"}],
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
    "employeeNumber": "701", "costCenter": "CC-4", "organization": "Example AG", "division": "R&D",
    "department": "Platform"}
}`

// written is what a client wrote, without what the server adds: schemas
// and meta, and the derived and default values a test names.
func written(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "schemas")
	return m
}

// returned is a user as the server answered it, without id, groups,
// schemas and meta.
func returned(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		switch k {
		case "id", "groups", "schemas", "meta":
		default:
			out[k] = v
		}
	}
	// The server tells primary: false of e-mails and phone numbers.
	for _, k := range []string{"emails", "phoneNumbers"} {
		vs, _ := out[k].([]any)
		for _, v := range vs {
			if o := v.(map[string]any); o["primary"] == false {
				delete(o, "primary")
			}
		}
	}
	return out
}

func sameJSON(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("%s\n got  %s\n want %s", what, g, w)
	}
}

func TestSCIMEveryAttribute(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		m := want(t, e.do("POST", "/scim/v2/Users", writeTok, everyAttribute), http.StatusCreated, "", "")
		id := m["id"].(string)
		sameJSON(t, "POST answer", returned(m), written(t, everyAttribute))
		sameJSON(t, "GET after POST", returned(want(t, e.do("GET", "/scim/v2/Users/"+id, readTok, ""), 200, "", "")), written(t, everyAttribute))

		// PUT replaces: what it leaves out is gone.
		put := `{"userName":"mara@example.com","title":"Lead","addresses":[{"type":"work","locality":"Hamburg"}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"division":"Ops"}}`
		m = want(t, e.do("PUT", "/scim/v2/Users/"+id, writeTok, put), 200, "", "")
		wantPut := written(t, put)
		wantPut["displayName"], wantPut["active"] = "", true
		delete(wantPut, "displayName") // no name parts, no displayName: nothing to derive
		sameJSON(t, "after PUT", returned(m), wantPut)

		// The PATCH Entra ID's default mapping sends on the first update.
		patch := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"Add","path":"title","value":"Engineer"},
			{"op":"Add","path":"preferredLanguage","value":"en-GB"},
			{"op":"Add","path":"addresses[type eq \"work\"].streetAddress","value":"1 Main St"},
			{"op":"Add","path":"addresses[type eq \"work\"].postalCode","value":"EC1A 1BB"},
			{"op":"Add","path":"addresses[type eq \"work\"].country","value":"GB"},
			{"op":"Add","path":"phoneNumbers[type eq \"work\"].value","value":"+44 20 1"},
			{"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+44 7700 2"},
			{"op":"Replace","path":"nickName","value":"M"},
			{"op":"Replace","path":"locale","value":"en-GB"}]}`
		m = want(t, e.do("PATCH", "/scim/v2/Users/"+id, writeTok, patch), 200, "", "")
		wantPatch := map[string]any{
			"userName": "mara@example.com", "active": true, "title": "Engineer", "preferredLanguage": "en-GB",
			"nickName": "M", "locale": "en-GB",
			"addresses": []any{map[string]any{"type": "work", "locality": "Hamburg", "streetAddress": "1 Main St",
				"postalCode": "EC1A 1BB", "country": "GB"}},
			"phoneNumbers": []any{map[string]any{"type": "work", "value": "+44 20 1"}, map[string]any{"type": "mobile", "value": "+44 7700 2"}},
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"division": "Ops"},
		}
		got := returned(m)
		// Phone numbers come back in the store's order: primary, then by value.
		if ps, _ := got["phoneNumbers"].([]any); len(ps) == 2 && ps[0].(map[string]any)["type"] == "mobile" {
			ps[0], ps[1] = ps[1], ps[0]
		}
		sameJSON(t, "after the Entra PATCH", got, wantPatch)
		got = returned(want(t, e.do("GET", "/scim/v2/Users/"+id, readTok, ""), 200, "", ""))
		if ps, _ := got["phoneNumbers"].([]any); len(ps) == 2 && ps[0].(map[string]any)["type"] == "mobile" {
			ps[0], ps[1] = ps[1], ps[0]
		}
		sameJSON(t, "GET after the Entra PATCH", got, wantPatch)
	})
}

// TestSCIMUnknownAttribute: an attribute no published schema has is
// refused alike by POST, PUT and PATCH, naming it, and nothing of the
// request is written.
func TestSCIMUnknownAttribute(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		m := want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"kim","title":"A"}`), http.StatusCreated, "", "")
		id, version := m["id"].(string), m["meta"].(map[string]any)["version"]
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/scim/v2/Users", `{"userName":"lee","shoeSize":"42"}`},
			{"POST", "/scim/v2/Users", `{"userName":"lee","name":{"givenName":"Lee","nickname":"L"}}`},
			{"POST", "/scim/v2/Users", `{"userName":"lee","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"shoeSize":"42"}}`},
			{"PUT", "/scim/v2/Users/" + id, `{"userName":"kim","title":"B","shoeSize":"42"}`},
			{"PATCH", "/scim/v2/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"replace","path":"title","value":"B"},{"op":"add","path":"shoeSize","value":"42"}]}`},
			{"PATCH", "/scim/v2/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"replace","value":{"title":"B","shoeSize":"42"}}]}`},
		} {
			a := e.do(c.method, c.path, writeTok, c.body)
			if a.status != http.StatusBadRequest {
				t.Fatalf("%s %s: status %d, want 400: %s", c.method, c.body, a.status, a.body)
			}
			if d, _ := a.object(t)["detail"].(string); !strings.Contains(strings.ToLower(d), "shoesize") && !strings.Contains(d, "nickname") {
				t.Errorf("%s %s: detail %q does not name the attribute", c.method, c.body, d)
			}
		}
		m = want(t, e.do("GET", "/scim/v2/Users/"+id, readTok, ""), 200, "", "")
		if m["title"] != "A" || m["meta"].(map[string]any)["version"] != version {
			t.Errorf("a refused write changed the user: %v", m)
		}
		if a := e.do("GET", "/scim/v2/Users?filter=userName+eq+%22lee%22", readTok, ""); !strings.Contains(string(a.body), `"totalResults":0`) {
			t.Errorf("a refused POST created a user: %s", a.body)
		}
	})
}

// TestSCIMRemoveAndNoOp: remove unassigns and never re-enables; writes
// that change nothing leave meta alone; name.formatted is kept as sent;
// a stale If-Match on a user's or a group's GET is 412.
func TestSCIMRemoveAndNoOp(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		const patchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[%s]}`
		patch := func(id, ops string) map[string]any {
			t.Helper()
			return want(t, e.do("PATCH", "/scim/v2/Users/"+id, writeTok, strings.Replace(patchOp, "%s", ops, 1)), 200, "", "")
		}
		m := want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"kim","externalId":"k-1","active":false,
			"name":{"givenName":"Kim","familyName":"Park","formatted":"PARK Kim"}}`), http.StatusCreated, "", "")
		id := m["id"].(string)
		if n := m["name"].(map[string]any); n["formatted"] != "PARK Kim" {
			t.Errorf("name.formatted as sent: %v", n)
		}
		meta := m["meta"].(map[string]any)

		// No-op PATCH and PUT: version and lastModified stay.
		for _, ops := range []string{`{"op":"replace","path":"userName","value":"kim"}`,
			`{"op":"replace","value":{"active":"False","externalId":"k-1"}}`,
			`{"op":"remove","path":"title"}`} {
			if got := patch(id, ops)["meta"]; !reflect.DeepEqual(got, meta) {
				t.Errorf("no-op PATCH %s changed meta: %v, was %v", ops, got, meta)
			}
		}
		put := `{"userName":"kim","externalId":"k-1","active":false,"name":{"givenName":"Kim","familyName":"Park","formatted":"PARK Kim"}}`
		if got := want(t, e.do("PUT", "/scim/v2/Users/"+id, writeTok, put), 200, "", "")["meta"]; !reflect.DeepEqual(got, meta) {
			t.Errorf("no-op PUT changed meta: %v, was %v", got, meta)
		}

		// remove unassigns externalId, and removing active keeps the user disabled.
		m = patch(id, `{"op":"remove","path":"externalId"},{"op":"remove","path":"active"}`)
		if _, ok := m["externalId"]; ok || m["active"] != false {
			t.Errorf("after remove externalId and active: %v", m)
		}
		if u := e.dbUser(id); u.ExternalID != "" || u.Active || u.State != reconcile.StateInactive {
			t.Errorf("stored after remove: %+v", u)
		}
		if m["meta"].(map[string]any)["version"] == meta["version"] {
			t.Error("a PATCH that changed externalId kept the version")
		}
		// Changing a name part keeps the formatted name the client wrote.
		m = patch(id, `{"op":"replace","path":"name.givenName","value":"Kimberly"}`)
		if n := m["name"].(map[string]any); n["formatted"] != "PARK Kim" || n["givenName"] != "Kimberly" {
			t.Errorf("name after PATCH: %v", n)
		}
		m = patch(id, `{"op":"remove","path":"name.formatted"}`)
		if n := m["name"].(map[string]any); n["formatted"] != "Kimberly Park" {
			t.Errorf("derived name.formatted: %v", n)
		}

		// If-Match on GET.
		etag := e.do("GET", "/scim/v2/Users/"+id, readTok, "").header.Get("ETag")
		want(t, e.do("GET", "/scim/v2/Users/"+id, readTok, "", "If-Match", `W/"1"`), http.StatusPreconditionFailed, "", "If-Match")
		want(t, e.do("GET", "/scim/v2/Users/"+id, readTok, "", "If-Match", etag), http.StatusOK, "", "")
		// And on a group's GET.
		g := e.do("POST", "/scim/v2/Groups", writeTok, `{"displayName":"Kim's team","members":[{"value":"`+id+`"}]}`)
		gid := want(t, g, http.StatusCreated, "", "")["id"].(string)
		want(t, e.do("GET", "/scim/v2/Groups/"+gid, readTok, "", "If-Match", `W/"999"`), http.StatusPreconditionFailed, "", "If-Match")
		want(t, e.do("GET", "/scim/v2/Groups/"+gid, readTok, "", "If-Match", g.header.Get("ETag")), http.StatusOK, "", "")
	})
}

// leafPaths are the paths of every string attribute a client writes, as
// filters and sortBy name them: sub-attributes of complex ones, extension
// attributes with their URN.
func leafPaths(rt schema.ResourceType) []string {
	var paths []string
	for _, sch := range rt.Schemas() {
		prefix := ""
		if sch != schema.User {
			prefix = sch.ID + ":"
		}
		for _, a := range sch.Attributes {
			if a.Mutability == schema.ReadOnly || a.Returned == schema.ReturnedNever {
				continue
			}
			if len(a.SubAttributes) == 0 {
				// Strings and references; custom booleans, numbers and
				// dateTimes have a table of their own
				// (TestSCIMCustomAttributes).
				if a.Type == schema.TypeString || a.Type == schema.TypeReference {
					paths = append(paths, prefix+a.Name)
				}
				continue
			}
			for _, sub := range a.SubAttributes {
				if sub.Type == schema.TypeBoolean || sub.Mutability == schema.ReadOnly || sub.Name == "$ref" {
					continue
				}
				paths = append(paths, prefix+a.Name+"."+sub.Name)
			}
		}
	}
	return paths
}

// valueAt reads a path from a resource: the first value of a
// multi-valued attribute.
func valueAt(doc map[string]any, path string) (string, bool) {
	urn, name, sub := schema.SplitPath(path)
	var v any = doc
	if urn != "" {
		v = doc[urn]
	}
	for _, k := range []string{name, sub} {
		if k == "" {
			continue
		}
		if vs, ok := v.([]any); ok && len(vs) > 0 {
			v = vs[0]
		}
		m, _ := v.(map[string]any)
		v = m[k]
	}
	if vs, ok := v.([]any); ok && len(vs) > 0 {
		v = vs[0]
	}
	s, ok := v.(string)
	return s, ok && s != ""
}

// compareEvery filters on path with every operator between two resources
// in scope (a filter matching just the two, sorted by sortBy): "full",
// whose value there is v, and "none", which has none. list names the
// matches in order. Unassigned values match no comparison (eq "" included)
// and, when sortable, sort last ascending and first descending (RFC 7644
// §3.4.2.2, §3.4.2.3).
func compareEvery(t *testing.T, list func(query string) string, scope, sortBy, path, v string, sortable bool) {
	t.Helper()
	for f, wantIDs := range map[string]string{
		`%s eq %q`:       "full",
		`%s eq ""`:       "",
		`%s ne "\u0001"`: "full",
		`%s co %q`:       "full",
		`%s sw %q`:       "full",
		`%s ew %q`:       "full",
		`%s gt ""`:       "full",
		`%s ge %q`:       "full",
		`%s le %q`:       "full",
		`%s lt "\uffff"`: "full",
		`%s pr`:          "full",
		`not (%s pr)`:    "none",
		`not (%s eq %q)`: "none",
		`not (%s eq "")`: "full,none",
		`%s eq null`:     "none",
	} {
		var expr string
		switch strings.Count(f, "%") {
		case 1:
			expr = fmt.Sprintf(f, path)
		default:
			arg := v
			switch {
			case strings.Contains(f, " co "):
				arg = v[1 : len(v)-1]
			case strings.Contains(f, " sw "):
				arg = v[:2]
			case strings.Contains(f, " ew "):
				arg = v[len(v)-2:]
			}
			expr = fmt.Sprintf(f, path, arg)
		}
		q := "filter=" + url.QueryEscape("("+expr+") and "+scope) + "&sortBy=" + sortBy
		if got := list(q); got != wantIDs {
			t.Errorf("%s: %s, want %s", expr, got, wantIDs)
		}
	}
	if !sortable {
		return
	}
	sort := "filter=" + url.QueryEscape(scope) + "&sortBy=" + url.QueryEscape(path)
	if got := list(sort); got != "full,none" {
		t.Errorf("sortBy %s: %s, want full,none", path, got)
	}
	if got := list(sort + "&sortOrder=descending"); got != "none,full" {
		t.Errorf("sortBy %s descending: %s, want none,full", path, got)
	}
}

// lister lists the resources of endpoint that a query finds, by the names
// ids gives their ids.
func lister(e *scimWriteEnv, endpoint string, ids map[string]string) func(query string) string {
	return func(query string) string {
		e.t.Helper()
		m := want(e.t, e.do("GET", "/scim/v2/"+endpoint+"?"+query, readTok, ""), 200, "", "")
		var got []string
		for _, res := range m["Resources"].([]any) {
			got = append(got, ids[res.(map[string]any)["id"].(string)])
		}
		return strings.Join(got, ",")
	}
}

// TestSCIMFilterEveryAttribute compares every string attribute with every
// operator on two users, one with every attribute and one with none but
// its login (externalId too: a SCIM client need not send one), and on two
// groups, one with an externalId and a member and one with neither:
// unassigned values match no comparison (eq "" included) and sort last
// ascending, first descending (RFC 7644 §3.4.2.2, §3.4.2.3).
func TestSCIMFilterEveryAttribute(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		// Custom string attributes too: case-insensitive, case-exact, a
		// reference and a multi-valued one.
		e := newSCIMWriteEnvFor(t, s, customUsers)
		full := strings.Replace(everyAttribute, `"mara@example.com",`, `"zz-full",`, 1)
		full = strings.Replace(full, `"department": "Platform"}`, `"department": "Platform"}, "`+customURN+
			`": {"costCentreCode": "CC-Ber-1", "badge": "Bx-77", "tags": ["Red", "blue"], "wiki": "https://wiki.example.com/u/m"}`, 1)
		full = strings.Replace(full, `"department": "Platform"}`, `"department": "Platform", "manager": {"value": "`+e.idOf("anna")+`"}}`, 1)
		a := want(t, e.do("POST", "/scim/v2/Users", writeTok, full), http.StatusCreated, "", "")
		b := want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"zz-none"}`), http.StatusCreated, "", "")
		if _, ok := b["externalId"]; ok {
			t.Fatalf("a user created without externalId has one: %v", b)
		}
		list := lister(e, "Users", map[string]string{a["id"].(string): "full", b["id"].(string): "none"})
		// externalId is a common attribute, in no schema's list.
		for _, path := range append(leafPaths(customUsers), "externalId") {
			if path == "userName" {
				continue // required: both users have one
			}
			v, ok := valueAt(a, path)
			if !ok {
				t.Errorf("%s: the full user has no value there", path)
				continue
			}
			compareEvery(t, list, `userName sw "zz-"`, "userName", path, v, true)
		}
		// Booleans always have a value: active, and primary where set.
		for f, wantIDs := range map[string]string{
			`active eq true`: "full,none", `active eq false`: "",
			`emails[primary eq true]`: "full", `addresses[primary eq true and locality eq "Berlin"]`: "full",
			`addresses.primary eq true`: "full", `roles[primary eq true]`: "full", `ims[primary eq true]`: "",
			`addresses[type eq "home" and locality sw "pots"]`: "full", `addresses[type eq "home" and region pr]`: "",
			// Terms on two JSON-held multi-valued attributes, or'd: each reads its own values.
			`ims.value eq "mara@xmpp.example.com" or roles.value eq "nope"`: "full",
			`roles.value eq "nope" or ims.value eq "mara@xmpp.example.com"`: "full",
			// id and meta always have a value.
			`id eq "` + a["id"].(string) + `"`: "full", `id ne "` + a["id"].(string) + `"`: "none", `id pr`: "full,none",
			`meta.created le "` + b["meta"].(map[string]any)["created"].(string) + `"`:           "full,none",
			`meta.lastModified ge "` + a["meta"].(map[string]any)["lastModified"].(string) + `"`: "full,none",
			`meta.created gt "2000-01-01T00:00:00Z"`:                                             "full,none", `meta.lastModified lt "2000-01-01T00:00:00Z"`: "",
			`meta.lastModified pr`: "full,none",
		} {
			q := "filter=" + url.QueryEscape("("+f+`) and userName sw "zz-"`) + "&sortBy=userName"
			if got := list(q); got != wantIDs {
				t.Errorf("%s: %s, want %s", f, got, wantIDs)
			}
		}

		// Groups: externalId and members.value unassigned in one of them;
		// displayName (required) in both.
		g := want(t, e.do("POST", "/scim/v2/Groups", writeTok, fmt.Sprintf(
			`{"displayName":"zz-full","externalId":"g-ext-1","members":[{"value":%q}]}`, a["id"])), http.StatusCreated, "", "")
		h := want(t, e.do("POST", "/scim/v2/Groups", writeTok, `{"displayName":"zz-none"}`), http.StatusCreated, "", "")
		if _, ok := h["externalId"]; ok {
			t.Fatalf("a group created without externalId has one: %v", h)
		}
		groups := lister(e, "Groups", map[string]string{g["id"].(string): "full", h["id"].(string): "none"})
		const groupScope = `displayName sw "zz-"`
		compareEvery(t, groups, groupScope, "displayName", "externalId", "g-ext-1", true)
		compareEvery(t, groups, groupScope, "displayName", "members.value", a["id"].(string), false)
		for f, wantIDs := range map[string]string{
			`displayName eq "zz-full"`: "full", `displayName eq "ZZ-FULL"`: "full", `displayName eq ""`: "",
			`displayName ne "zz-full"`: "none", `displayName co "FUL"`: "full", `displayName sw "zz-n"`: "none",
			`displayName ew "ULL"`: "full", `displayName gt "zz-full"`: "none", `displayName ge "zz-full"`: "full,none",
			`displayName lt "zz-none"`: "full", `displayName le "zz-none"`: "full,none", `displayName pr`: "full,none",
			`not (displayName eq "zz-full")`: "none", `displayName eq null`: "",
			`members[value eq "` + a["id"].(string) + `"]`: "full", `members pr`: "full", `not (members pr)`: "none",
		} {
			q := "filter=" + url.QueryEscape("("+f+") and "+groupScope) + "&sortBy=displayName"
			if got := groups(q); got != wantIDs {
				t.Errorf("groups %s: %s, want %s", f, got, wantIDs)
			}
		}
		sort := "filter=" + url.QueryEscape(groupScope) + "&sortBy=displayName"
		if got := groups(sort); got != "full,none" {
			t.Errorf("groups sortBy displayName: %s", got)
		}
		if got := groups(sort + "&sortOrder=descending"); got != "none,full" {
			t.Errorf("groups sortBy displayName descending: %s", got)
		}
	})
}

// TestSCIMFoundByTheIdPSequences pins what replaying Entra ID's and Okta's
// sequences found: a group write that changes nothing keeps its version; a
// deleted user's groups get a new one (their members changed); a
// formatted name that equals the derived one is still the client's; a
// Remove of a phone number's value removes the number.
func TestSCIMFoundByTheIdPSequences(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		const patchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[%s]}`
		m := want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"jo","name":{"givenName":"Jo","familyName":"Doe","formatted":"Jo Doe"},
			"phoneNumbers":[{"type":"work","value":"+1 1"},{"type":"mobile","value":"+1 2"}]}`), http.StatusCreated, "", "")
		id := m["id"].(string)
		g := want(t, e.do("POST", "/scim/v2/Groups", writeTok, `{"displayName":"G","members":[{"value":"`+id+`"}]}`), http.StatusCreated, "", "")
		gid, gmeta := g["id"].(string), g["meta"].(map[string]any)
		for _, w := range []struct{ method, body string }{
			{"PUT", `{"displayName":"G","members":[{"value":"` + id + `"}]}`},
			{"PATCH", strings.Replace(patchOp, "%s", `{"op":"Add","path":"members","value":[{"value":"`+id+`","$ref":null}]}`, 1)},
		} {
			if got := want(t, e.do(w.method, "/scim/v2/Groups/"+gid, writeTok, w.body), 200, "", "")["meta"]; !reflect.DeepEqual(got, gmeta) {
				t.Errorf("a group %s that changes nothing moved meta: %v, was %v", w.method, got, gmeta)
			}
		}
		m = want(t, e.do("PATCH", "/scim/v2/Users/"+id, writeTok, strings.Replace(patchOp, "%s",
			`{"op":"Replace","path":"name.familyName","value":"Doe-Smith"},{"op":"Remove","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 2"}`, 1)), 200, "", "")
		if n := m["name"].(map[string]any); n["formatted"] != "Jo Doe" {
			t.Errorf("the client's formatted name: %v", n)
		}
		if ps := m["phoneNumbers"].([]any); len(ps) != 1 || ps[0].(map[string]any)["type"] != "work" {
			t.Errorf("phone numbers after removing the mobile one's value: %v", ps)
		}
		want(t, e.do("DELETE", "/scim/v2/Users/"+id, writeTok, ""), http.StatusNoContent, "", "")
		g = want(t, e.do("GET", "/scim/v2/Groups/"+gid, readTok, ""), 200, "", "")
		if g["meta"].(map[string]any)["version"] == gmeta["version"] || g["members"] != nil {
			t.Errorf("the group of a deleted user: %v", g)
		}
	})
}

// TestSCIMScopes pins the scope model the README states: scim:read reads
// only; scim:write and admin write; only admin switches active on a user
// of another source.
func TestSCIMScopes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		want(t, e.do("POST", "/scim/v2/Users", readTok, `{"userName":"r"}`), http.StatusForbidden, "", "scim:write")
		w := want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"w"}`), http.StatusCreated, "", "")
		a := want(t, e.do("POST", "/scim/v2/Users", adminTok, `{"userName":"a"}`), http.StatusCreated, "", "")
		for _, tok := range []string{readTok, writeTok, adminTok} {
			want(t, e.do("GET", "/scim/v2/Users/"+w["id"].(string), tok, ""), http.StatusOK, "", "")
		}
		want(t, e.do("DELETE", "/scim/v2/Users/"+a["id"].(string), readTok, ""), http.StatusForbidden, "", "scim:write")
		want(t, e.do("DELETE", "/scim/v2/Users/"+a["id"].(string), adminTok, ""), http.StatusNoContent, "", "")
		anna := e.idOf("anna")
		deactivate := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`
		want(t, e.do("PATCH", "/scim/v2/Users/"+anna, writeTok, deactivate), http.StatusBadRequest, "mutability", `owned by source "staff"`)
		if m := want(t, e.do("PATCH", "/scim/v2/Users/"+anna, adminTok, deactivate), http.StatusOK, "", ""); m["active"] != false {
			t.Errorf("admin deactivation: %v", m)
		}
	})
}

// TestSCIMGroupCycles: nested groups written over SCIM may not form a
// cycle, of two groups or more; the refused write changes nothing.
func TestSCIMGroupCycles(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		mk := func(name, members string) string {
			t.Helper()
			return want(t, e.do("POST", "/scim/v2/Groups", writeTok, `{"displayName":"`+name+`","members":[`+members+`]}`), http.StatusCreated, "", "")["id"].(string)
		}
		a := mk("A", "")
		b := mk("B", `{"value":"`+a+`","type":"Group"}`)
		c := mk("C", `{"value":"`+b+`","type":"Group"}`)
		for _, cyc := range []struct{ group, member string }{{a, b}, {a, c}} {
			want(t, e.do("PUT", "/scim/v2/Groups/"+cyc.group, writeTok, `{"displayName":"A","members":[{"value":"`+cyc.member+`"}]}`),
				http.StatusBadRequest, "invalidValue", "cycle")
			want(t, e.do("PATCH", "/scim/v2/Groups/"+cyc.group, writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"add","path":"members","value":[{"value":"`+cyc.member+`"}]}]}`), http.StatusBadRequest, "invalidValue", "cycle")
		}
		if m := want(t, e.do("GET", "/scim/v2/Groups/"+a, readTok, ""), 200, "", ""); m["members"] != nil {
			t.Errorf("a refused write left members: %v", m["members"])
		}
		// A diamond is no cycle.
		mk("D", `{"value":"`+b+`","type":"Group"},{"value":"`+c+`","type":"Group"}`)
	})
}

// TestSCIMLookupsUseIndexes: the filters identity providers look users and
// groups up by are answered from indexes on both stores (SPEC §2.1).
func TestSCIMLookupsUseIndexes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		for _, c := range []struct{ res, filter, index string }{
			{"Users", `userName eq "anna"`, "users_user_name_key"},
			{"Users", `externalId eq "E1"`, "users_source_external_id"},
			{"Users", `externalId eq "E1"`, "users_scim_external_id"},
			{"Users", `emails.value eq "a@example.com"`, "user_emails_value"},
			{"Users", `emails[type eq "work" and value eq "a@example.com"]`, "user_emails_value"},
			{"Users", `displayName eq "Anna Berg"`, "users_display_name"},
			{"Users", `meta.lastModified gt "2026-01-01T00:00:00Z"`, "users_updated_at"},
			{"Users", `id eq "01a2"`, "users_pkey"},
			{"Groups", `displayName eq "Research"`, "groups_display_name"},
		} {
			f, err := filter.Parse(c.filter)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := s.ExplainUsers(context.Background(), c.res, f)
			if err != nil {
				t.Fatalf("%s: %v", c.filter, err)
			}
			index := c.index
			if s.Driver() == store.SQLite && index == "users_pkey" {
				index = "sqlite_autoindex_users_1" // the TEXT primary key's index
			}
			if !strings.Contains(plan, index) {
				t.Errorf("%s does not use %s:\n%s", c.filter, index, plan)
			}
		}
	})
}

// TestSCIMManyValues: a multi-valued attribute holds at most
// patch.MaxValues values; more is 400 and writes nothing, by POST and PATCH.
func TestSCIMManyValues(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		emails := func(n int) string {
			vs := make([]string, n)
			for i := range vs {
				vs[i] = fmt.Sprintf(`{"value":"m%d@example.com"}`, i)
			}
			return "[" + strings.Join(vs, ",") + "]"
		}
		want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"many","emails":`+emails(patch.MaxValues+1)+`}`),
			http.StatusBadRequest, "invalidValue", "at most 200")
		m := want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"many","emails":`+emails(patch.MaxValues)+`}`), http.StatusCreated, "", "")
		want(t, e.do("PATCH", "/scim/v2/Users/"+m["id"].(string), writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"add","path":"emails","value":[{"value":"one-more@example.com"}]}]}`), http.StatusBadRequest, "invalidValue", "at most 200")
		if got := want(t, e.do("GET", "/scim/v2/Users/"+m["id"].(string), readTok, ""), 200, "", "")["emails"].([]any); len(got) != patch.MaxValues {
			t.Errorf("%d e-mails stored", len(got))
		}
	})
}

// TestSCIMLoginProfile: SCIM writes apply the identifier profile every
// source applies to logins (sources.LoginProblem).
func TestSCIMLoginProfile(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"\uff4adoe"}`), http.StatusBadRequest, "invalidValue", `write it as "jdoe"`)
		m := want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"jdoe"}`), http.StatusCreated, "", "")
		want(t, e.do("PATCH", "/scim/v2/Users/"+m["id"].(string), writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"userName","value":"jdoe\u202e"}]}`), http.StatusBadRequest, "invalidValue", "U+202E")
	})
}

// TestSCIMLoginNFC: a login decomposed (as macOS saves it) and composed
// is one login: stored composed, 409 for the other form, found by either.
func TestSCIMLoginNFC(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		m := want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"jose\u0301"}`), http.StatusCreated, "", "")
		if got := m["userName"]; got != "jos\u00e9" {
			t.Errorf("userName %q, want it composed", got)
		}
		want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"JOS\u00c9"}`), http.StatusConflict, "uniqueness", "already in use")
		for _, f := range []string{"jose%CC%81", "jos%C3%A9"} {
			l := want(t, e.do("GET", "/scim/v2/Users?filter=userName+eq+%22"+f+"%22", writeTok, ""), http.StatusOK, "", "")
			if l["totalResults"] != float64(1) {
				t.Errorf("filter userName eq %s: %v users, want 1", f, l["totalResults"])
			}
		}
		other := want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"jose"}`), http.StatusCreated, "", "")
		want(t, e.do("PUT", "/scim/v2/Users/"+other["id"].(string), writeTok, `{"userName":"jose\u0301"}`), http.StatusConflict, "uniqueness", "already in use")
	})
}
