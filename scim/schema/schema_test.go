package schema

import (
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name     string
		rt       ResourceType
		urn      string
		attr     string
		sub      string
		want     string // name of the attribute found; "" when not found
		wantURN  string
		wantType Type
	}{
		{name: "core", rt: Users, attr: "userName", want: "userName", wantURN: UserURN, wantType: TypeString},
		{name: "case-insensitive name", rt: Users, attr: "USERNAME", want: "userName", wantURN: UserURN},
		{name: "case-insensitive sub", rt: Users, attr: "emails", sub: "VALUE", want: "value", wantURN: UserURN},
		{name: "complex itself", rt: Users, attr: "name", want: "name", wantURN: UserURN, wantType: TypeComplex},
		{name: "sub-attribute", rt: Users, attr: "name", sub: "givenName", want: "givenName", wantURN: UserURN},
		{name: "$ref", rt: Users, attr: "groups", sub: "$REF", want: "$ref", wantURN: UserURN, wantType: TypeReference},
		{name: "qualified core", rt: Users, urn: UserURN, attr: "userName", want: "userName", wantURN: UserURN},
		{name: "qualified core, URN in other case", rt: Users, urn: strings.ToUpper(UserURN), attr: "active", want: "active", wantURN: UserURN},
		{name: "qualified enterprise", rt: Users, urn: EnterpriseURN, attr: "department", want: "department", wantURN: EnterpriseURN},
		{name: "qualified enterprise sub", rt: Users, urn: EnterpriseURN, attr: "manager", sub: "value", want: "value", wantURN: EnterpriseURN},
		{name: "unqualified enterprise", rt: Users, attr: "employeeNumber", want: "employeeNumber", wantURN: EnterpriseURN},
		{name: "core wins over enterprise", rt: Users, attr: "displayName", want: "displayName", wantURN: UserURN},
		{name: "common id", rt: Users, attr: "id", want: "id", wantURN: UserURN},
		{name: "common externalId", rt: Users, attr: "EXTERNALID", want: "externalId", wantURN: UserURN},
		{name: "common meta sub", rt: Users, attr: "meta", sub: "lastModified", want: "lastModified", wantURN: UserURN, wantType: TypeDateTime},
		{name: "common, core-qualified", rt: Users, urn: UserURN, attr: "id", want: "id", wantURN: UserURN},
		{name: "common on groups", rt: Groups, attr: "meta", sub: "version", want: "version", wantURN: GroupURN},
		{name: "group member value", rt: Groups, attr: "members", sub: "value", want: "value", wantURN: GroupURN},
		{name: "group displayName", rt: Groups, urn: GroupURN, attr: "displayName", want: "displayName", wantURN: GroupURN},

		{name: "unknown", rt: Users, attr: "nosuch"},
		{name: "in no schema", rt: Users, attr: "shoeSize"},
		{name: "empty name", rt: Users},
		{name: "unknown sub", rt: Users, attr: "name", sub: "nickName"},
		{name: "sub of a string", rt: Users, attr: "userName", sub: "value"},
		{name: "sub of a boolean", rt: Users, attr: "active", sub: "value"},
		{name: "sub of id", rt: Users, attr: "id", sub: "x"},
		{name: "enterprise attribute under core URN", rt: Users, urn: UserURN, attr: "department"},
		{name: "common attribute under extension URN", rt: Users, urn: EnterpriseURN, attr: "id"},
		{name: "core attribute under extension URN", rt: Users, urn: EnterpriseURN, attr: "userName"},
		{name: "unknown URN", rt: Users, urn: "urn:example:nosuch", attr: "userName"},
		{name: "group URN on users", rt: Users, urn: GroupURN, attr: "displayName"},
		{name: "enterprise on groups", rt: Groups, urn: EnterpriseURN, attr: "department"},
		{name: "unqualified enterprise on groups", rt: Groups, attr: "department"},
		{name: "user attribute on groups", rt: Groups, attr: "userName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, urn, ok := tt.rt.Lookup(tt.urn, tt.attr, tt.sub)
			if tt.want == "" {
				if ok || a != nil || urn != "" {
					t.Fatalf("Lookup(%q, %q, %q) = %v, %q, %v; want not found", tt.urn, tt.attr, tt.sub, a, urn, ok)
				}
				return
			}
			if !ok {
				t.Fatalf("Lookup(%q, %q, %q) found nothing; want %s", tt.urn, tt.attr, tt.sub, tt.want)
			}
			if a.Name != tt.want || urn != tt.wantURN {
				t.Errorf("Lookup(%q, %q, %q) = %s in %s; want %s in %s", tt.urn, tt.attr, tt.sub, a.Name, urn, tt.want, tt.wantURN)
			}
			if tt.wantType != "" && a.Type != tt.wantType {
				t.Errorf("type = %s; want %s", a.Type, tt.wantType)
			}
		})
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct{ path, urn, name, sub string }{
		{"userName", "", "userName", ""},
		{"name.givenName", "", "name", "givenName"},
		{"meta.lastModified", "", "meta", "lastModified"},
		{"groups.$ref", "", "groups", "$ref"},
		{UserURN + ":userName", UserURN, "userName", ""},
		{UserURN + ":name.familyName", UserURN, "name", "familyName"},
		{EnterpriseURN + ":manager.value", EnterpriseURN, "manager", "value"},
		{EnterpriseURN + ":department", EnterpriseURN, "department", ""},
		{EnterpriseURN, "urn:ietf:params:scim:schemas:extension:enterprise:2.0", "User", ""},
		{"", "", "", ""},
		{"a.b.c", "", "a", "b.c"},
	}
	for _, tt := range tests {
		urn, name, sub := SplitPath(tt.path)
		if urn != tt.urn || name != tt.name || sub != tt.sub {
			t.Errorf("SplitPath(%q) = %q, %q, %q; want %q, %q, %q", tt.path, urn, name, sub, tt.urn, tt.name, tt.sub)
		}
	}
}

func TestLookupPath(t *testing.T) {
	tests := []struct {
		path, want, wantURN string
	}{
		{"USERNAME", "userName", UserURN},
		{"emails.VALUE", "value", UserURN},
		{"name.givenName", "givenName", UserURN},
		{EnterpriseURN + ":department", "department", EnterpriseURN},
		{EnterpriseURN + ":manager.displayName", "displayName", EnterpriseURN},
		{UserURN + ":meta.lastModified", "lastModified", UserURN},
		{"userName.x", "", ""},
		{"a.b.c", "", ""},
		// The schema URN alone names no attribute.
		{EnterpriseURN, "", ""},
	}
	for _, tt := range tests {
		a, urn, ok := Users.LookupPath(tt.path)
		if tt.want == "" {
			if ok {
				t.Errorf("LookupPath(%q) found %s; want nothing", tt.path, a.Name)
			}
			continue
		}
		if !ok || a.Name != tt.want || urn != tt.wantURN {
			t.Errorf("LookupPath(%q) = %v, %q, %v; want %s in %s", tt.path, a, urn, ok, tt.want, tt.wantURN)
		}
	}
}

// every calls f for each attribute and sub-attribute of every schema and
// of the common attributes, with a path naming it.
func every(f func(path string, a *Attribute, parent *Attribute)) {
	var walk func(prefix string, attrs []*Attribute, parent *Attribute)
	walk = func(prefix string, attrs []*Attribute, parent *Attribute) {
		for _, a := range attrs {
			p := prefix + a.Name
			f(p, a, parent)
			walk(p+".", a.SubAttributes, a)
		}
	}
	walk("common:", Common, nil)
	for _, s := range []*Schema{User, Enterprise, Group} {
		walk(s.ID+":", s.Attributes, nil)
	}
}

func TestCharacteristicsComplete(t *testing.T) {
	types := map[Type]bool{TypeString: true, TypeBoolean: true, TypeDecimal: true, TypeInteger: true,
		TypeDateTime: true, TypeBinary: true, TypeReference: true, TypeComplex: true}
	mutabilities := map[Mutability]bool{ReadOnly: true, ReadWrite: true, Immutable: true, WriteOnly: true}
	returns := map[Returned]bool{ReturnedAlways: true, ReturnedNever: true, ReturnedDefault: true, ReturnedRequest: true}
	uniques := map[Uniqueness]bool{UniquenessNone: true, UniquenessServer: true, UniquenessGlobal: true}
	n := 0
	every(func(path string, a *Attribute, parent *Attribute) {
		n++
		if a.Name == "" {
			t.Errorf("%s: no name", path)
		}
		if a.Description == "" {
			t.Errorf("%s: no description", path)
		}
		if !types[a.Type] {
			t.Errorf("%s: type %q", path, a.Type)
		}
		if !mutabilities[a.Mutability] {
			t.Errorf("%s: mutability %q", path, a.Mutability)
		}
		if !returns[a.Returned] {
			t.Errorf("%s: returned %q", path, a.Returned)
		}
		if !uniques[a.Uniqueness] {
			t.Errorf("%s: uniqueness %q", path, a.Uniqueness)
		}
		if (a.Type == TypeComplex) != (len(a.SubAttributes) > 0) {
			t.Errorf("%s: type %s with %d sub-attributes", path, a.Type, len(a.SubAttributes))
		}
		// RFC 7643 §2.3.8: sub-attributes are never complex themselves.
		if parent != nil && a.Type == TypeComplex {
			t.Errorf("%s: a complex sub-attribute", path)
		}
		if (a.Type == TypeReference) != (len(a.ReferenceTypes) > 0) {
			t.Errorf("%s: type %s with reference types %v", path, a.Type, a.ReferenceTypes)
		}
		// A read-only parent cannot hold writable parts.
		if parent != nil && parent.Mutability == ReadOnly && a.Mutability != ReadOnly {
			t.Errorf("%s: %s under a read-only attribute", path, a.Mutability)
		}
	})
	if n < 30 {
		t.Errorf("walked only %d attributes", n)
	}
}

func TestNamesUnique(t *testing.T) {
	check := func(where string, attrs []*Attribute) {
		seen := map[string]bool{}
		for _, a := range attrs {
			k := strings.ToLower(a.Name)
			if seen[k] {
				t.Errorf("%s: %s defined twice", where, a.Name)
			}
			seen[k] = true
		}
	}
	// Common attributes share the top level with the core attributes, so
	// a core name equal to a common one would be shadowed.
	check("User", append(append([]*Attribute{}, Common...), User.Attributes...))
	check("Group", append(append([]*Attribute{}, Common...), Group.Attributes...))
	check("Enterprise", Enterprise.Attributes)
	every(func(path string, a, _ *Attribute) { check(path, a.SubAttributes) })
}

func TestKeyCharacteristics(t *testing.T) {
	get := func(rt ResourceType, path string) *Attribute {
		t.Helper()
		a, _, ok := rt.LookupPath(path)
		if !ok {
			t.Fatalf("%s not found", path)
		}
		return a
	}

	if a := get(Users, "password"); a.Mutability != WriteOnly || a.Returned != ReturnedNever {
		t.Errorf("password: %s, returned %s; want writeOnly, never", a.Mutability, a.Returned)
	}
	for _, rt := range []ResourceType{Users, Groups} {
		a := get(rt, "id")
		if a.Returned != ReturnedAlways || a.Mutability != ReadOnly || !a.CaseExact || a.Uniqueness != UniquenessServer {
			t.Errorf("%s id: %+v", rt.ID, a)
		}
		if a := get(rt, "externalId"); a.Mutability != ReadWrite || !a.CaseExact {
			t.Errorf("%s externalId: %+v", rt.ID, a)
		}
		if a := get(rt, "meta"); a.Mutability != ReadOnly || a.Type != TypeComplex {
			t.Errorf("%s meta: %+v", rt.ID, a)
		}
	}
	g := get(Users, "groups")
	if g.Mutability != ReadOnly || !g.MultiValued {
		t.Errorf("groups: %s, multiValued %v; want readOnly, multi-valued", g.Mutability, g.MultiValued)
	}
	for _, s := range g.SubAttributes {
		if s.Mutability != ReadOnly {
			t.Errorf("groups.%s: %s; want readOnly", s.Name, s.Mutability)
		}
	}
	if a := get(Users, "userName"); !a.Required || a.CaseExact || a.Uniqueness != UniquenessServer {
		t.Errorf("userName: %+v; want required, case-insensitive, unique in the server", a)
	}
	if a := get(Users, "active"); a.Type != TypeBoolean {
		t.Errorf("active: type %s", a.Type)
	}
	if a := get(Groups, "displayName"); !a.Required || a.Uniqueness != UniquenessNone {
		t.Errorf("group displayName: %+v", a)
	}
	if a := get(Groups, "members.value"); a.Mutability != Immutable {
		t.Errorf("members.value: %s; want immutable", a.Mutability)
	}
	if a := get(Users, EnterpriseURN+":manager.displayName"); a.Mutability != ReadOnly {
		t.Errorf("manager.displayName: %s; want readOnly", a.Mutability)
	}
	if a := get(Users, "emails.type"); strings.Join(a.CanonicalValues, ",") != "work,home,other" {
		t.Errorf("emails.type canonical values %v", a.CanonicalValues)
	}
	if a := get(Users, "groups.type"); strings.Join(a.CanonicalValues, ",") != "direct,indirect" {
		t.Errorf("groups.type canonical values %v", a.CanonicalValues)
	}
	if a := get(Groups, "members.type"); strings.Join(a.CanonicalValues, ",") != "User,Group" {
		t.Errorf("members.type canonical values %v", a.CanonicalValues)
	}
}

// TestOnlyStored keeps discovery truthful: the User schema lists exactly
// what roster stores or derives, and nothing from RFC 7643 it does not.
// TestWholeModel pins the published schemas to the whole RFC 7643 §4.1
// User and §4.3 enterprise extension (SPEC §2.1): every attribute and
// sub-attribute, in the RFC's order.
func TestWholeModel(t *testing.T) {
	plural := func(name string) []string {
		return []string{name + ".value", name + ".display", name + ".type", name + ".primary"}
	}
	var user []string
	user = append(user, "userName", "name.formatted", "name.familyName", "name.givenName", "name.middleName",
		"name.honorificPrefix", "name.honorificSuffix", "displayName", "nickName", "profileUrl", "title",
		"userType", "preferredLanguage", "locale", "timezone", "active", "password")
	user = append(user, plural("emails")...)
	user = append(user, plural("phoneNumbers")...)
	user = append(user, plural("ims")...)
	user = append(user, plural("photos")...)
	user = append(user, "addresses.formatted", "addresses.streetAddress", "addresses.locality", "addresses.region",
		"addresses.postalCode", "addresses.country", "addresses.type", "addresses.primary",
		"groups.value", "groups.$ref", "groups.display", "groups.type")
	user = append(user, plural("entitlements")...)
	user = append(user, plural("roles")...)
	user = append(user, plural("x509Certificates")...)
	want := map[*Schema][]string{
		User: user,
		Enterprise: {"employeeNumber", "costCenter", "organization", "division", "department",
			"manager.value", "manager.$ref", "manager.displayName"},
		Group: {"displayName", "members.value", "members.$ref", "members.type", "members.display"},
	}
	for s, paths := range want {
		var got []string
		for _, a := range s.Attributes {
			if len(a.SubAttributes) == 0 {
				got = append(got, a.Name)
			}
			for _, sub := range a.SubAttributes {
				got = append(got, a.Name+"."+sub.Name)
			}
		}
		if strings.Join(got, " ") != strings.Join(paths, " ") {
			t.Errorf("%s attributes:\n got %v\nwant %v", s.Name, got, paths)
		}
	}
}

func TestSchemaByURN(t *testing.T) {
	custom := "urn:example:params:scim:schemas:extension:roster:2.0:User"
	for _, urn := range []string{UserURN, EnterpriseURN, strings.ToLower(EnterpriseURN), custom, strings.ToUpper(custom)} {
		if s, ok := testCustom.SchemaByURN(urn); !ok || !strings.EqualFold(s.ID, urn) {
			t.Errorf("SchemaByURN(%q) = %v, %v", urn, s, ok)
		}
	}
	for _, urn := range []string{"", SchemaURN, GroupURN, UserURN + ":userName"} {
		if _, ok := testCustom.SchemaByURN(urn); ok {
			t.Errorf("SchemaByURN(%q) found a schema", urn)
		}
	}
	// The schema of the custom attributes is the User's only where it
	// was given.
	if _, ok := Users.SchemaByURN(custom); ok {
		t.Error("the User type without custom attributes has their schema")
	}
	if _, ok := Groups.SchemaByURN(GroupURN); !ok {
		t.Error("the Group type lacks its schema")
	}
}

// TestCustomLookup: custom attributes are found with their URN or
// without, by any case, and never shadow a core name.
func TestCustomLookup(t *testing.T) {
	custom := "urn:example:params:scim:schemas:extension:roster:2.0:User"
	for path, want := range map[string]string{
		custom + ":floor": custom,
		"FLOOR":           custom,
		"urn:EXAMPLE:params:scim:schemas:extension:roster:2.0:user:Remote": custom,
		"userName":              UserURN,
		custom + ":userName":    "",
		custom + ":floor.value": "",
		"urn:example:params:scim:schemas:extension:other:2.0:User:floor": "",
	} {
		_, owner, ok := testCustom.LookupPath(path)
		if owner != want || ok != (want != "") {
			t.Errorf("LookupPath(%q) = %q, %v; want %q", path, owner, ok, want)
		}
	}
}

func FuzzLookupPath(f *testing.F) {
	for _, s := range []string{"userName", "emails.value", EnterpriseURN + ":manager.value", "meta.lastModified", "a:b.c.d", ":", ".",
		"urn:example:params:scim:schemas:extension:roster:2.0:User:floor", "hired", "badges.value"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		for _, rt := range []ResourceType{Users, Groups, testCustom} {
			a, urn, ok := rt.LookupPath(path)
			if ok != (a != nil) || ok != (urn != "") {
				t.Fatalf("LookupPath(%q) = %v, %q, %v", path, a, urn, ok)
			}
			if _, mine := rt.SchemaByURN(urn); ok && !mine {
				t.Fatalf("LookupPath(%q) on %s answered schema %s", path, rt.ID, urn)
			}
		}
	})
}
