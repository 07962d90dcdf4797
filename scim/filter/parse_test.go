package filter_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rosterd/roster/scim/filter"
)

// Builders keep the expected trees in the tables readable.

func attr(name string) filter.AttrPath      { return filter.AttrPath{Name: name} }
func sub(name, s string) filter.AttrPath    { return filter.AttrPath{Name: name, Sub: s} }
func urn(u, name, s string) filter.AttrPath { return filter.AttrPath{URN: u, Name: name, Sub: s} }
func str(s string) filter.Value             { return filter.Value{Kind: filter.KindString, Str: s} }
func num(s string) filter.Value             { return filter.Value{Kind: filter.KindNumber, Num: json.Number(s)} }
func pr(a filter.AttrPath) filter.Expr      { return &filter.Present{Attr: a} }
func and(l, r filter.Expr) filter.Expr      { return &filter.And{Left: l, Right: r} }
func or(l, r filter.Expr) filter.Expr       { return &filter.Or{Left: l, Right: r} }
func not(x filter.Expr) filter.Expr         { return &filter.Not{X: x} }
func vp(a filter.AttrPath, f filter.Expr) filter.Expr {
	return &filter.ValuePath{Attr: a, Filter: f}
}

func cmp(a filter.AttrPath, op filter.Op, v filter.Value) filter.Expr {
	return &filter.Compare{Attr: a, Op: op, Value: v}
}

var (
	tru  = filter.Value{Kind: filter.KindTrue, Bool: true}
	fls  = filter.Value{Kind: filter.KindFalse}
	null = filter.Value{Kind: filter.KindNull}
)

const (
	core       = "urn:ietf:params:scim:schemas:core:2.0:User"
	enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

type parseCase struct {
	name string
	in   string
	want filter.Expr
}

var parseCases = []parseCase{
	// every operator
	{"eq", `userName eq "bjensen"`, cmp(attr("userName"), filter.Eq, str("bjensen"))},
	{"ne", `userType ne "Employee"`, cmp(attr("userType"), filter.Ne, str("Employee"))},
	{"co", `name.familyName co "O'Malley"`, cmp(sub("name", "familyName"), filter.Co, str("O'Malley"))},
	{"sw", `userName sw "J"`, cmp(attr("userName"), filter.Sw, str("J"))},
	{"ew", `emails.value ew "@example.com"`, cmp(sub("emails", "value"), filter.Ew, str("@example.com"))},
	{"gt", `meta.lastModified gt "2011-05-13T04:42:34Z"`, cmp(sub("meta", "lastModified"), filter.Gt, str("2011-05-13T04:42:34Z"))},
	{"ge number", `age ge 18`, cmp(attr("age"), filter.Ge, num("18"))},
	{"lt number", `score lt -1.5`, cmp(attr("score"), filter.Lt, num("-1.5"))},
	{"le", `meta.created le "2011-05-13T04:42:34Z"`, cmp(sub("meta", "created"), filter.Le, str("2011-05-13T04:42:34Z"))},
	{"pr", `title pr`, pr(attr("title"))},

	// every value kind
	{"true", `active eq true`, cmp(attr("active"), filter.Eq, tru)},
	{"false", `active eq false`, cmp(attr("active"), filter.Eq, fls)},
	{"null", `manager eq null`, cmp(attr("manager"), filter.Eq, null)},
	{"null ne", `manager ne null`, cmp(attr("manager"), filter.Ne, null)},
	{"True", `active eq True`, cmp(attr("active"), filter.Eq, tru)},
	{"FALSE", `active eq FALSE`, cmp(attr("active"), filter.Eq, fls)},
	{"Null", `manager eq Null`, cmp(attr("manager"), filter.Eq, null)},
	{"zero", `n eq 0`, cmp(attr("n"), filter.Eq, num("0"))},
	{"negative zero", `n eq -0`, cmp(attr("n"), filter.Eq, num("-0"))},
	{"fraction", `n eq 0.25`, cmp(attr("n"), filter.Eq, num("0.25"))},
	{"exponent", `n eq 1e10`, cmp(attr("n"), filter.Eq, num("1e10"))},
	{"signed exponent", `n eq -2.5E-3`, cmp(attr("n"), filter.Eq, num("-2.5E-3"))},
	{"plus exponent", `n eq 7E+2`, cmp(attr("n"), filter.Eq, num("7E+2"))},
	{"big number keeps its text", `n eq 123456789012345678901234567890`, cmp(attr("n"), filter.Eq, num("123456789012345678901234567890"))},
	{"empty string", `nickName eq ""`, cmp(attr("nickName"), filter.Eq, str(""))},
	{"escapes", `a eq "q\"b\\s\/f\bf\fn\nr\rt\t"`, cmp(attr("a"), filter.Eq, str("q\"b\\s/f\bf\fn\nr\rt\t"))},
	{"unicode escape", `a eq "J\u00fcrgen"`, cmp(attr("a"), filter.Eq, str("Jürgen"))},
	{"upper-case hex", `a eq "\u00FC"`, cmp(attr("a"), filter.Eq, str("ü"))},
	{"surrogate pair", `a eq "\ud83d\ude00"`, cmp(attr("a"), filter.Eq, str("😀"))},
	{"raw UTF-8", `displayName eq "Weiß, Jürgen 😀"`, cmp(attr("displayName"), filter.Eq, str("Weiß, Jürgen 😀"))},
	{"escaped NUL", `a eq "\u0000"`, cmp(attr("a"), filter.Eq, str("\x00"))},
	{"brackets and parens in a string", `a eq "(x) [y] and or not"`, cmp(attr("a"), filter.Eq, str("(x) [y] and or not"))},

	// precedence and grouping
	{"and binds tighter than or", `a eq 1 or b eq 2 and c eq 3`,
		or(cmp(attr("a"), filter.Eq, num("1")), and(cmp(attr("b"), filter.Eq, num("2")), cmp(attr("c"), filter.Eq, num("3"))))},
	{"and first", `a eq 1 and b eq 2 or c eq 3`,
		or(and(cmp(attr("a"), filter.Eq, num("1")), cmp(attr("b"), filter.Eq, num("2"))), cmp(attr("c"), filter.Eq, num("3")))},
	{"and is left-associative", `a pr and b pr and c pr`, and(and(pr(attr("a")), pr(attr("b"))), pr(attr("c")))},
	{"or is left-associative", `a pr or b pr or c pr`, or(or(pr(attr("a")), pr(attr("b"))), pr(attr("c")))},
	{"parentheses override", `(a pr or b pr) and c pr`, and(or(pr(attr("a")), pr(attr("b"))), pr(attr("c")))},
	{"right grouping kept", `a pr or (b pr or c pr)`, or(pr(attr("a")), or(pr(attr("b")), pr(attr("c"))))},
	{"not binds tighter than and", `not (a pr) and b pr`, and(not(pr(attr("a"))), pr(attr("b")))},
	{"not of or", `not (a pr or b pr)`, not(or(pr(attr("a")), pr(attr("b"))))},
	{"not without space", `not(a pr)`, not(pr(attr("a")))},
	{"NOT", `NOT (a pr)`, not(pr(attr("a")))},
	{"not not", `not (not (a pr))`, not(not(pr(attr("a"))))},
	{"redundant parentheses", `((a pr))`, pr(attr("a"))},
	{"spaces inside parentheses", `( a pr )`, pr(attr("a"))},
	{"mixed", `a pr or not (b pr) and (c pr or d pr)`,
		or(pr(attr("a")), and(not(pr(attr("b"))), or(pr(attr("c")), pr(attr("d")))))},

	// case and white space
	{"Eq", `userName Eq "john"`, cmp(attr("userName"), filter.Eq, str("john"))},
	{"Username", `Username eq "john"`, cmp(attr("Username"), filter.Eq, str("john"))},
	{"EQ", `userName EQ "x"`, cmp(attr("userName"), filter.Eq, str("x"))},
	{"AND Or", `a pr AND b pr Or c pr`, or(and(pr(attr("a")), pr(attr("b"))), pr(attr("c")))},
	{"PR", `title PR`, pr(attr("title"))},
	{"GE", `n GE 1`, cmp(attr("n"), filter.Ge, num("1"))},
	{"tabs and runs of spaces", "userName  eq\t\"x\"   and\t\tb pr", and(cmp(attr("userName"), filter.Eq, str("x")), pr(attr("b")))},
	{"leading and trailing space", "  title pr \t", pr(attr("title"))},

	// attribute paths
	{"sub-attribute", `name.givenName eq "Barbara"`, cmp(sub("name", "givenName"), filter.Eq, str("Barbara"))},
	{"core URN", `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`, cmp(urn(core, "userName", ""), filter.Sw, str("J"))},
	{"core URN with sub-attribute", `urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "Barbara"`, cmp(urn(core, "name", "givenName"), filter.Eq, str("Barbara"))},
	{"enterprise URN", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, cmp(urn(enterprise, "employeeNumber", ""), filter.Eq, str("701984"))},
	{"enterprise URN with sub-attribute", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"`,
		cmp(urn(enterprise, "manager", "value"), filter.Eq, str("26118915-6090-4610-87e4-49d8ca9f808d"))},
	{"enterprise department pr", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr`, pr(urn(enterprise, "department", ""))},
	{"group URN", `urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "Sales"`, cmp(urn("urn:ietf:params:scim:schemas:core:2.0:Group", "displayName", ""), filter.Eq, str("Sales"))},
	{"URN case kept", `URN:IETF:params:scim:schemas:core:2.0:User:USERNAME eq "x"`, cmp(urn("URN:IETF:params:scim:schemas:core:2.0:User", "USERNAME", ""), filter.Eq, str("x"))},
	{"percent-encoded URI", `urn:example:a%2Fb:attr pr`, pr(urn("urn:example:a%2Fb", "attr", ""))},
	{"$ref", `members.$ref eq "https://example.com/v2/Users/1"`, cmp(sub("members", "$ref"), filter.Eq, str("https://example.com/v2/Users/1"))},
	{"$ref alone", `$ref pr`, pr(attr("$ref"))},
	{"$Ref", `groups.$Ref pr`, pr(sub("groups", "$Ref"))},
	{"name characters", `x-custom_attr2 eq 1`, cmp(attr("x-custom_attr2"), filter.Eq, num("1"))},
	{"dollar inside a name (RFC 7643 §2.1)", `a$b pr`, pr(attr("a$b"))},
	{"keyword as attribute: not", `not pr`, pr(attr("not"))},
	{"keyword as attribute: not eq", `not eq "x"`, cmp(attr("not"), filter.Eq, str("x"))},
	{"keyword as attribute: and", `a pr and and pr`, and(pr(attr("a")), pr(attr("and")))},
	{"keyword as attribute: or, pr", `or pr or pr pr`, or(pr(attr("or")), pr(attr("pr")))},
	{"notable is not not", `notable eq true`, cmp(attr("notable"), filter.Eq, tru)},

	// value paths
	{"value path", `emails[type eq "work" and value co "@example.com"]`,
		vp(attr("emails"), and(cmp(attr("type"), filter.Eq, str("work")), cmp(attr("value"), filter.Co, str("@example.com"))))},
	{"value path with or and parentheses (errata 7322)", `emails[type eq "work" or (type eq "home" and value ew "@example.com")]`,
		vp(attr("emails"), or(cmp(attr("type"), filter.Eq, str("work")), and(cmp(attr("type"), filter.Eq, str("home")), cmp(attr("value"), filter.Ew, str("@example.com")))))},
	{"value path with not", `emails[not (type eq "work")]`, vp(attr("emails"), not(cmp(attr("type"), filter.Eq, str("work"))))},
	{"value path boolean", `emails[primary eq true]`, vp(attr("emails"), cmp(attr("primary"), filter.Eq, tru))},
	{"value path pr", `x509Certificates[value pr]`, vp(attr("x509Certificates"), pr(attr("value")))},
	{"value path with spaces inside", `emails[ type eq "work" ]`, vp(attr("emails"), cmp(attr("type"), filter.Eq, str("work")))},
	{"value path $ref", `groups[$ref pr]`, vp(attr("groups"), pr(attr("$ref")))},
	{"URN-qualified value path", `urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"]`,
		vp(urn(core, "emails", ""), cmp(attr("type"), filter.Eq, str("work")))},
	{"value path under not", `not (emails[type pr])`, not(vp(attr("emails"), pr(attr("type"))))},
	{"two value paths", `emails[type eq "work"] and phoneNumbers[type eq "mobile"]`,
		and(vp(attr("emails"), cmp(attr("type"), filter.Eq, str("work"))), vp(attr("phoneNumbers"), cmp(attr("type"), filter.Eq, str("mobile"))))},

	// RFC 7644 §3.4.2.2, the examples of Figure 2 and of the text, verbatim
	{"rfc Eq", `userName Eq "john"`, cmp(attr("userName"), filter.Eq, str("john"))},
	{"rfc Username", `Username eq "john"`, cmp(attr("Username"), filter.Eq, str("john"))},
	{"rfc 1", `userName eq "bjensen"`, cmp(attr("userName"), filter.Eq, str("bjensen"))},
	{"rfc 2", `name.familyName co "O'Malley"`, cmp(sub("name", "familyName"), filter.Co, str("O'Malley"))},
	{"rfc 3", `userName sw "J"`, cmp(attr("userName"), filter.Sw, str("J"))},
	{"rfc 4", `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`, cmp(urn(core, "userName", ""), filter.Sw, str("J"))},
	{"rfc 5", `title pr`, pr(attr("title"))},
	{"rfc 6", `meta.lastModified gt "2011-05-13T04:42:34Z"`, cmp(sub("meta", "lastModified"), filter.Gt, str("2011-05-13T04:42:34Z"))},
	{"rfc 7", `meta.lastModified ge "2011-05-13T04:42:34Z"`, cmp(sub("meta", "lastModified"), filter.Ge, str("2011-05-13T04:42:34Z"))},
	{"rfc 8", `meta.lastModified lt "2011-05-13T04:42:34Z"`, cmp(sub("meta", "lastModified"), filter.Lt, str("2011-05-13T04:42:34Z"))},
	{"rfc 9", `meta.lastModified le "2011-05-13T04:42:34Z"`, cmp(sub("meta", "lastModified"), filter.Le, str("2011-05-13T04:42:34Z"))},
	{"rfc 10", `title pr and userType eq "Employee"`, and(pr(attr("title")), cmp(attr("userType"), filter.Eq, str("Employee")))},
	{"rfc 11", `title pr or userType eq "Intern"`, or(pr(attr("title")), cmp(attr("userType"), filter.Eq, str("Intern")))},
	{"rfc 12", `schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, cmp(attr("schemas"), filter.Eq, str(enterprise))},
	{"rfc 13", `userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
		and(cmp(attr("userType"), filter.Eq, str("Employee")), or(cmp(attr("emails"), filter.Co, str("example.com")), cmp(sub("emails", "value"), filter.Co, str("example.org"))))},
	{"rfc 14", `userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
		and(cmp(attr("userType"), filter.Ne, str("Employee")), not(or(cmp(attr("emails"), filter.Co, str("example.com")), cmp(sub("emails", "value"), filter.Co, str("example.org")))))},
	{"rfc 15", `userType eq "Employee" and (emails.type eq "work")`,
		and(cmp(attr("userType"), filter.Eq, str("Employee")), cmp(sub("emails", "type"), filter.Eq, str("work")))},
	{"rfc 16", `userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`,
		and(cmp(attr("userType"), filter.Eq, str("Employee")), vp(attr("emails"), and(cmp(attr("type"), filter.Eq, str("work")), cmp(attr("value"), filter.Co, str("@example.com")))))},
	{"rfc 17", `emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
		or(vp(attr("emails"), and(cmp(attr("type"), filter.Eq, str("work")), cmp(attr("value"), filter.Co, str("@example.com")))),
			vp(attr("ims"), and(cmp(attr("type"), filter.Eq, str("xmpp")), cmp(attr("value"), filter.Co, str("@foo.com")))))},

	// what Microsoft Entra ID and Okta send
	{"entra userName", `userName eq "test@contoso.com"`, cmp(attr("userName"), filter.Eq, str("test@contoso.com"))},
	{"entra externalId", `externalId eq "abc"`, cmp(attr("externalId"), filter.Eq, str("abc"))},
	{"entra displayName", `displayName eq "Group"`, cmp(attr("displayName"), filter.Eq, str("Group"))},
	{"entra members", `members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		vp(attr("members"), cmp(attr("value"), filter.Eq, str("2819c223-7f76-453a-919d-413861904646")))},
	{"entra membership check", `id eq "e9e30dba-f08f-4109-8486-d5c6a331660a" and members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		and(cmp(attr("id"), filter.Eq, str("e9e30dba-f08f-4109-8486-d5c6a331660a")), vp(attr("members"), cmp(attr("value"), filter.Eq, str("2819c223-7f76-453a-919d-413861904646"))))},
	{"entra filtered sub-attribute", `emails[type eq "work"].value eq "jane@example.com"`,
		vp(attr("emails"), and(cmp(attr("type"), filter.Eq, str("work")), cmp(attr("value"), filter.Eq, str("jane@example.com"))))},
	{"okta userName", `userName eq "isaac.brock@example.com"`, cmp(attr("userName"), filter.Eq, str("isaac.brock@example.com"))},
	{"okta emails", `emails.value eq "isaac.brock@example.com"`, cmp(sub("emails", "value"), filter.Eq, str("isaac.brock@example.com"))},

	// injection attempts stay inside one string value
	{"quote injection", `userName eq "x\" or 1=1 --"`, cmp(attr("userName"), filter.Eq, str(`x" or 1=1 --`))},
	{"SQL in a value", `userName eq "'; DROP TABLE users; --"`, cmp(attr("userName"), filter.Eq, str(`'; DROP TABLE users; --`))},
	{"LIKE wildcards in a value", `userName co "%_\\"`, cmp(attr("userName"), filter.Co, str(`%_\`))},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := filter.Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q)\n got %s\nwant %s", tc.in, dump(got), dump(tc.want))
			}
			// The canonical form must parse back to the same tree.
			again, err := filter.Parse(filter.Format(got))
			if err != nil {
				t.Fatalf("Parse(Format(%q)) = Parse(%q): %v", tc.in, filter.Format(got), err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip of %q via %q changed the tree", tc.in, filter.Format(got))
			}
		})
	}
}

// dump renders a tree with its structure explicit, so that a precedence
// mistake shows in a failure message.
func dump(e filter.Expr) string {
	switch e := e.(type) {
	case *filter.And:
		return "And(" + dump(e.Left) + ", " + dump(e.Right) + ")"
	case *filter.Or:
		return "Or(" + dump(e.Left) + ", " + dump(e.Right) + ")"
	case *filter.Not:
		return "Not(" + dump(e.X) + ")"
	case *filter.ValuePath:
		return "ValuePath(" + e.Attr.String() + ", " + dump(e.Filter) + ")"
	case *filter.Compare:
		return "Compare(" + e.Attr.String() + " " + string(e.Op) + " " + e.Value.Kind.String() + ":" + e.Value.String() + ")"
	case *filter.Present:
		return "Present(" + e.Attr.String() + ")"
	case nil:
		return "nil"
	}
	return "?"
}

type errorCase struct {
	in   string
	pos  int
	frag string
}

var deep = strings.Repeat("(", filter.MaxDepth+1) + "a pr" + strings.Repeat(")", filter.MaxDepth+1)

var errorCases = []errorCase{
	{``, 0, "empty filter"},
	{" \t ", 0, "empty filter"},
	{`userName`, 8, `expected a comparison operator after "userName", got the end of the filter`},
	{`userName eqq "x"`, 9, `expected a comparison operator after "userName", got "eqq"`},
	{`userName = "x"`, 9, `expected a comparison operator after "userName", got "="`},
	{`userNameeq"x"`, 10, `expected a space after "userNameeq", got "\"x\""`},
	{`userName eq"x"`, 11, `expected a space after "eq"`},
	{`userName eq`, 11, `expected a value after "eq", got the end of the filter`},
	{`userName eq `, 12, `expected a value after "eq", got the end of the filter`},
	{`userName eq "bjensen`, 12, "unterminated string"},
	{`userName eq "bjensen\"`, 12, "unterminated string"},
	{`userName eq "a\qb"`, 14, `invalid escape "\\q"`},
	{`userName eq "\u12"`, 13, `\u needs four hexadecimal digits`},
	{`userName eq "\ud83d"`, 13, "high surrogate must be followed by a low surrogate"},
	{`userName eq "\ud83d\u0041"`, 13, "high surrogate must be followed by a low surrogate"},
	{`userName eq "\ude00"`, 13, "low surrogate must follow a high surrogate"},
	{"userName eq \"a\tb\"", 14, `control character "\t" in a string must be escaped`},
	{`userName eq john`, 12, `expected a value (a string in double quotes, a number, true, false or null) after "eq", got "john"`},
	{`userName eq 'john'`, 12, `expected a value (a string in double quotes`},
	{`a eq 01`, 6, `invalid number "01": leading zeros are not allowed`},
	{`a eq +1`, 5, `a leading "+" is not allowed`},
	{`a eq .5`, 5, `expected a digit before the decimal point`},
	{`a eq 1.`, 7, `expected a digit after the decimal point`},
	{`a eq 1e`, 7, `expected a digit in the exponent`},
	{`a eq -`, 6, `expected a digit after "-"`},
	{`a eq 1x`, 6, `invalid number "1x": unexpected "x"`},
	{`title pr "x"`, 9, `"pr" takes no value`},
	{`title pr true`, 9, `"pr" takes no value`},
	{`a gt true`, 5, `"gt" orders strings, numbers and dates; it cannot compare with true`},
	{`a GE false`, 5, `"GE" orders strings, numbers and dates; it cannot compare with false`},
	{`a lt null`, 5, `cannot compare with null`},
	{`a le null`, 5, `cannot compare with null`},
	{`a co 1`, 5, `"co" needs a string value, got "1"`},
	{`a sw true`, 5, `"sw" needs a string value, got "true"`},
	{`a ew null`, 5, `"ew" needs a string value, got "null"`},
	{`(a pr`, 5, `missing ")" to close the "(" at position 0`},
	{`(a pr or (b pr)`, 15, `missing ")" to close the "(" at position 0`},
	{`not (a pr`, 9, `missing ")" to close the "(" at position 4`},
	{`a pr)`, 4, `unexpected ")" without a matching "("`},
	{`(a pr]`, 5, `expected "and", "or" or ")" to close the "(" at position 0, got "]"`},
	{`emails[type eq "work"`, 21, `missing "]" to close the "[" at position 6`},
	{`emails[type eq "work")`, 21, `expected "and", "or" or "]" to close the "[" at position 6, got ")"`},
	{`emails[type eq "work"]]`, 22, `unexpected "]" without a matching "["`},
	{`a pr and`, 8, `expected a filter after "and", got the end of the filter`},
	{`a pr or `, 8, `expected a filter after "or", got the end of the filter`},
	{`a pr and(b pr)`, 8, `expected a space after "and", got "("`},
	{`a eq "x"and b pr`, 8, `expected a space before "and"`},
	{`(a pr)or(b pr)`, 6, `expected a space before "or"`},
	{`a pr b pr`, 5, `expected "and", "or" or the end of the filter, got "b"`},
	{`a pr xor b pr`, 5, `expected "and", "or" or the end of the filter, got "xor"`},
	{`a eq "x" "y"`, 9, `expected "and", "or" or the end of the filter, got "\"y\""`},
	{"a pr\nand b pr", 4, `expected "and", "or" or the end of the filter, got "\n"`},
	{"user\x00Name eq 1", 4, `expected a space after "user", got "\x00"`},
	{`not a pr`, 4, `expected "(" after "not", got "a"`},
	{`not`, 3, `expected "(" after "not", got the end of the filter`},
	{`not not (a pr)`, 4, `expected "(" after "not", got "not"`},
	{`()`, 0, `empty parentheses`},
	{`a pr and ()`, 9, `empty parentheses`},
	{`)`, 0, `expected an attribute path, "(" or "not", got ")"`},
	{`emails[]`, 6, `empty value filter after "emails"`},
	{`emails[type eq "work" and addresses[type pr]]`, 35, `value filters cannot be nested: "addresses" is inside the value filter of "emails"`},
	{`emails[value.x eq 1]`, 7, `inside the value filter of "emails", attributes are its sub-attributes, which have no sub-attributes`},
	{`emails[urn:a:b:type eq 1]`, 7, `inside the value filter of "emails", attributes are its sub-attributes and take no schema URI`},
	{`emails[type eq "work"].value.x eq "x"`, 28, `invalid character "." in attribute name "value.x"`},
	{`emails[type eq "work"].value`, 28, `expected a comparison operator`},
	{`name.givenName[x pr]`, 14, `"name.givenName" is a sub-attribute`},
	{`emails [type eq "work"]`, 7, `expected a comparison operator after "emails", got "["`},
	{`name.given.x eq 1`, 10, `"name.given.x" has more than one sub-attribute`},
	{`name. eq 1`, 5, `expected a sub-attribute name after "." in "name."`},
	{`.name eq 1`, 0, `expected an attribute name`},
	{`1abc eq 1`, 0, `invalid attribute name "1abc": an attribute name starts with a letter`},
	{`us!er eq 1`, 2, `invalid character "!" in attribute name "us!er"`},
	{`$foo pr`, 0, `invalid attribute name "$foo"`},
	{`name.1x pr`, 5, `invalid attribute name "1x"`},
	{`urn:ietf:params:scim:schemas:core:2.0:User: eq 1`, 43, `expected an attribute name after the schema URI "urn:ietf:params:scim:schemas:core:2.0:User"`},
	{`name:givenName eq 1`, 4, `"name" is not a schema URI such as "urn:ietf:params:scim:schemas:core:2.0:User": expected ":" after the URI scheme`},
	{`:userName eq 1`, 0, `"" is not a schema URI`},
	{`urn:a%zz:b pr`, 5, `"%" must start a percent-encoded byte`},
	{`urn:a<b:c pr`, 5, `invalid character "<"`},
	{deep, filter.MaxDepth, `the filter nests deeper than 50 levels of parentheses and brackets`},
	{`a eq "` + strings.Repeat("x", filter.MaxLength) + `"`, filter.MaxLength, `the filter is 8199 bytes long; the limit is 8192`},
	// long tokens are shortened in messages, never cut inside a character
	{strings.Repeat("a", 99) + "éé eq 1", 99, `invalid character "é" in attribute name "` + strings.Repeat("a", 99) + `"…`},
	{"a eq \"\xff\"", 6, `invalid UTF-8`},
	{"a eq \"ok\" and b\xc3 pr", 15, `invalid UTF-8`},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases {
		name := tc.in
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			e, err := filter.Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want an error", tc.in, dump(e))
			}
			var fe *filter.Error
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%q) error %T is not a *filter.Error", tc.in, err)
			}
			if fe.Pos != tc.pos || !strings.Contains(fe.Msg, tc.frag) {
				t.Fatalf("Parse(%q)\n got pos %d: %s\nwant pos %d: …%s…", tc.in, fe.Pos, fe.Msg, tc.pos, tc.frag)
			}
			if fe.Input != tc.in {
				t.Fatalf("Error.Input = %q, want the input", fe.Input)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	_, err := filter.Parse(`userName eqq "x"`)
	const want = `invalid filter at position 9: expected a comparison operator after "userName", got "eqq"`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
	if got := (&filter.Error{Pos: 3, Msg: "x"}).Error(); got != "invalid filter at position 3: x" {
		t.Fatalf("hand-built Error says %q", got)
	}
	_, err = filter.ParsePath(`emails[type eq "work"`)
	const wantPath = `invalid path at position 21: missing "]" to close the "[" at position 6`
	if err == nil || err.Error() != wantPath {
		t.Fatalf("error = %v, want %s", err, wantPath)
	}
}

// A hostile filter must fail fast with an error, not exhaust the stack,
// however its nesting is arranged.
func TestLimits(t *testing.T) {
	ok := strings.Repeat("(", filter.MaxDepth) + "a pr" + strings.Repeat(")", filter.MaxDepth)
	if _, err := filter.Parse(ok); err != nil {
		t.Fatalf("%d levels: %v", filter.MaxDepth, err)
	}
	okNot := strings.Repeat("not (", filter.MaxDepth) + "a pr" + strings.Repeat(")", filter.MaxDepth)
	if _, err := filter.Parse(okNot); err != nil {
		t.Fatalf("%d nots: %v", filter.MaxDepth, err)
	}
	for _, in := range []string{
		strings.Repeat("not (", 1000) + "a pr" + strings.Repeat(")", 1000),
		strings.Repeat("(", 4000),
		"x[" + strings.Repeat("(", 4000),
	} {
		_, err := filter.Parse(in)
		var fe *filter.Error
		if !errors.As(err, &fe) || !strings.Contains(fe.Msg, "nests deeper than") {
			t.Fatalf("Parse(%.20q…) = %v, want a nesting error", in, err)
		}
	}
	// A long flat chain is within both limits and parses iteratively.
	chain := "a pr" + strings.Repeat(" or a pr", (filter.MaxLength-4)/8)
	e, err := filter.Parse(chain)
	if err != nil {
		t.Fatalf("flat chain: %v", err)
	}
	if got := filter.Format(e); got != chain {
		t.Fatalf("flat chain did not format back to itself")
	}
	tooLong := chain + strings.Repeat(" ", filter.MaxLength-len(chain)+1)
	if _, err := filter.Parse(tooLong); err == nil || !strings.Contains(err.Error(), "limit is 8192") {
		t.Fatalf("%d bytes: err = %v, want the length limit", len(tooLong), err)
	}
	if _, err := filter.Parse(tooLong[:filter.MaxLength]); err != nil {
		t.Fatalf("%d bytes: %v", filter.MaxLength, err)
	}
}
