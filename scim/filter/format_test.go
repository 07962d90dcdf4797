package filter_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/rosterd/roster/scim/filter"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`userName Eq "john"`, `userName eq "john"`},
		{"a pr  AND\tb pr", `a pr and b pr`},
		{`not(a pr)`, `not (a pr)`},
		{`NOT  ( a pr )`, `not (a pr)`},
		{`((a pr))`, `a pr`},
		{`(a pr and b pr) or c pr`, `a pr and b pr or c pr`},
		{`a pr and (b pr or c pr)`, `a pr and (b pr or c pr)`},
		{`(a pr or b pr) or c pr`, `a pr or b pr or c pr`},
		{`a pr or (b pr or c pr)`, `a pr or (b pr or c pr)`},
		{`a pr and (b pr and c pr)`, `a pr and (b pr and c pr)`},
		{`(a pr or b pr) and not (c pr or d pr)`, `(a pr or b pr) and not (c pr or d pr)`},
		{`a eq TRUE or b eq False or c eq NULL`, `a eq true or b eq false or c eq null`},
		{`a eq 1E+2`, `a eq 1E+2`},
		{`a eq "\u00e9\/\u0041"`, `a eq "é/A"`},
		{`a eq "\u0001<&>\u001F"`, `a eq "\u0001<&>\u001f"`},
		{`a eq "\"\\\b\f\n\r\t"`, `a eq "\"\\\b\f\n\r\t"`},
		{`emails[ type eq "x" ]`, `emails[type eq "x"]`},
		{`emails[(type eq "x" or type eq "y") and primary eq true]`, `emails[(type eq "x" or type eq "y") and primary eq true]`},
		{`URN:x:y:Name.Sub pr`, `URN:x:y:Name.Sub pr`},
	} {
		e, err := filter.Parse(tc.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.in, err)
		}
		if got := filter.Format(e); got != tc.want {
			t.Errorf("Format(Parse(%q)) = %s, want %s", tc.in, got, tc.want)
		}
		if got := e.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := filter.Format(nil); got != "" {
		t.Errorf("Format(nil) = %q", got)
	}
}

func TestPathString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`name.givenName`, `name.givenName`},
		{`Emails[Type EQ "work"].Value`, `Emails[Type eq "work"].Value`},
		{`members[ value eq "1" ]`, `members[value eq "1"]`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`},
	} {
		p, err := filter.ParsePath(tc.in)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", tc.in, err)
		}
		if got := p.String(); got != tc.want {
			t.Errorf("ParsePath(%q).String() = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestWalk(t *testing.T) {
	e, err := filter.Parse(`a pr and not (emails[type eq "work" or primary eq true]) or b eq 1`)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	filter.Walk(e, func(x filter.Expr) bool {
		all = append(all, reflect.TypeOf(x).Elem().Name())
		return true
	})
	want := []string{"Or", "And", "Present", "Not", "ValuePath", "Or", "Compare", "Compare", "Compare"}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("Walk visited %v, want %v", all, want)
	}

	// Returning false prunes: the store uses this to treat a value path as
	// one unit rather than as loose comparisons.
	var top []string
	filter.Walk(e, func(x filter.Expr) bool {
		if vp, ok := x.(*filter.ValuePath); ok {
			top = append(top, vp.Attr.String())
			return false
		}
		if c, ok := x.(*filter.Compare); ok {
			top = append(top, c.Attr.String())
		}
		return true
	})
	if want := []string{"emails", "b"}; !reflect.DeepEqual(top, want) {
		t.Fatalf("pruned Walk saw %v, want %v", top, want)
	}
	filter.Walk(nil, func(filter.Expr) bool { t.Fatal("fn called for nil"); return true })
}

func TestAttrPathEqualFold(t *testing.T) {
	a := urn(enterprise, "manager", "value")
	b := urn("URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER", "Manager", "VALUE")
	if !a.EqualFold(b) {
		t.Errorf("%s and %s should be equal ignoring case", a, b)
	}
	if a.EqualFold(urn(enterprise, "manager", "")) || attr("userName").EqualFold(urn(core, "userName", "")) {
		t.Errorf("paths that differ in parts compared equal")
	}
}

func TestValue(t *testing.T) {
	for _, tc := range []struct {
		v       filter.Value
		any     any
		text    string
		kindStr string
	}{
		{str(`a"b`), `a"b`, `"a\"b"`, "string"},
		{num("1.50"), json.Number("1.50"), "1.50", "number"},
		{tru, true, "true", "true"},
		{fls, false, "false", "false"},
		{null, nil, "null", "null"},
		{filter.Value{}, nil, "<invalid value>", "invalid"},
	} {
		if got := tc.v.Any(); got != tc.any {
			t.Errorf("%v.Any() = %#v, want %#v", tc.v, got, tc.any)
		}
		if got := tc.v.String(); got != tc.text {
			t.Errorf("String() = %s, want %s", got, tc.text)
		}
		if got := tc.v.Kind.String(); got != tc.kindStr {
			t.Errorf("Kind.String() = %s, want %s", got, tc.kindStr)
		}
	}
}
