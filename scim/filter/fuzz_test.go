package filter_test

import (
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/rosterd/roster/scim/filter"
)

// seed adds the table inputs to the corpus, except the few that exist to
// test the size limits and that the targets would skip anyway.
func seed(f *testing.F, ins ...string) {
	for _, in := range ins {
		if len(in) <= maxFuzzLen {
			f.Add(in)
		}
	}
}

func inputs[T any](cases []T, in func(T) string) []string {
	var out []string
	for _, c := range cases {
		out = append(out, in(c))
	}
	return out
}

func FuzzParse(f *testing.F) {
	seed(f, inputs(parseCases, func(c parseCase) string { return c.in })...)
	seed(f, inputs(errorCases, func(c errorCase) string { return c.in })...)
	seed(f, inputs(pathCases, func(c pathCase) string { return c.in })...)
	f.Fuzz(func(t *testing.T, in string) {
		skipLong(t, in)
		e, err := filter.Parse(in)
		if err != nil {
			checkError(t, in, err)
			return
		}
		if e == nil {
			t.Fatalf("Parse(%q) returned neither a tree nor an error", in)
		}
		out := filter.Format(e)
		if len(out) > filter.MaxLength {
			// "not(" becomes "not (", so a filter at the limit may
			// format past it; that is not a round-trip failure.
			return
		}
		again, err := filter.Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its canonical form %q fails: %v", in, out, err)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("Parse(%q) and Parse(Format(…) = %q) differ:\n%s\n%s", in, out, dump(e), dump(again))
		}
		if out2 := filter.Format(again); out2 != out {
			t.Fatalf("Format is not stable: %q then %q", out, out2)
		}
		checkTree(t, in, e, false)
	})
}

func FuzzParsePath(f *testing.F) {
	seed(f, inputs(pathCases, func(c pathCase) string { return c.in })...)
	seed(f, inputs(pathErrorCases, func(c errorCase) string { return c.in })...)
	seed(f, inputs(parseCases, func(c parseCase) string { return c.in })...)
	f.Fuzz(func(t *testing.T, in string) {
		skipLong(t, in)
		p, err := filter.ParsePath(in)
		if err != nil {
			checkError(t, in, err)
			return
		}
		out := p.String()
		if len(out) > filter.MaxLength {
			return
		}
		again, err := filter.ParsePath(out)
		if err != nil {
			t.Fatalf("ParsePath(%q) ok, but its canonical form %q fails: %v", in, out, err)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("ParsePath(%q) and ParsePath(%q) differ: %+v vs %+v", in, out, *p, *again)
		}
		if p.Filter == nil && p.Sub != "" {
			t.Fatalf("ParsePath(%q): Sub %q without a value filter", in, p.Sub)
		}
		if p.Filter != nil {
			checkTree(t, in, p.Filter, true)
		}
	})
}

// maxFuzzLen bounds what the fuzz targets parse. Go's fuzzer treats a new
// iteration count of any loop as new coverage, so longer words keep looking
// interesting, and it minimises each interesting input with O(n²) runs,
// counting none of them as executions: on inputs of kilobytes that takes its
// whole 60-second minimisation budget per input. Nothing in the grammar needs
// more than a few hundred bytes to reach (51 parentheses trip MaxDepth), and
// MaxLength itself is covered by TestParseErrors and TestLimits.
const maxFuzzLen = 512

func skipLong(t *testing.T, in string) {
	if len(in) > maxFuzzLen {
		t.Skip()
	}
}

func checkError(t *testing.T, in string, err error) {
	t.Helper()
	var fe *filter.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %T is not a *filter.Error: %v", err, err)
	}
	if fe.Pos < 0 || fe.Pos > len(in) {
		t.Fatalf("error position %d outside the %d-byte input: %v", fe.Pos, len(in), err)
	}
	if fe.Msg == "" || !utf8.ValidString(fe.Msg) {
		t.Fatalf("error message %q is empty or not UTF-8", fe.Msg)
	}
}

// checkTree asserts the invariants callers rely on: every node is one of
// the documented types, operators and values agree, and a value filter's
// paths are bare sub-attribute names with no nested value filter.
func checkTree(t *testing.T, in string, e filter.Expr, inside bool) {
	t.Helper()
	checkAttr := func(a filter.AttrPath) {
		if a.Name == "" || inside && (a.URN != "" || a.Sub != "") {
			t.Fatalf("Parse(%q): bad attribute path %+v (inside a value filter: %v)", in, a, inside)
		}
	}
	switch e := e.(type) {
	case *filter.And:
		checkTree(t, in, e.Left, inside)
		checkTree(t, in, e.Right, inside)
	case *filter.Or:
		checkTree(t, in, e.Left, inside)
		checkTree(t, in, e.Right, inside)
	case *filter.Not:
		checkTree(t, in, e.X, inside)
	case *filter.Present:
		checkAttr(e.Attr)
	case *filter.Compare:
		checkAttr(e.Attr)
		k := e.Value.Kind
		switch e.Op {
		case filter.Eq, filter.Ne:
		case filter.Gt, filter.Ge, filter.Lt, filter.Le:
			if k != filter.KindString && k != filter.KindNumber {
				t.Fatalf("Parse(%q): %s with a %s value", in, e.Op, k)
			}
		case filter.Co, filter.Sw, filter.Ew:
			if k != filter.KindString {
				t.Fatalf("Parse(%q): %s with a %s value", in, e.Op, k)
			}
		default:
			t.Fatalf("Parse(%q): unknown operator %q", in, e.Op)
		}
		if !utf8.ValidString(e.Value.Str) {
			t.Fatalf("Parse(%q): string value is not UTF-8", in)
		}
	case *filter.ValuePath:
		if inside {
			t.Fatalf("Parse(%q): nested value path", in)
		}
		checkAttr(e.Attr)
		if e.Attr.Sub != "" {
			t.Fatalf("Parse(%q): value path on a sub-attribute", in)
		}
		checkTree(t, in, e.Filter, true)
	default:
		t.Fatalf("Parse(%q): unexpected node %T", in, e)
	}
}
