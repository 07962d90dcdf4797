package patch_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/scim/patch"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// FuzzApply decodes a fuzzed request and applies it to a fixed user: it
// must never panic, every error must be a 400 *scimerr.Error that leaves
// the user as it was, and a success must leave a user that still has its
// required userName and encodes as JSON.
func FuzzApply(f *testing.F) {
	for _, c := range userCases {
		f.Add(x(body(c.ops)))
	}
	for _, c := range groupCases {
		f.Add(x(body(c.ops)))
	}
	f.Add(x(body(`{"op":"add","path":"EXT","value":{"department":"x"}}`)))
	f.Add(x(body(`{"op":"replace","path":"emails[value sw \"a\" and (primary eq false or type ne \"x\")]","value":[{"value":"z"}]}`)))
	f.Add(x(body(`{"op":"Add","path":"addresses[type eq \"work\"].streetAddress","value":"1 Main St"},{"op":"remove","path":"roles"}`)))
	f.Add(x(body(`{"op":"replace","value":{"title":"x","name.middleName":"y","EXT:costCenter":"z"}}`)))
	f.Fuzz(func(t *testing.T, in string) {
		doc := decodeJSON(t, userDoc)
		before := decodeJSON(t, userDoc)
		req, err := patch.Decode(strings.NewReader(in), 50)
		if err != nil {
			checkErr(t, in, err)
			return
		}
		for _, op := range req.Operations {
			if op.Op != patch.OpAdd && op.Op != patch.OpReplace && op.Op != patch.OpRemove {
				t.Fatalf("Decode(%q) accepted op %q", in, op.Op)
			}
		}
		if err := patch.Apply(doc, schema.Users, req.Operations); err != nil {
			checkErr(t, in, err)
			if !reflect.DeepEqual(doc, before) {
				t.Fatalf("Apply(%q) failed with %v but changed the document to %s", in, err, show(doc))
			}
			return
		}
		if _, ok := doc["userName"].(string); !ok {
			t.Fatalf("Apply(%q) left userName %v", in, doc["userName"])
		}
		if _, err := json.Marshal(doc); err != nil {
			t.Fatalf("Apply(%q) left a document that does not encode: %v", in, err)
		}
	})
}

// customUserDoc is a user with values of custom attributes.
const customUserDoc = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + customURN + `"],
  "id": "u1", "userName": "anna", "active": true,
  "` + customURN + `": {"costCentreCode": "CC-1", "floor": 3, "tags": ["a", "B"], "remote": true,
    "hired": "2026-01-02T03:04:05Z"},
  "meta": {"resourceType": "User", "version": "W/\"3\""}
}`

// FuzzApplyCustom is FuzzApply on a user of a resource type with custom
// attributes of every type, addressed by their URN path, their bare name
// or a path-less value: besides FuzzApply's checks, a success must leave
// custom values only under the extension's URN, each a declared attribute
// spelled as declared and of its declared type, and "schemas" naming the
// extension exactly when it holds values.
func FuzzApplyCustom(f *testing.F) {
	for _, ops := range []string{
		`{"op":"replace","path":"URN:floor","value":3}`,
		`{"op":"add","path":"floor","value":7},{"op":"add","path":"URN:REMOTE","value":"False"}`,
		`{"op":"replace","value":{"URN":{"floor":4,"fte":0.75,"wiki":"https://wiki.example.com/a"}}}`,
		`{"op":"replace","value":{"URN:floor":5,"title":"x","costCentreCode":"CC-2"}}`,
		`{"op":"add","path":"URN:tags","value":["c"]},{"op":"remove","path":"URN:tags[value eq \"a\"]"}`,
		`{"op":"add","path":"URN:shifts","value":[1,2]},{"op":"replace","path":"URN:hired","value":"2026-01-02T03:04:05+01:00"}`,
		`{"op":"remove","path":"URN"}`,
		`{"op":"remove","path":"URN:floor"},{"op":"remove","path":"costCentreCode"}`,
		`{"op":"add","path":"URN:floor","value":"three"}`,
		`{"op":"replace","path":"URN:FLOOR","value":9007199254740993}`,
		`{"op":"replace","path":"URN:nosuch","value":1}`,
		`{"op":"replace","value":{"URN":{"tags":"x","remote":1}}}`,
		`{"op":"add","value":{"URN:hired":"yesterday"}}`,
	} {
		f.Add(body(strings.ReplaceAll(ops, "URN", customURN)))
	}
	f.Fuzz(func(t *testing.T, in string) {
		var doc, before map[string]any
		for _, m := range []*map[string]any{&doc, &before} {
			if err := json.Unmarshal([]byte(customUserDoc), m); err != nil {
				t.Fatal(err)
			}
		}
		req, err := patch.Decode(strings.NewReader(in), 50)
		if err != nil {
			checkErr(t, in, err)
			return
		}
		if err := patch.Apply(doc, customUsers, req.Operations); err != nil {
			checkErr(t, in, err)
			if !reflect.DeepEqual(doc, before) {
				t.Fatalf("Apply(%q) failed with %v but changed the document to %s", in, err, show(doc))
			}
			return
		}
		if _, ok := doc["userName"].(string); !ok {
			t.Fatalf("Apply(%q) left userName %v", in, doc["userName"])
		}
		if _, err := json.Marshal(doc); err != nil {
			t.Fatalf("Apply(%q) left a document that does not encode: %v", in, err)
		}
		for k := range doc {
			if strings.HasPrefix(strings.ToLower(k), "urn:") && k != customURN && k != schema.EnterpriseURN {
				t.Fatalf("Apply(%q) left the key %q at the top: %s", in, k, show(doc))
			}
		}
		ext, present := doc[customURN]
		if present {
			m, ok := ext.(map[string]any)
			if !ok || len(m) == 0 {
				t.Fatalf("Apply(%q): the custom extension is %v", in, ext)
			}
			for name, v := range m {
				a, ok := customSchema.Attribute(name)
				if !ok || a.Name != name {
					t.Fatalf("Apply(%q) left the custom attribute %q: %s", in, name, show(doc))
				}
				checkCustom(t, in, a, v)
			}
		}
		schemas, _ := doc["schemas"].([]any)
		if listed := slices.Contains(schemas, any(customURN)); listed != present {
			t.Fatalf("Apply(%q): schemas %v with the extension present %v", in, schemas, present)
		}
	})
}

func checkErr(t *testing.T, in string, err error) {
	t.Helper()
	var e *scimerr.Error
	if !errors.As(err, &e) || e.Status != 400 || e.ScimType == "" || e.Detail == "" {
		t.Fatalf("%q: got %v (%T), want a 400 *scimerr.Error with a scimType", in, err, err)
	}
}

// FuzzResource checks whole resources as POST and PUT send them: never a
// panic, every refusal a 400 *scimerr.Error, and a success only of
// attributes the schema has, spelled as it spells them, with no
// multi-valued attribute over patch.MaxValues.
func FuzzResource(f *testing.F) {
	f.Add(userDoc)
	f.Add(`{"userName":"a","title":"b","addresses":[{"type":"work","locality":"c","primary":"True"}],"shoeSize":1}`)
	f.Add(`{"USERNAME":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"CostCenter":"x","manager":"y"}}`)
	f.Add(`{"userName":"a","roles":"admin","x509Certificates":[{"value":1}],"name":{"middleName":null}}`)
	f.Add(`{"userName":"a","` + customURN + `":{"FLOOR":"3","remote":"true","tags":"x","hired":"2026-01-02T03:04:05+01:00"}}`)
	f.Add(`{"userName":"a","` + customURN + `:fte":1e400,"` + customURN + `:floor":9007199254740993,"shifts":[1,2.5]}`)
	f.Add(`{"userName":"a","` + customURN + `":{"title":"x"},"hired":"yesterday","remote":1}`)
	f.Fuzz(func(t *testing.T, in string) {
		var doc map[string]any
		if json.Unmarshal([]byte(in), &doc) != nil {
			return
		}
		out, err := patch.Resource(doc, customUsers)
		if err != nil {
			checkErr(t, in, err)
			return
		}
		for k, v := range out {
			if k == customURN {
				m, ok := v.(map[string]any)
				if !ok {
					t.Fatalf("Resource(%q): the custom extension is %T", in, v)
				}
				for name, cv := range m {
					a, ok := customSchema.Attribute(name)
					if !ok || a.Name != name {
						t.Fatalf("Resource(%q) kept the custom attribute %q", in, name)
					}
					checkCustom(t, in, a, cv)
				}
				continue
			}
			if k == schema.EnterpriseURN {
				m, ok := v.(map[string]any)
				if !ok {
					t.Fatalf("Resource(%q): the extension is %T", in, v)
				}
				for name := range m {
					if a, ok := schema.Enterprise.Attribute(name); !ok || a.Name != name {
						t.Fatalf("Resource(%q) kept the enterprise attribute %q", in, name)
					}
				}
				continue
			}
			a, _, ok := customUsers.Lookup("", k, "")
			if !ok || a.Name != k {
				t.Fatalf("Resource(%q) kept the attribute %q", in, k)
			}
			if vs, ok := v.([]any); ok && len(vs) > patch.MaxValues {
				t.Fatalf("Resource(%q) kept %d values of %s", in, len(vs), k)
			}
		}
	})
}

const customURN = "urn:example:params:scim:schemas:extension:roster:2.0:User"

// customSchema declares a custom attribute of every type.
var customSchema = schema.Custom(customURN, []*schema.Attribute{
	schema.CustomAttribute("costCentreCode", schema.TypeString, false, false),
	schema.CustomAttribute("tags", schema.TypeString, true, true),
	schema.CustomAttribute("remote", schema.TypeBoolean, false, false),
	schema.CustomAttribute("floor", schema.TypeInteger, false, false),
	schema.CustomAttribute("shifts", schema.TypeInteger, true, false),
	schema.CustomAttribute("fte", schema.TypeDecimal, false, false),
	schema.CustomAttribute("hired", schema.TypeDateTime, false, false),
	schema.CustomAttribute("wiki", schema.TypeReference, false, false),
})

var customUsers = schema.NewUsers(customSchema)

// checkCustom fails unless v has a's declared type: an integer within
// ±2^53, a finite number, a boolean, an RFC 3339 dateTime or a string; an
// array of them for a multi-valued attribute.
func checkCustom(t *testing.T, in string, a *schema.Attribute, v any) {
	t.Helper()
	vs := []any{v}
	if a.MultiValued {
		var ok bool
		if vs, ok = v.([]any); !ok {
			t.Fatalf("Resource(%q): multi-valued %s is %T", in, a.Name, v)
		}
	}
	for _, e := range vs {
		ok := false
		switch x := e.(type) {
		case bool:
			ok = a.Type == schema.TypeBoolean
		case float64:
			ok = a.Type == schema.TypeDecimal || a.Type == schema.TypeInteger && x == math.Trunc(x) && math.Abs(x) <= 1<<53
		case string:
			switch a.Type {
			case schema.TypeDateTime:
				_, err := time.Parse(time.RFC3339Nano, x)
				ok = err == nil
			case schema.TypeString, schema.TypeReference:
				ok = true
			}
		}
		if !ok {
			t.Fatalf("Resource(%q) kept %v (%T) for %s of type %s", in, e, e, a.Name, a.Type)
		}
	}
}
