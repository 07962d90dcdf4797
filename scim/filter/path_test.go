package filter_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rosterd/roster/scim/filter"
)

type pathCase struct {
	name string
	in   string
	want filter.Path
}

var pathCases = []pathCase{
	{"attribute", `members`, filter.Path{Attr: attr("members")}},
	{"okta active", `active`, filter.Path{Attr: attr("active")}},
	{"sub-attribute", `name.givenName`, filter.Path{Attr: sub("name", "givenName")}},
	{"enterprise manager", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, filter.Path{Attr: urn(enterprise, "manager", "")}},
	{"enterprise manager value", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`, filter.Path{Attr: urn(enterprise, "manager", "value")}},
	{"enterprise employeeNumber", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`, filter.Path{Attr: urn(enterprise, "employeeNumber", "")}},
	{"core qualified", `urn:ietf:params:scim:schemas:core:2.0:User:name.familyName`, filter.Path{Attr: urn(core, "name", "familyName")}},
	{"bare extension URN", enterprise, filter.Path{Attr: urn("urn:ietf:params:scim:schemas:extension:enterprise:2.0", "User", "")}},
	{"entra member removal", `members[value eq "ID"]`,
		filter.Path{Attr: attr("members"), Filter: cmp(attr("value"), filter.Eq, str("ID"))}},
	{"rfc member removal", `members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		filter.Path{Attr: attr("members"), Filter: cmp(attr("value"), filter.Eq, str("2819c223-7f76-453a-919d-413861904646"))}},
	{"entra work e-mail", `emails[type eq "work"].value`,
		filter.Path{Attr: attr("emails"), Filter: cmp(attr("type"), filter.Eq, str("work")), Sub: "value"}},
	{"entra street", `addresses[type eq "work"].streetAddress`,
		filter.Path{Attr: attr("addresses"), Filter: cmp(attr("type"), filter.Eq, str("work")), Sub: "streetAddress"}},
	{"entra mobile", `phoneNumbers[type eq "mobile"].value`,
		filter.Path{Attr: attr("phoneNumbers"), Filter: cmp(attr("type"), filter.Eq, str("mobile")), Sub: "value"}},
	{"rfc and filter", `emails[type eq "work" and value ew "example.com"]`,
		filter.Path{Attr: attr("emails"), Filter: and(cmp(attr("type"), filter.Eq, str("work")), cmp(attr("value"), filter.Ew, str("example.com")))}},
	{"rfc sub after filter", `members[value eq "2819c223-7f76-453a-919d-413861904646"].displayName`,
		filter.Path{Attr: attr("members"), Filter: cmp(attr("value"), filter.Eq, str("2819c223-7f76-453a-919d-413861904646")), Sub: "displayName"}},
	{"rfc addresses", `addresses[type eq "work"]`,
		filter.Path{Attr: attr("addresses"), Filter: cmp(attr("type"), filter.Eq, str("work"))}},
	{"qualified value path", `urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].value`,
		filter.Path{Attr: urn(core, "emails", ""), Filter: cmp(attr("type"), filter.Eq, str("work")), Sub: "value"}},
	{"or and not inside", `emails[type eq "home" or not (primary eq true)]`,
		filter.Path{Attr: attr("emails"), Filter: or(cmp(attr("type"), filter.Eq, str("home")), not(cmp(attr("primary"), filter.Eq, tru)))}},
	{"$ref inside", `members[$ref eq "https://example.com/v2/Users/1"]`,
		filter.Path{Attr: attr("members"), Filter: cmp(attr("$ref"), filter.Eq, str("https://example.com/v2/Users/1"))}},
	{"$ref after", `members[value eq "1"].$ref`,
		filter.Path{Attr: attr("members"), Filter: cmp(attr("value"), filter.Eq, str("1")), Sub: "$ref"}},
	{"case kept", `EMAILS[TYPE EQ "work"].VALUE`,
		filter.Path{Attr: attr("EMAILS"), Filter: cmp(attr("TYPE"), filter.Eq, str("work")), Sub: "VALUE"}},
	{"surrounding space", "  name.givenName \t", filter.Path{Attr: sub("name", "givenName")}},
}

func TestParsePath(t *testing.T) {
	for _, tc := range pathCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := filter.ParsePath(tc.in)
			if err != nil {
				t.Fatalf("ParsePath(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("ParsePath(%q)\n got %+v\nwant %+v", tc.in, *got, tc.want)
			}
			again, err := filter.ParsePath(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("ParsePath(%q) after String() = %v, %v; want %+v", got.String(), again, err, *got)
			}
		})
	}
}

var pathErrorCases = []errorCase{
	{``, 0, "empty path"},
	{`  `, 0, "empty path"},
	{`[value eq "x"]`, 0, `expected an attribute path, got "["`},
	{`emails[type eq "work"].`, 23, `expected a sub-attribute name after "].", got the end of the path`},
	{`emails[type eq "work"].value.display`, 28, `invalid character "." in attribute name "value.display"`},
	{`emails[type eq "work"].1st`, 23, `invalid attribute name "1st"`},
	{`emails[type eq "work"]x`, 22, `unexpected "x" after the path "emails[type eq \"work\"]"`},
	{`emails[type eq "work"] .value`, 23, `unexpected ".value" after the path`},
	{`emails [type eq "work"]`, 7, `unexpected "[" after the path "emails"`},
	{`userName eq "bjensen"`, 9, `a PATCH path is not a filter; select values with brackets, as in "userName[value eq \"...\"]"`},
	{`members pr`, 8, `a PATCH path is not a filter`},
	{`emails[type eq "work"`, 21, `missing "]" to close the "[" at position 6`},
	{`emails[`, 7, `expected an attribute path, "(" or "not", got the end of the path`},
	{`emails[]`, 6, `empty value filter after "emails"`},
	{`emails[type eq]`, 14, `expected a space after "eq", got "]"`},
	{`emails[type eq "a\x"]`, 17, `invalid escape "\\x"`},
	{`name.givenName.x`, 14, `has more than one sub-attribute`},
	{`name.givenName[type pr]`, 14, `"name.givenName" is a sub-attribute`},
	{`emails[value[x pr]]`, 12, `value filters cannot be nested`},
	{`emails[type.x eq 1]`, 7, `which have no sub-attributes of their own`},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:`, 59, `expected an attribute name after the schema URI`},
	{`emails[type eq "work"]]`, 22, `unexpected "]" after the path`},
	{`emails[type eq "work")`, 21, `expected "and", "or" or "]" to close the "[" at position 6, got ")"`},
	{strings.Repeat("a", filter.MaxLength+1), filter.MaxLength, `the path is 8193 bytes long; the limit is 8192`},
	{"name.given\xffName", 10, `invalid UTF-8`},
}

func TestParsePathErrors(t *testing.T) {
	for _, tc := range pathErrorCases {
		name := tc.in
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			p, err := filter.ParsePath(tc.in)
			if err == nil {
				t.Fatalf("ParsePath(%q) = %+v, want an error", tc.in, *p)
			}
			var fe *filter.Error
			if !errors.As(err, &fe) {
				t.Fatalf("ParsePath(%q) error %T is not a *filter.Error", tc.in, err)
			}
			if fe.Pos != tc.pos || !strings.Contains(fe.Msg, tc.frag) {
				t.Fatalf("ParsePath(%q)\n got pos %d: %s\nwant pos %d: …%s…", tc.in, fe.Pos, fe.Msg, tc.pos, tc.frag)
			}
			if !strings.HasPrefix(err.Error(), "invalid path at position ") {
				t.Fatalf("Error() = %q, want it to say path", err.Error())
			}
		})
	}
}
