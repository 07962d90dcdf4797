package attrs_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rosterd/roster/daemon/attrs"
)

// testModel declares a custom attribute of every type.
func testModel() *attrs.Model {
	return attrs.NewModel("urn:example:params:scim:schemas:extension:roster:2.0:User", []attrs.Custom{
		{Name: "costCentreCode", Type: attrs.TypeString},
		{Name: "badge", Type: attrs.TypeString, CaseExact: true, MultiValued: true},
		{Name: "remote", Type: attrs.TypeBoolean},
		{Name: "floor", Type: attrs.TypeInteger},
		{Name: "fte", Type: attrs.TypeDecimal},
		{Name: "hired", Type: attrs.TypeDateTime},
		{Name: "wiki", Type: attrs.TypeReference},
	})
}

func TestParsePath(t *testing.T) {
	model := testModel()
	for _, c := range []struct {
		path   string
		column attrs.Column
		want   string // the document after setting "v", or the error part
	}{
		{"title", "", `{"title":"v"}`},
		{"Name.MiddleName", "", `{"name.middleName":"v"}`},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter", "", `{"costCenter":"v"}`},
		{`addresses[type eq "work"].locality`, "", `{"addresses":[{"locality":"v","type":"work","primary":true}]}`},
		{`roles[type eq "job"].display`, "", `{"roles":[{"display":"v","type":"job","primary":true}]}`},
		{"displayName", attrs.DisplayName, `{}`},
		{`emails[type eq "work"].value`, attrs.Email, `{}`},
		{`phoneNumbers[type eq "work"].value`, attrs.Phone, `{}`},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", attrs.Department, `{}`},
		{"employeeNumber", attrs.EmployeeNumber, `{}`},
		{"userName", "", "the source's own fields set it"},
		{"manager", "", "a manager is an id"},
		{"shoeSize", "", "in no schema"},
		{`phoneNumbers[type eq "mobile"].value`, "", "work phoneNumbers only"},
		{`addresses[type eq "work"].planet`, "", `no part "planet"`},
		{`addresses[value sw "x"].locality`, "", "by its type only"},
		{`roles[type eq "x"]`, "", "name the sub-attribute"},
		{"urn:example:custom:title", "", "not one roster serves"},
		// Custom attributes, with and without their URN; a value is set
		// by the attribute's type.
		{"urn:example:params:scim:schemas:extension:roster:2.0:User:costCentreCode", "", `{"custom":{"costcentrecode":"v"}}`},
		{"COSTCENTRECODE", "", `{"custom":{"costcentrecode":"v"}}`},
		{"badge", "", `{"custom":{"badge":["v"]}}`},
		{"urn:example:params:scim:schemas:extension:roster:2.0:User:title", "", `has no attribute "title"`},
		{"urn:example:params:scim:schemas:extension:roster:2.0:User:shoeSize", "", `has no attribute "shoeSize"`},
	} {
		p, err := attrs.ParsePath(c.path, model)
		if strings.HasPrefix(c.want, "{") {
			if err != nil || p.Column != c.column {
				t.Errorf("%s: column %q, %v", c.path, p.Column, err)
				continue
			}
			var d attrs.Doc
			p.Set(&d, "v")
			got, _ := d.Encode()
			if got == "" {
				got = "{}"
			}
			if got != c.want {
				t.Errorf("%s: %s, want %s", c.path, got, c.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", c.path, err, c.want)
		}
	}
}

// TestCustomValues: a source's text becomes the value of a custom
// attribute by its type, and text that is not of the type is refused by
// Check, which names why.
func TestCustomValues(t *testing.T) {
	model := testModel()
	for _, c := range []struct {
		path, in string
		want     string // the document, or the reason Check gives
	}{
		{"remote", "TRUE", `{"custom":{"remote":true}}`},
		{"remote", "yes", "not a boolean"},
		{"floor", "-3", `{"custom":{"floor":-3}}`},
		{"floor", "3.5", "not an integer"},
		{"floor", "9007199254740993", "not an integer"},
		{"fte", "0.75", `{"custom":{"fte":0.75}}`},
		{"fte", "NaN", "not a decimal"},
		{"hired", "2026-01-02T16:04:05+01:00", `{"custom":{"hired":"2026-01-02T15:04:05Z"}}`},
		{"hired", "2026-01-02", "not a date and time"},
		{"wiki", "https://wiki.example.com/u/1", `{"custom":{"wiki":"https://wiki.example.com/u/1"}}`},
		{"title", "not checked here", `{"title":"not checked here"}`},
	} {
		why := model.Check(c.path, c.in)
		if !strings.HasPrefix(c.want, "{") {
			if !strings.Contains(why, c.want) {
				t.Errorf("%s = %q: Check says %q, want %q", c.path, c.in, why, c.want)
			}
			continue
		}
		if why != "" {
			t.Errorf("%s = %q: Check refuses it: %s", c.path, c.in, why)
			continue
		}
		p, err := model.Lookup(c.path)
		if err != nil {
			t.Fatal(err)
		}
		var d attrs.Doc
		p.Set(&d, c.in)
		if got, _ := d.Encode(); got != c.want {
			t.Errorf("%s = %q: %s, want %s", c.path, c.in, got, c.want)
		}
		p.Unset(&d)
		if got, _ := d.Encode(); got != "" {
			t.Errorf("%s unset: %s", c.path, got)
		}
	}
}

// TestValidURN: the schema of custom attributes is a URN whose paths read
// back as written.
func TestValidURN(t *testing.T) {
	for urn, ok := range map[string]bool{
		"urn:example:params:scim:schemas:extension:roster:2.0:User": true,
		attrs.DefaultCustomURN:        true,
		"URN:acme-corp:scim:ext:User": true,
		"http://example.com/schema":   false,
		"urn:x:User":                  false, // a one-letter namespace
		"urn:example:":                false,
		"urn:example:ext::User":       false,
		"urn:example:ext:2.0":         false,
		"urn:example:ext/User":        false,
		"urn:example:ext:User[1]":     false,
		"urn:-example:ext:User":       false,
		"urn:example:ext:\u00e9User":  false,
	} {
		if err := attrs.ValidURN(urn); (err == nil) != ok {
			t.Errorf("%s: %v, want ok %v", urn, err, ok)
		}
	}
	for name, ok := range map[string]bool{"costCentreCode": true, "a-b_c1": true, "1a": false, "a.b": false, "a:b": false, "": false, "$ref": false} {
		if attrs.ValidName(name) != ok {
			t.Errorf("ValidName(%q) = %v", name, !ok)
		}
	}
}

// FuzzParsePath: any text parses or is refused, never a panic; a path
// that parses sets a document that encodes and decodes to itself.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"title", `addresses[type eq "work"].locality`, `roles[type eq ""].value`, "a[", "x:y:z", `ims[type  eq  "a"].display`,
		"urn:example:params:scim:schemas:extension:roster:2.0:User:floor", "fte", "hired", "badge", "remote"} {
		f.Add(s, "value")
	}
	f.Add("floor", "-12")
	f.Add("fte", "1e300")
	f.Add("hired", "2026-01-02T15:04:05.5+02:00")
	f.Add("remote", "False")
	model := testModel()
	f.Fuzz(func(t *testing.T, path, v string) {
		p, err := attrs.ParsePath(path, model)
		if err != nil || !utf8.ValidString(v) { // sources refuse invalid UTF-8 before
			return
		}
		if model.Check(path, v) != "" {
			return // sources refuse a value of the wrong type before
		}
		var d attrs.Doc
		p.Set(&d, v)
		p.Set(&d, v)
		enc, err := d.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := attrs.Decode([]byte(enc))
		if err != nil {
			t.Fatalf("%q does not decode: %v", enc, err)
		}
		if again, _ := back.Encode(); again != enc {
			t.Fatalf("%q encodes again as %q", enc, again)
		}
	})
}

// TestMultiPaths: a path without a type names all the untyped values of a
// multi-valued attribute; Add gives one more (a value held already is not
// repeated), Set makes the only one, Unset removes them and leaves the
// values with a type, which belong to typed paths.
func TestMultiPaths(t *testing.T) {
	model := testModel()
	for _, c := range []struct {
		path string
		want string // the document after Add of "a", "b", "a", or the error
	}{
		{"roles", `{"roles":[{"value":"a"},{"value":"b"}]}`},
		{"Entitlements.Value", `{"entitlements":[{"value":"a"},{"value":"b"}]}`},
		{"ims", `{"ims":[{"value":"a"},{"value":"b"}]}`},
		{"photos.value", `{"photos":[{"value":"a"},{"value":"b"}]}`},
		{"x509Certificates.value", `{"x509Certificates":[{"value":"a"},{"value":"b"}]}`},
		{"badge", `{"custom":{"badge":["a","b"]}}`},
		{"roles.display", "not an attribute a source can fill"},
		{"emails", "not an attribute a source can fill"},
	} {
		p, err := model.Lookup(c.path)
		if !strings.HasPrefix(c.want, "{") {
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v, want it to say %q", c.path, err, c.want)
			}
			continue
		}
		if err != nil || !p.Multi() {
			t.Errorf("%s: multi %v, %v", c.path, p.Multi(), err)
			continue
		}
		var d attrs.Doc
		for _, v := range []string{"a", "b", "a", ""} {
			p.Add(&d, v)
		}
		if got, _ := d.Encode(); got != c.want {
			t.Errorf("%s: %s, want %s", c.path, got, c.want)
		}
		p.Set(&d, "c")
		if got, _ := d.Encode(); !strings.Contains(got, `"c"`) || strings.Contains(got, `"a"`) {
			t.Errorf("%s set: %s", c.path, got)
		}
		p.Unset(&d)
		if got, _ := d.Encode(); got != "" {
			t.Errorf("%s unset: %s", c.path, got)
		}
	}
	// Typed values stay when the untyped ones go.
	typed, _ := model.Lookup(`roles[type eq "job"].value`)
	all, _ := model.Lookup("roles")
	if typed.Multi() {
		t.Error("a typed path takes one value")
	}
	var d attrs.Doc
	typed.Set(&d, "lead")
	all.Add(&d, "x")
	all.Unset(&d)
	if got, _ := d.Encode(); got != `{"roles":[{"value":"lead","type":"job","primary":true}]}` {
		t.Errorf("after unsetting roles: %s", got)
	}
}
