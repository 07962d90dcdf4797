package patch_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/scim/patch"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// carryOut applies edits to members (values in wire form) as a store
// applies them to memberships: by value, ignoring case as Apply compares
// members, in order.
func carryOut(members []any, edits []patch.Edit) ([]any, error) {
	value := func(v any) string {
		m, _ := v.(map[string]any)
		s, _ := m["value"].(string)
		return strings.ToLower(s)
	}
	has := func(vs []any, id string) int {
		return slices.IndexFunc(vs, func(v any) bool { return value(v) == id })
	}
	out := slices.Clone(members)
	for _, e := range edits {
		switch e.Op {
		case patch.OpRemove:
			n := len(out)
			switch {
			case e.Match != nil:
				out = slices.DeleteFunc(out, func(o any) bool { return e.Match(o.(map[string]any)) })
			case e.Values == nil:
				out = nil
				continue
			}
			for _, v := range e.Values {
				out = slices.DeleteFunc(out, func(o any) bool { return value(o) == value(v) })
			}
			if e.Filtered && n == len(out) {
				return nil, e.NoTarget()
			}
		case patch.OpReplace:
			out = nil
			fallthrough
		case patch.OpAdd:
			for _, v := range e.Values {
				if has(out, value(v)) < 0 {
					out = append(out, v)
				}
			}
		}
	}
	return out, nil
}

// membersOf is the members of a document, as a list for comparison.
func membersOf(doc map[string]any) []string {
	var ids []string
	ms, _ := doc["members"].([]any)
	for _, m := range ms {
		v, _ := m.(map[string]any)["value"].(string)
		ids = append(ids, strings.ToLower(v))
	}
	slices.Sort(ids)
	return ids
}

// TestApplyExcept: for every request it can split, ApplyExcept leaves
// the group without its members as Apply leaves it, and its edits,
// carried out on the members, leave them as Apply does, errors included;
// the requests that need the members' values are not split. An error is
// Apply's, whether it comes from ApplyExcept or from carrying out.
func TestApplyExcept(t *testing.T) {
	for _, c := range []struct {
		name, ops string
		split     bool
		edits     int
	}{
		{"add one", `{"op":"add","path":"members","value":[{"value":"u3","display":"Carl"}]}`, true, 1},
		{"add one there", `{"op":"Add","path":"members","value":[{"value":"U1"}]}`, true, 1},
		{"add a bare id", `{"op":"add","path":"members","value":"u3"}`, true, 1},
		{"add null", `{"op":"add","path":"members","value":null}`, true, 0},
		{"add repeated", `{"op":"add","path":"members","value":[{"value":"u3"},{"value":"u3"}]}`, true, 1},
		{"add with a urn", `{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:Group:members","value":[{"value":"u3"}]}`, true, 1},
		{"remove by filter (Entra)", `{"op":"Remove","path":"members[value eq \"u2\"]"}`, true, 1},
		{"remove by filter in upper case", `{"op":"remove","path":"members[value eq \"U2\"]"}`, true, 1},
		{"remove by filter, or", `{"op":"remove","path":"members[value eq \"u2\" or value eq \"u9\"]"}`, true, 1},
		{"remove a non-member by filter", `{"op":"remove","path":"members[value eq \"u9\"]"}`, true, 1},
		{"remove with values (Okta)", `{"op":"remove","path":"members","value":[{"value":"u1"},{"value":"u9"}]}`, true, 1},
		{"remove a non-member with a value", `{"op":"remove","path":"members","value":[{"value":"u9"}]}`, true, 1},
		{"remove all", `{"op":"remove","path":"members"}`, true, 1},
		{"replace", `{"op":"replace","path":"members","value":[{"value":"u2"},{"value":"u3"}]}`, true, 1},
		{"replace with nothing", `{"op":"replace","path":"members","value":[]}`, true, 1},
		{"replace with null", `{"op":"replace","path":"members","value":null}`, true, 1},
		{"path-less replace (Okta)", `{"op":"replace","value":{"id":"g1","displayName":"R2","members":[{"value":"u3"}]}}`, true, 1},
		{"path-less add", `{"op":"add","value":{"members":[{"value":"u3"}],"externalId":"x"}}`, true, 1},
		{"in order", `{"op":"remove","path":"members"},{"op":"add","path":"members","value":[{"value":"u1"}]},{"op":"replace","path":"displayName","value":"R3"}`, true, 2},
		{"add then remove", `{"op":"add","path":"members","value":[{"value":"u3"}]},{"op":"remove","path":"members[value eq \"u3\"]"}`, true, 2},
		{"displayName only", `{"op":"replace","path":"displayName","value":"R4"}`, true, 0},
		{"remove displayName", `{"op":"remove","path":"displayName"}`, true, 0},
		{"members of another type", `{"op":"add","path":"members","value":[1]}`, true, 0},
		{"a member's display", `{"op":"replace","path":"members[value eq \"u1\"].display","value":"x"}`, true, 0},
		{"a member's value", `{"op":"remove","path":"members.value"}`, true, 0},
		{"remove by type", `{"op":"remove","path":"members[type eq \"User\"]"}`, true, 1},
		{"remove by and", `{"op":"remove","path":"members[value eq \"u1\" and type eq \"User\"]"}`, true, 1},
		{"remove by display", `{"op":"remove","path":"members[display sw \"b\"]"}`, true, 1},
		{"remove by display, none", `{"op":"remove","path":"members[display eq \"Zed\"]"}`, true, 1},
		{"remove by not", `{"op":"remove","path":"members[not (value eq \"u1\")]"}`, true, 1},
		{"replace by filter", `{"op":"replace","path":"members[value eq \"u1\"]","value":{"value":"u3"}}`, false, 0},
		{"add by filter", `{"op":"add","path":"members[value eq \"u3\"]","value":{"type":"User"}}`, false, 0},
		{"add a type", `{"op":"add","path":"members.type","value":"User"}`, false, 0},
		{"remove values without value", `{"op":"remove","path":"members","value":[{"type":"User"}]}`, false, 0},
		{"an error after a split", `{"op":"remove","path":"members"},{"op":"replace","path":"nope","value":1}`, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := patch.Decode(strings.NewReader(body(c.ops)), 0)
			if err != nil {
				t.Fatal(err)
			}
			edits, split, err := exceptMatchesApply(t, req.Operations)
			if err == nil && split != c.split {
				t.Fatalf("split %v, want %v", split, c.split)
			}
			if err == nil && split && len(edits) != c.edits {
				t.Errorf("%d edits, want %d: %+v", len(edits), c.edits, edits)
			}
		})
	}
}

// exceptMatchesApply applies ops to groupDoc twice, with Apply and with
// ApplyExcept and carryOut, and fails unless both give the same group
// and the same error; an unsplit request must leave the document alone.
func exceptMatchesApply(t *testing.T, ops []patch.Operation) ([]patch.Edit, bool, error) {
	t.Helper()
	whole := decodeJSON(t, groupDoc)
	wantErr := patch.Apply(whole, schema.Groups, ops)

	doc := decodeJSON(t, groupDoc)
	members := doc["members"].([]any)
	delete(doc, "members")
	before := decodeJSON(t, groupDoc)
	delete(before, "members")
	edits, split, err := patch.ApplyExcept(doc, schema.Groups, ops, "members")
	if err == nil && !split {
		if !reflect.DeepEqual(doc, before) {
			t.Fatalf("not split, yet the doc changed: %s", show(doc))
		}
		return edits, split, nil
	}
	var got []any
	if err == nil {
		got, err = carryOut(members, edits)
	}
	if !sameError(err, wantErr) {
		t.Fatalf("error %v, want Apply's %v", err, wantErr)
	}
	if err != nil {
		return edits, split, err
	}
	wantMembers := membersOf(whole)
	delete(whole, "members")
	if !reflect.DeepEqual(doc, whole) {
		t.Errorf("the group without members:\n%s\nwant\n%s", show(doc), show(whole))
	}
	if g := membersOf(map[string]any{"members": got}); !slices.Equal(g, wantMembers) {
		t.Errorf("members %v, want %v", g, wantMembers)
	}
	for _, e := range edits {
		for _, v := range e.Values {
			if _, ok := v["display"]; ok {
				t.Errorf("edit %+v keeps the read-only display", e)
			}
		}
	}
	return edits, split, nil
}

// FuzzApplyExcept: whatever the request, ApplyExcept and its edits
// carried out leave a group as Apply leaves it, errors included, or
// leave the request to Apply.
func FuzzApplyExcept(f *testing.F) {
	for _, c := range groupCases {
		f.Add(body(c.ops))
	}
	f.Add(body(`{"op":"remove","path":"members[value eq \"U2\" or display sw \"a\"]"},{"op":"add","path":"members","value":"u2"}`))
	f.Add(body(`{"op":"replace","value":{"members":[{"value":"u9","type":"Group"}],"displayName":"x"}},{"op":"remove","path":"members","value":{"value":"u9"}}`))
	f.Add(body(`{"op":"remove","path":"members[not (type eq \"User\")]"},{"op":"replace","path":"members","value":null}`))
	f.Fuzz(func(t *testing.T, in string) {
		req, err := patch.Decode(strings.NewReader(in), 50)
		if err != nil {
			return
		}
		exceptMatchesApply(t, req.Operations)
	})
}

func sameError(got, want error) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	var g, w *scimerr.Error
	return errors.As(got, &g) && errors.As(want, &w) && reflect.DeepEqual(g, w)
}
