package patch

import (
	"testing"

	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
)

func TestMatch(t *testing.T) {
	emails, _, _ := schema.Users.LookupPath("emails")
	members, _, _ := schema.Groups.LookupPath("members")
	meta, _, _ := schema.Users.LookupPath("meta")
	email := map[string]any{"value": "Anna@Example.com", "type": "work", "primary": true}
	bare := map[string]any{"value": "x"}
	member := map[string]any{"value": "u1", "$ref": "https://x/Users/u1"}
	cases := []struct {
		attr   *schema.Attribute
		v      any
		filter string
		want   bool
	}{
		{emails, email, `value eq "anna@example.com"`, true},
		{emails, email, `value ne "anna@example.com"`, false},
		{emails, email, `value co "EXAMPLE"`, true},
		{emails, email, `value sw "anna@"`, true},
		{emails, email, `value ew ".org"`, false},
		{emails, email, `value gt "a"`, true},
		{emails, email, `value ge "anna@example.com"`, true},
		{emails, email, `value lt "b"`, true},
		{emails, email, `value le "a"`, false},
		{emails, email, `primary eq true`, true},
		{emails, email, `primary ne true`, false},
		{emails, email, `primary eq "true"`, false},
		{emails, email, `primary ne "true"`, true},
		{emails, email, `primary gt 1`, false},
		{emails, email, `type pr`, true},
		{emails, bare, `type pr`, false},
		{emails, map[string]any{"value": ""}, `value pr`, false},
		{emails, bare, `type eq null`, true},
		{emails, bare, `type ne null`, false},
		{emails, email, `type ne null`, true},
		{emails, bare, `type ne "x"`, true},
		{emails, bare, `type eq "x"`, false},
		{emails, email, `TYPE eq "WORK" and not (primary eq false)`, true},
		{emails, email, `type eq "home" or value ew "com"`, true},
		{emails, "not an object", `value eq "x"`, false},
		{members, member, `$ref eq "https://x/users/u1"`, false}, // caseExact
		{members, member, `$ref eq "https://x/Users/u1"`, true},
		{members, member, `value eq "U1"`, true}, // members.value is not caseExact
		{meta, map[string]any{"created": "2026-01-01T10:00:00+01:00"}, `created eq "2026-01-01T09:00:00Z"`, true},
		{meta, map[string]any{"created": "2026-01-01T10:00:00Z"}, `created gt "2026-01-01T09:00:00Z"`, true},
		{meta, map[string]any{"created": "2026-01-01T10:00:00Z"}, `created sw "2026-01"`, true},
	}
	for _, c := range cases {
		e, err := filter.Parse(c.filter)
		if err != nil {
			t.Fatalf("%s: %v", c.filter, err)
		}
		if err := checkFilter(c.attr, e); err != nil {
			t.Fatalf("%s: %v", c.filter, err)
		}
		if got := match(c.attr, e, c.v); got != c.want {
			t.Errorf("%s on %v: got %v, want %v", c.filter, c.v, got, c.want)
		}
	}
}

func TestMatchNumbers(t *testing.T) {
	a := &schema.Attribute{Name: "scores", Type: schema.TypeDecimal, MultiValued: true}
	for _, c := range []struct {
		filter string
		want   bool
	}{
		{`value eq 1.5`, true}, {`value gt 1`, true}, {`value lt 1`, false}, {`value ge 1.5`, true}, {`value le 2e0`, true}, {`value eq "1.5"`, false},
	} {
		e, err := filter.Parse(c.filter)
		if err != nil {
			t.Fatal(err)
		}
		if got := match(a, e, 1.5); got != c.want {
			t.Errorf("%s: got %v", c.filter, got)
		}
	}
}
