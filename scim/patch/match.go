package patch

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// checkFilter checks that every attribute a value filter of a names is
// one of a's sub-attributes, so that an unknown name fails even when the
// attribute has no values to test.
func checkFilter(a *schema.Attribute, e filter.Expr) *scimerr.Error {
	var err *scimerr.Error
	filter.Walk(e, func(e filter.Expr) bool {
		var p filter.AttrPath
		switch e := e.(type) {
		case *filter.Compare:
			p = e.Attr
		case *filter.Present:
			p = e.Attr
		case *filter.ValuePath:
			err = scimerr.InvalidPath("value filters cannot be nested")
			return false
		default:
			return err == nil
		}
		if err == nil && subOf(a, p.Name) == nil {
			err = scimerr.InvalidPath(fmt.Sprintf("%s has no sub-attribute %q to filter on", a.Name, clip(p.Name)))
		}
		return false
	})
	return err
}

// subOf returns the sub-attribute of a that a filter names; for a
// multi-valued attribute of simple values, "value" is the value itself.
func subOf(a *schema.Attribute, name string) *schema.Attribute {
	if a.Type != schema.TypeComplex {
		if strings.EqualFold(name, "value") {
			return a
		}
		return nil
	}
	s, _ := a.Sub(name)
	return s
}

// field returns the value of the sub-attribute called name in v.
func field(a *schema.Attribute, v any, name string) (*schema.Attribute, any) {
	sub := subOf(a, name)
	if sub == nil {
		return nil, nil
	}
	if a.Type != schema.TypeComplex {
		return sub, v
	}
	m, _ := v.(map[string]any)
	_, f, _ := lookupKey(m, sub.Name)
	return sub, f
}

// match reports whether v, one value of the multi-valued attribute a,
// satisfies e. checkFilter has accepted e.
func match(a *schema.Attribute, e filter.Expr, v any) bool {
	switch e := e.(type) {
	case *filter.And:
		return match(a, e.Left, v) && match(a, e.Right, v)
	case *filter.Or:
		return match(a, e.Left, v) || match(a, e.Right, v)
	case *filter.Not:
		return !match(a, e.X, v)
	case *filter.Present:
		_, f := field(a, v, e.Attr.Name)
		return present(f)
	case *filter.Compare:
		sub, f := field(a, v, e.Attr.Name)
		if sub == nil {
			return false
		}
		return compare(sub, f, e.Op, e.Value)
	}
	return false
}

// present is the "pr" test of RFC 7644 §3.4.2.2: assigned, not an empty
// string, array or object.
func present(f any) bool {
	switch f := f.(type) {
	case nil:
		return false
	case string:
		return f != ""
	case []any:
		return len(f) > 0
	case map[string]any:
		return len(f) > 0
	}
	return true
}

// compare evaluates f op want for the sub-attribute sub.
func compare(sub *schema.Attribute, f any, op filter.Op, want filter.Value) bool {
	if f == nil || want.Kind == filter.KindNull {
		isNull := f == nil
		wantNull := want.Kind == filter.KindNull
		switch op {
		case filter.Eq:
			return isNull && wantNull
		case filter.Ne:
			return isNull != wantNull
		}
		return false
	}
	c, ok := order(sub, f, op, want)
	if !ok {
		return op == filter.Ne
	}
	switch op {
	case filter.Eq:
		return c == 0
	case filter.Ne:
		return c != 0
	case filter.Gt:
		return c > 0
	case filter.Ge:
		return c >= 0
	case filter.Lt:
		return c < 0
	case filter.Le:
		return c <= 0
	}
	// co, sw and ew are decided by order, which reports them as 0 when
	// they hold.
	return c == 0
}

// order compares f with want: -1, 0 or 1, and false when they are of
// different types. For co, sw and ew it returns 0 when the test holds and
// 1 otherwise.
func order(sub *schema.Attribute, f any, op filter.Op, want filter.Value) (int, bool) {
	switch x := f.(type) {
	case string:
		if want.Kind != filter.KindString {
			return 0, false
		}
		y := want.Str
		if sub.Type == schema.TypeDateTime && op != filter.Co && op != filter.Sw && op != filter.Ew {
			tx, err1 := time.Parse(time.RFC3339Nano, x)
			ty, err2 := time.Parse(time.RFC3339Nano, y)
			if err1 == nil && err2 == nil {
				return tx.Compare(ty), true
			}
		}
		if !sub.CaseExact {
			x, y = strings.ToLower(x), strings.ToLower(y)
		}
		var hold bool
		switch op {
		case filter.Co:
			hold = strings.Contains(x, y)
		case filter.Sw:
			hold = strings.HasPrefix(x, y)
		case filter.Ew:
			hold = strings.HasSuffix(x, y)
		default:
			return strings.Compare(x, y), true
		}
		if hold {
			return 0, true
		}
		return 1, true
	case bool:
		if (want.Kind != filter.KindTrue && want.Kind != filter.KindFalse) || (op != filter.Eq && op != filter.Ne) {
			return 0, false
		}
		if x == want.Bool {
			return 0, true
		}
		return 1, true
	case float64, json.Number:
		if want.Kind != filter.KindNumber {
			return 0, false
		}
		var fx float64
		switch x := x.(type) {
		case float64:
			fx = x
		case json.Number:
			var err error
			if fx, err = strconv.ParseFloat(string(x), 64); err != nil {
				return 0, false
			}
		}
		fy, err := strconv.ParseFloat(string(want.Num), 64)
		if err != nil {
			return 0, false
		}
		switch {
		case fx < fy:
			return -1, true
		case fx > fy:
			return 1, true
		case fx == fy:
			return 0, true
		}
	}
	return 0, false
}
