package patch

import (
	"fmt"
	"strings"

	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// Edit is one operation on the multi-valued attribute that ApplyExcept
// leaves to its caller, checked and coerced as Apply would have.
type Edit struct {
	// Index is the operation's index in the request, for error details.
	Index int
	// Op is OpAdd (add Values that are not there yet), OpReplace (the
	// attribute becomes Values, which is never empty) or OpRemove (remove
	// Values, or the values Match selects; every value when both are
	// nil).
	Op string
	// Values are the values in wire form, read-only sub-attributes
	// dropped, repeats dropped. A remove's values each have "value".
	Values []map[string]any
	// Match, for a remove through any other value filter, selects the
	// values to remove, given in wire form (value, type, display, $ref).
	// The caller runs it over the values a piece at a time.
	Match func(v map[string]any) bool
	// Filtered marks a remove through a value filter: unlike a remove
	// that carries values, it is 400 noTarget when it removes nothing
	// (§3.5.2); NoTarget is that error.
	Filtered bool
	// Text names the target as error details do.
	Text string
}

// NoTarget is the error Apply gives when a filtered remove matches no
// value.
func (e Edit) NoTarget() *scimerr.Error {
	return at(e.Index, scimerr.NoTarget(fmt.Sprintf("%s matches no value", e.Text)))
}

// ApplyExcept is Apply for a resource held without its multi-valued
// complex attribute attr (a group without its members, which may be too
// many to hold): operations on attr are checked and coerced as Apply
// checks them and returned as Edits, in request order, for the caller to
// carry out on the stored values; all others are applied to doc, and
// errors are those Apply gives, in request order.
//
// split is false, and doc unchanged, when an operation on attr needs the
// values held together: a sub-attribute path, an add or replace through
// a value filter, or a remove carrying values without "value". The
// caller then applies the request to the whole resource with Apply.
func ApplyExcept(doc map[string]any, rt schema.ResourceType, ops []Operation, attr string) (edits []Edit, split bool, err error) {
	if _, ok := rt.SchemaByURN(rt.Schema); !ok {
		return nil, false, scimerr.InvalidPath(fmt.Sprintf("resource type %q has no known schema", rt.Name))
	}
	a, _, ok := rt.Lookup("", attr, "")
	if !ok || !a.MultiValued || a.Type != schema.TypeComplex {
		return nil, false, scimerr.InvalidPath(fmt.Sprintf("%s has no multi-valued complex attribute %q", rt.Name, clip(attr)))
	}
	p := &patcher{rt: rt, doc: cloneMap(doc), except: a}
	for i, op := range ops {
		p.index = i
		if err := check(&op); err != nil {
			return nil, false, at(i, err)
		}
		if err := p.apply(op); err != nil {
			return nil, false, at(i, err)
		}
		if p.unsplit {
			return nil, false, nil
		}
	}
	p.tidyExtensions()
	clear(doc)
	for k, v := range p.doc {
		doc[k] = v
	}
	return p.edits, true, nil
}

// edit records op on p.except as an Edit, or marks the request unsplit.
func (p *patcher) edit(op string, t *target, val any, withValue bool) *scimerr.Error {
	a := t.attr
	e := Edit{Index: p.index, Op: op, Text: t.text}
	switch {
	case t.sub != nil:
		p.unsplit = true
		return nil
	case t.filter != nil:
		if op != OpRemove {
			p.unsplit = true
			return nil
		}
		e.Filtered = true
		if vs, ok := valueTerms(a, t.filter); ok {
			e.Values = vs
			break
		}
		f := t.filter
		e.Match = func(v map[string]any) bool { return match(a, f, v) }
	case op == OpRemove && !withValue:
	case op == OpRemove:
		given, err := coerce(a, val, t.text)
		if err != nil {
			return err
		}
		vs, _ := given.([]any)
		if len(vs) == 0 {
			return nil
		}
		id, _ := a.Sub("value")
		for _, v := range dedupe(a, vs) {
			m, _ := v.(map[string]any)
			if _, _, ok := lookupKey(m, id.Name); !ok {
				p.unsplit = true
				return nil
			}
			e.Values = append(e.Values, m)
		}
	default:
		v, err := coerce(a, val, t.text)
		if err != nil {
			return err
		}
		vs, _ := v.([]any)
		if len(vs) == 0 {
			if op == OpAdd {
				return nil
			}
			e.Op = OpRemove // replace with null or []: unassigned
			break
		}
		for _, v := range dedupe(a, vs) {
			m, ok := v.(map[string]any)
			if !ok {
				return scimerr.InvalidValue(fmt.Sprintf("%s needs objects as its values, got %s", t.text, kind(v)))
			}
			e.Values = append(e.Values, m)
		}
	}
	p.edits = append(p.edits, e)
	return nil
}

// valueTerms returns the values a filter of `value eq "x"` terms joined
// by or selects, as {"value": "x"} objects.
func valueTerms(a *schema.Attribute, f filter.Expr) ([]map[string]any, bool) {
	id, ok := a.Sub("value")
	if !ok {
		return nil, false
	}
	var out []map[string]any
	var walk func(filter.Expr) bool
	walk = func(f filter.Expr) bool {
		switch f := f.(type) {
		case *filter.Or:
			return walk(f.Left) && walk(f.Right)
		case *filter.Compare:
			if f.Op != filter.Eq || f.Value.Kind != filter.KindString || f.Attr.URN != "" || f.Attr.Sub != "" ||
				!strings.EqualFold(f.Attr.Name, id.Name) {
				return false
			}
			out = append(out, map[string]any{id.Name: f.Value.Str})
			return true
		}
		return false
	}
	return out, walk(f)
}
