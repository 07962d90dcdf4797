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
