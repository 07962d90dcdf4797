package attrs_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rosterd/roster/daemon/attrs"
)

func TestParsePath(t *testing.T) {
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
	} {
		p, err := attrs.ParsePath(c.path)
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

// FuzzParsePath: any text parses or is refused, never a panic; a path
// that parses sets a document that encodes and decodes to itself.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"title", `addresses[type eq "work"].locality`, `roles[type eq ""].value`, "a[", "x:y:z", `ims[type  eq  "a"].display`} {
		f.Add(s, "value")
	}
	f.Fuzz(func(t *testing.T, path, v string) {
		p, err := attrs.ParsePath(path)
		if err != nil || !utf8.ValidString(v) { // sources refuse invalid UTF-8 before
			return
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
