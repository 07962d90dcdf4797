package patch_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

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
	f.Fuzz(func(t *testing.T, in string) {
		var doc map[string]any
		if json.Unmarshal([]byte(in), &doc) != nil {
			return
		}
		out, err := patch.Resource(doc, schema.Users)
		if err != nil {
			checkErr(t, in, err)
			return
		}
		for k, v := range out {
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
			a, _, ok := schema.Users.Lookup("", k, "")
			if !ok || a.Name != k {
				t.Fatalf("Resource(%q) kept the attribute %q", in, k)
			}
			if vs, ok := v.([]any); ok && len(vs) > patch.MaxValues {
				t.Fatalf("Resource(%q) kept %d values of %s", in, len(vs), k)
			}
		}
	})
}
