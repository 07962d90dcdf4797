// Package patch applies SCIM 2.0 PATCH operations (RFC 7644 §3.5.2) to a resource held as a JSON document, accepting the request shapes of Entra ID and Okta.
//
// Decode reads and checks a PatchOp request; Apply runs its operations,
// in order and all or nothing, against the resource in its SCIM wire form
// (core attributes at the top level, the enterprise extension under its
// URN). Every error either returns is a *scimerr.Error with status 400.
//
// Decisions where the RFC leaves room or where clients stray from it,
// written down so that the SCIM layer can rely on them:
//
//   - op is matched case-insensitively ("Replace", Entra) and normalised
//     to lower case. A remove without a path is 400 noTarget (§3.5.2.2);
//     add and replace need a value, which may be null: null means
//     unassigned (RFC 7643 §2.5), so replace with null removes and add
//     with null changes nothing.
//   - Attribute names, sub-attribute names and schema URNs are matched
//     case-insensitively against the schema and written back with the
//     schema's spelling. An attribute the schema lacks is 400 invalidPath,
//     in a path, in a path-less value and inside a complex value.
//   - A path-less add or replace takes an object whose keys are paths:
//     plain ("active"), dotted ("name.givenName"), URN-qualified
//     ("urn:…:enterprise:2.0:User:department") or an extension URN holding
//     an object of that extension's attributes. The key "schemas" is
//     ignored, and so are read-only attributes (id, meta, groups, …) whose
//     value equals the current one, as Okta echoes id; "meta" is always
//     ignored there, since it is the server's. Any other write to a
//     read-only attribute is 400 mutability.
//   - Read-only sub-attributes inside a complex value, such as a member's
//     display, are dropped, as RFC 7643 §7 says a service provider
//     ignores them; targeting one with a path is 400 mutability.
//     Immutable sub-attributes (members.value, .type, .$ref) may be given
//     when a value is added but not replaced or removed through a path.
//     When a complex single-valued attribute changes, its read-only
//     sub-attributes (manager.displayName) are dropped, since they
//     described the old value; the server derives them again.
//   - Removing a required attribute (userName; a Group's displayName), or
//     replacing it with null, is 400 mutability.
//   - Values are coerced to the attribute's type: booleans also accept the
//     strings "true" and "false" in any case (Entra sends "False"); strings
//     must be strings; dateTime must be RFC 3339; complex values must be
//     objects, except that a string given for a complex attribute with a
//     "value" sub-attribute means {"value": string} (Entra sends the
//     manager's id bare); a multi-valued attribute takes an array or a
//     single value, which is taken as a one-element array.
//   - Add to a multi-valued attribute appends values that are not already
//     there: a value is already there when all it states equals an
//     existing value, or, when the attribute's "value" sub-attribute is
//     immutable (members), when its "value" is equal. Add to a complex
//     attribute merges sub-attributes, and so does replace of a complex
//     single-valued attribute (§3.5.2.3); replace of a whole multi-valued
//     attribute replaces every value; replace of a filtered path such as
//     emails[type eq "work"] replaces each matching value whole.
//   - A value filter matching nothing is 400 noTarget for replace and
//     remove (§3.5.2). For add, a filter matching nothing adds a new value
//     built from the filter's "eq" comparisons and the given value, so
//     that Entra's add of emails[type eq "work"].value creates the work
//     address; a filter that is not a conjunction of eq is noTarget then.
//   - remove with a path to a multi-valued attribute and a value (Entra's
//     older member removal: "path":"members","value":[{"value":"id"}])
//     removes the values that match the given ones, and succeeds when none
//     does; removing an attribute that is unassigned succeeds too.
//   - When an add or replace makes a value primary, any other value of
//     the same attribute stops being primary (RFC 7643 §2.4).
//   - An extension left without attributes is removed from the resource
//     and from its "schemas"; an extension given a value is added to them.
//   - Value filters are evaluated in Go: strings compare case-insensitively
//     unless the sub-attribute is caseExact, dateTime values as instants,
//     numbers as numbers; a comparison of different types is false (ne:
//     true); an unassigned sub-attribute matches only "eq null" and "ne x".
package patch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// The operations of RFC 7644 §3.5.2, in the lower case Operation.Op holds.
const (
	OpAdd     = "add"
	OpReplace = "replace"
	OpRemove  = "remove"
)

// Operation is one PATCH operation as decoded, Op normalised to lower case.
type Operation struct {
	Op    string          `json:"op"`
	Path  string          `json:"path,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Request is the body of a PATCH request (RFC 7644 §3.5.2).
type Request struct {
	Schemas    []string    `json:"schemas"`
	Operations []Operation `json:"Operations"`
}

// Decode reads a PATCH request from r and checks it: its schemas include
// the PatchOp URN, it has between 1 and maxOps operations (no upper limit
// when maxOps <= 0), each op is add, replace or remove in any case, each
// path parses, remove has a path, and add and replace have a value.
// Whether paths and values fit the resource is left to Apply.
func Decode(r io.Reader, maxOps int) (*Request, error) {
	var req Request
	dec := json.NewDecoder(r)
	if err := dec.Decode(&req); err != nil {
		return nil, scimerr.InvalidSyntax("the PATCH request body is not a PatchOp JSON object: " + jsonProblem(err))
	}
	if dec.More() {
		return nil, scimerr.InvalidSyntax("the PATCH request body has data after its JSON object")
	}
	if !hasPatchOp(req.Schemas) {
		return nil, scimerr.InvalidSyntax(fmt.Sprintf("the PATCH request's schemas must include %q", schema.PatchOpURN))
	}
	if len(req.Operations) == 0 {
		return nil, scimerr.InvalidSyntax("the PATCH request has no Operations")
	}
	if maxOps > 0 && len(req.Operations) > maxOps {
		return nil, scimerr.InvalidValue(fmt.Sprintf("the PATCH request has %d operations; at most %d are allowed", len(req.Operations), maxOps))
	}
	for i := range req.Operations {
		op := &req.Operations[i]
		if err := check(op); err != nil {
			return nil, at(i, err)
		}
	}
	return &req, nil
}

// check normalises op.Op and checks what can be checked without the
// resource.
func check(op *Operation) *scimerr.Error {
	op.Op = strings.ToLower(op.Op)
	switch op.Op {
	case OpAdd, OpReplace, OpRemove:
	case "":
		return scimerr.InvalidSyntax(`"op" is missing; it must be "add", "replace" or "remove"`)
	default:
		return scimerr.InvalidSyntax(fmt.Sprintf(`"op" is %q; it must be "add", "replace" or "remove"`, clip(op.Op)))
	}
	if op.Path != "" {
		if _, err := filter.ParsePath(op.Path); err != nil {
			return scimerr.InvalidPath(err.Error())
		}
	}
	switch {
	case op.Op == OpRemove && op.Path == "":
		return scimerr.NoTarget(`a "remove" operation needs a "path"`)
	case op.Op != OpRemove && len(op.Value) == 0:
		return scimerr.InvalidValue(fmt.Sprintf("an %q operation needs a \"value\"", op.Op))
	}
	return nil
}

func hasPatchOp(schemas []string) bool {
	for _, s := range schemas {
		if strings.EqualFold(s, schema.PatchOpURN) {
			return true
		}
	}
	return false
}

// jsonProblem describes a JSON decoding error without Go type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%q must not be a JSON %s", te.Field, te.Value)
		}
		return fmt.Sprintf("got a JSON %s", te.Value)
	}
	if errors.Is(err, io.EOF) {
		return "the body is empty"
	}
	return err.Error()
}

// at prefixes err's detail with the index of the operation that failed.
func at(i int, err *scimerr.Error) *scimerr.Error {
	e := *err
	e.Detail = fmt.Sprintf("Operations[%d]: %s", i, err.Detail)
	return &e
}

// clip shortens client text quoted in an error detail.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if s[i]&0xC0 != 0x80 {
			return s[:i] + "…"
		}
	}
	return s[:max] + "…"
}

// Apply runs ops against doc, the resource of type rt in SCIM wire form as
// encoding/json decodes it. It is all or nothing: on error doc is left as
// it was. Ops need not come from Decode; they are checked again here.
func Apply(doc map[string]any, rt schema.ResourceType, ops []Operation) error {
	if _, ok := rt.SchemaByURN(rt.Schema); !ok {
		return scimerr.InvalidPath(fmt.Sprintf("resource type %q has no known schema", rt.Name))
	}
	p := &patcher{rt: rt, doc: cloneMap(doc)}
	for i, op := range ops {
		if err := check(&op); err != nil {
			return at(i, err)
		}
		if err := p.apply(op); err != nil {
			return at(i, err)
		}
	}
	p.tidyExtensions()
	clear(doc)
	for k, v := range p.doc {
		doc[k] = v
	}
	return nil
}
