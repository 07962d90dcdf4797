// Package filter parses SCIM 2.0 filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2) into an AST; it knows nothing of storage.
//
// Parse returns a tree of *Compare, *Present, *And, *Or, *Not and
// *ValuePath nodes; ParsePath returns a *Path. Attribute names, operators
// and the keywords and, or, not, pr, true, false and null are
// case-insensitive (RFC 7643 §2.1, RFC 7644 §3.4.2.2), so the AST keeps
// names as written and callers compare them with strings.EqualFold or
// AttrPath.EqualFold.
//
// Decisions where the RFC leaves room, written down here so that the SCIM
// layer and the store can rely on them:
//
//   - Precedence follows RFC 7644 errata 4670: grouping, then attribute
//     operators, then not, and, or; and/or are left-associative.
//   - Inside a value filter (emails[...]) attribute paths are sub-attributes
//     of the bracketed attribute: no schema URI, no further sub-attribute,
//     and no nested value filter (errata 4690 and 7322).
//   - gt, ge, lt and le do not accept true, false or null; co, sw and ew
//     accept only strings; pr takes no value.
//   - Where the ABNF requires one space, any run of spaces and tabs is
//     accepted, as is white space at either end and just inside
//     parentheses and brackets; a missing required space is an error.
//   - Strings and numbers follow JSON (RFC 7159); an unpaired UTF-16
//     surrogate escape is an error rather than a silent U+FFFD.
//   - A PATCH path is attrPath or valuePath [subAttr] (Figure 7); the
//     attrExp form proposed by errata 7122 is not accepted.
//   - Inputs longer than MaxLength bytes or nesting deeper than MaxDepth
//     parentheses and brackets are refused before they cost anything.
package filter

import (
	"encoding/json"
	"strings"
)

// Expr is a node of a parsed filter. The set of implementations is closed.
type Expr interface {
	// String renders the node in canonical form; see Format.
	String() string
	expr()
}

// Op is a comparison operator, in its canonical lower-case spelling.
type Op string

// The comparison operators of RFC 7644 Table 3. The presence test "pr" is
// the Present node, not an Op.
const (
	Eq Op = "eq"
	Ne Op = "ne"
	Co Op = "co"
	Sw Op = "sw"
	Ew Op = "ew"
	Gt Op = "gt"
	Ge Op = "ge"
	Lt Op = "lt"
	Le Op = "le"
)

// ops maps the lower-cased spelling of every operator, pr included, so that
// the parser needs a single lookup.
var ops = map[string]Op{
	"eq": Eq, "ne": Ne, "co": Co, "sw": Sw, "ew": Ew,
	"gt": Gt, "ge": Ge, "lt": Lt, "le": Le, "pr": "pr",
}

// AttrPath names an attribute: [URN ":"] Name ["." Sub].
type AttrPath struct {
	// URN is the schema URI the name is qualified with, such as
	// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", or ""
	// when the name is not qualified.
	URN string
	// Name is the attribute name as written.
	Name string
	// Sub is the sub-attribute name as written, or "".
	Sub string
}

// String renders the path as it is written in a filter.
func (a AttrPath) String() string {
	var b strings.Builder
	a.write(&b)
	return b.String()
}

func (a AttrPath) write(b *strings.Builder) {
	if a.URN != "" {
		b.WriteString(a.URN)
		b.WriteByte(':')
	}
	b.WriteString(a.Name)
	if a.Sub != "" {
		b.WriteByte('.')
		b.WriteString(a.Sub)
	}
}

// EqualFold reports whether a and o name the same attribute, ignoring case
// as RFC 7643 §2.1 requires. It does not resolve a missing URN to the
// resource's core schema; that needs the schema, which this package lacks.
func (a AttrPath) EqualFold(o AttrPath) bool {
	return strings.EqualFold(a.URN, o.URN) &&
		strings.EqualFold(a.Name, o.Name) &&
		strings.EqualFold(a.Sub, o.Sub)
}

// ValueKind tells which JSON type a Value has.
type ValueKind uint8

// The zero ValueKind is deliberately invalid so that a forgotten Kind in a
// hand-built Value is not mistaken for an empty string.
const (
	KindString ValueKind = iota + 1
	KindNumber
	KindTrue
	KindFalse
	KindNull
)

func (k ValueKind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindNumber:
		return "number"
	case KindTrue:
		return "true"
	case KindFalse:
		return "false"
	case KindNull:
		return "null"
	}
	return "invalid"
}

// Value is a comparison value (compValue in the ABNF).
type Value struct {
	Kind ValueKind
	// Str holds a string value, JSON escapes already decoded.
	Str string
	// Num holds a number exactly as written, so that the store decides how
	// to compare it (integer, decimal or dateTime columns differ).
	Num json.Number
	// Bool is true for KindTrue and false otherwise; it saves callers a
	// comparison of Kind when they only want the boolean.
	Bool bool
}

// Any returns the value as a string, json.Number, bool or nil, ready to be
// bound as a query parameter.
func (v Value) Any() any {
	switch v.Kind {
	case KindString:
		return v.Str
	case KindNumber:
		return v.Num
	case KindTrue, KindFalse:
		return v.Bool
	}
	return nil
}

// String renders the value as JSON.
func (v Value) String() string {
	switch v.Kind {
	case KindString:
		var b strings.Builder
		quote(&b, v.Str)
		return b.String()
	case KindNumber:
		return string(v.Num)
	case KindTrue:
		return "true"
	case KindFalse:
		return "false"
	case KindNull:
		return "null"
	}
	return "<invalid value>"
}

// Compare is attrPath compareOp compValue.
type Compare struct {
	Attr  AttrPath
	Op    Op
	Value Value
}

// Present is attrPath "pr".
type Present struct {
	Attr AttrPath
}

// And is Left "and" Right.
type And struct {
	Left, Right Expr
}

// Or is Left "or" Right.
type Or struct {
	Left, Right Expr
}

// Not is "not" "(" X ")".
type Not struct {
	X Expr
}

// ValuePath is attrPath "[" valFilter "]": it matches when one value of the
// multi-valued attribute Attr matches Filter. Attribute paths inside Filter
// name sub-attributes of Attr and carry neither URN nor Sub.
type ValuePath struct {
	Attr   AttrPath
	Filter Expr
}

func (*Compare) expr()   {}
func (*Present) expr()   {}
func (*And) expr()       {}
func (*Or) expr()        {}
func (*Not) expr()       {}
func (*ValuePath) expr() {}

func (e *Compare) String() string   { return Format(e) }
func (e *Present) String() string   { return Format(e) }
func (e *And) String() string       { return Format(e) }
func (e *Or) String() string        { return Format(e) }
func (e *Not) String() string       { return Format(e) }
func (e *ValuePath) String() string { return Format(e) }

// Path is a PATCH operation's target (RFC 7644 §3.5.2, Figure 7):
// Attr, optionally narrowed to the values matching Filter, optionally
// narrowed further to their sub-attribute Sub.
type Path struct {
	Attr AttrPath
	// Filter is nil unless the path has a value filter in brackets; its
	// attribute paths are relative to Attr, as in ValuePath.
	Filter Expr
	// Sub is the sub-attribute after "].", or "". A sub-attribute without
	// brackets, as in name.givenName, is Attr.Sub instead.
	Sub string
}

// String renders the path in canonical form; ParsePath(p.String()) yields
// a Path equal to p.
func (p *Path) String() string {
	var b strings.Builder
	p.Attr.write(&b)
	if p.Filter != nil {
		b.WriteByte('[')
		format(&b, p.Filter, precOr)
		b.WriteByte(']')
		if p.Sub != "" {
			b.WriteByte('.')
			b.WriteString(p.Sub)
		}
	}
	return b.String()
}

// Binding strengths, weakest first, used to put back only the parentheses
// the tree needs.
const (
	precOr = iota + 1
	precAnd
	precUnary
)

// Format renders e in canonical form: lower-case keywords and operators,
// single spaces, "not (...)", JSON-escaped strings, numbers as written and
// parentheses only where the tree needs them. For any e that Parse returned,
// Parse(Format(e)) yields a tree equal to e.
func Format(e Expr) string {
	var b strings.Builder
	format(&b, e, precOr)
	return b.String()
}

func format(b *strings.Builder, e Expr, outer int) {
	switch e := e.(type) {
	case *Or:
		openParen(b, outer > precOr)
		format(b, e.Left, precOr)
		b.WriteString(" or ")
		// The right operand needs parentheses if it is itself an Or,
		// because "or" groups to the left.
		format(b, e.Right, precAnd)
		closeParen(b, outer > precOr)
	case *And:
		openParen(b, outer > precAnd)
		format(b, e.Left, precAnd)
		b.WriteString(" and ")
		format(b, e.Right, precUnary)
		closeParen(b, outer > precAnd)
	case *Not:
		b.WriteString("not (")
		format(b, e.X, precOr)
		b.WriteByte(')')
	case *Compare:
		e.Attr.write(b)
		b.WriteByte(' ')
		b.WriteString(string(e.Op))
		b.WriteByte(' ')
		b.WriteString(e.Value.String())
	case *Present:
		e.Attr.write(b)
		b.WriteString(" pr")
	case *ValuePath:
		e.Attr.write(b)
		b.WriteByte('[')
		format(b, e.Filter, precOr)
		b.WriteByte(']')
	}
}

func openParen(b *strings.Builder, paren bool) {
	if paren {
		b.WriteByte('(')
	}
}

func closeParen(b *strings.Builder, paren bool) {
	if paren {
		b.WriteByte(')')
	}
}

// Walk calls fn for e and then, if fn returns true, for each of e's
// children, depth first, left to right. It descends into value filters,
// whose attribute paths are relative to the enclosing ValuePath.
func Walk(e Expr, fn func(Expr) bool) {
	if e == nil || !fn(e) {
		return
	}
	switch e := e.(type) {
	case *And:
		Walk(e.Left, fn)
		Walk(e.Right, fn)
	case *Or:
		Walk(e.Left, fn)
		Walk(e.Right, fn)
	case *Not:
		Walk(e.X, fn)
	case *ValuePath:
		Walk(e.Filter, fn)
	}
}
