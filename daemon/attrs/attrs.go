// Package attrs is the attribute document of a user: the attributes of
// SPEC §2.1 that have no column of their own, in the form the store keeps
// them (users.attrs), and the attribute paths through which sources fill
// them (csv extra_columns, the http source's map, push fields).
package attrs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Doc is the document. Keys are the attributes' paths in the schema
// without their URN (name parts with a dot), so that the store's filters
// reach each one with a constant JSON path. Only assigned values are
// kept: an absent key is an unassigned attribute. Its encoding is
// canonical (fixed key order), so equal documents encode to equal text.
type Doc struct {
	Formatted         string `json:"name.formatted,omitempty"`
	MiddleName        string `json:"name.middleName,omitempty"`
	HonorificPrefix   string `json:"name.honorificPrefix,omitempty"`
	HonorificSuffix   string `json:"name.honorificSuffix,omitempty"`
	NickName          string `json:"nickName,omitempty"`
	ProfileURL        string `json:"profileUrl,omitempty"`
	Title             string `json:"title,omitempty"`
	UserType          string `json:"userType,omitempty"`
	PreferredLanguage string `json:"preferredLanguage,omitempty"`
	Locale            string `json:"locale,omitempty"`
	Timezone          string `json:"timezone,omitempty"`
	CostCenter        string `json:"costCenter,omitempty"`
	Organization      string `json:"organization,omitempty"`
	Division          string `json:"division,omitempty"`

	Ims              []Value   `json:"ims,omitempty"`
	Photos           []Value   `json:"photos,omitempty"`
	Addresses        []Address `json:"addresses,omitempty"`
	Entitlements     []Value   `json:"entitlements,omitempty"`
	Roles            []Value   `json:"roles,omitempty"`
	X509Certificates []Value   `json:"x509Certificates,omitempty"`

	// Custom holds the values of the custom attributes (Model), by
	// Custom.Key: a string, bool or float64, or a []any of them for a
	// multi-valued attribute; dateTimes are strings in UTC. They sit in
	// an object of their own so that no custom name meets a key above.
	Custom map[string]any `json:"custom,omitempty"`
}

// Value is one value of a multi-valued attribute of the common shape.
type Value struct {
	Value   string `json:"value,omitempty"`
	Display string `json:"display,omitempty"`
	Type    string `json:"type,omitempty"`
	Primary *bool  `json:"primary,omitempty"`
}

// Address is one address.
type Address struct {
	Formatted     string `json:"formatted,omitempty"`
	StreetAddress string `json:"streetAddress,omitempty"`
	Locality      string `json:"locality,omitempty"`
	Region        string `json:"region,omitempty"`
	PostalCode    string `json:"postalCode,omitempty"`
	Country       string `json:"country,omitempty"`
	Type          string `json:"type,omitempty"`
	Primary       *bool  `json:"primary,omitempty"`
}

// Encode renders d as the store keeps it: "" for an empty document (the
// column's default, "{}", stands for it).
func (d *Doc) Encode() (string, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("encode the attributes of a user: %w", err)
	}
	if string(b) == "{}" {
		return "", nil
	}
	return string(b), nil
}

// Decode reads a stored document ("" and "{}" are empty).
func Decode(raw []byte) (Doc, error) {
	var d Doc
	if len(raw) > 2 {
		if err := json.Unmarshal(raw, &d); err != nil {
			return d, fmt.Errorf("read the attributes of a user: %w", err)
		}
	}
	return d, nil
}

// Column names an attribute a source fills that is not in the document
// but in a column of its own; the reconcile engine sets those.
type Column string

// The columns a source may fill by attribute path.
const (
	DisplayName    Column = "displayName"
	Email          Column = "email"          // the primary work e-mail
	Phone          Column = "phone"          // the primary work phone number
	EmployeeNumber Column = "employeeNumber" // enterprise
	Department     Column = "department"     // enterprise
)

// Path is an attribute path a source fills, parsed: either a Column or a
// place in the document.
type Path struct {
	// Text is the path as configured.
	Text   string
	Column Column
	set    func(d *Doc, v string)
	// add, set for a path that names all the values of a multi-valued
	// attribute, appends one value.
	add func(d *Doc, v string)
	// custom is the custom attribute the path names, if it does.
	custom *Custom
}

// Multi reports whether the path names all the values of a multi-valued
// attribute (roles, entitlements.value, a multi_valued custom attribute),
// so that a source with several values for it gives each (Add).
func (p Path) Multi() bool { return p.add != nil }

// Add puts v at the path in d as one more value when the path is Multi,
// leaving out a value d already holds there; otherwise it is Set.
func (p Path) Add(d *Doc, v string) {
	if p.add == nil {
		p.Set(d, v)
		return
	}
	if v != "" {
		p.add(d, v)
	}
}

// Set puts v at the path in d; a column path leaves d alone, and so does
// an empty v.
func (p Path) Set(d *Doc, v string) {
	if p.set != nil && v != "" {
		p.set(d, v)
	}
}

// Unset leaves the path of d unassigned: a value of a multi-valued
// attribute, or an address, that holds nothing else goes with it.
func (p Path) Unset(d *Doc) {
	if p.set == nil {
		return
	}
	p.set(d, "")
	if len(d.Custom) == 0 {
		d.Custom = nil
	}
	d.Addresses = slices.DeleteFunc(d.Addresses, func(a Address) bool { return a == Address{Type: a.Type, Primary: a.Primary} })
	for _, vs := range []*[]Value{&d.Ims, &d.Photos, &d.Entitlements, &d.Roles, &d.X509Certificates} {
		*vs = slices.DeleteFunc(*vs, func(v Value) bool { return v.Value == "" && v.Display == "" })
	}
}

const enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// scalars are the string attributes of the document by lower-cased path.
var scalars = map[string]func(d *Doc) *string{
	"name.formatted":       func(d *Doc) *string { return &d.Formatted },
	"name.middlename":      func(d *Doc) *string { return &d.MiddleName },
	"name.honorificprefix": func(d *Doc) *string { return &d.HonorificPrefix },
	"name.honorificsuffix": func(d *Doc) *string { return &d.HonorificSuffix },
	"nickname":             func(d *Doc) *string { return &d.NickName },
	"profileurl":           func(d *Doc) *string { return &d.ProfileURL },
	"title":                func(d *Doc) *string { return &d.Title },
	"usertype":             func(d *Doc) *string { return &d.UserType },
	"preferredlanguage":    func(d *Doc) *string { return &d.PreferredLanguage },
	"locale":               func(d *Doc) *string { return &d.Locale },
	"timezone":             func(d *Doc) *string { return &d.Timezone },
	"costcenter":           func(d *Doc) *string { return &d.CostCenter },
	"organization":         func(d *Doc) *string { return &d.Organization },
	"division":             func(d *Doc) *string { return &d.Division },
}

// plurals are the multi-valued attributes of the common shape.
var plurals = map[string]func(d *Doc) *[]Value{
	"ims":              func(d *Doc) *[]Value { return &d.Ims },
	"photos":           func(d *Doc) *[]Value { return &d.Photos },
	"entitlements":     func(d *Doc) *[]Value { return &d.Entitlements },
	"roles":            func(d *Doc) *[]Value { return &d.Roles },
	"x509certificates": func(d *Doc) *[]Value { return &d.X509Certificates },
}

// addressParts are the string sub-attributes of an address.
var addressParts = map[string]func(a *Address) *string{
	"formatted":     func(a *Address) *string { return &a.Formatted },
	"streetaddress": func(a *Address) *string { return &a.StreetAddress },
	"locality":      func(a *Address) *string { return &a.Locality },
	"region":        func(a *Address) *string { return &a.Region },
	"postalcode":    func(a *Address) *string { return &a.PostalCode },
	"country":       func(a *Address) *string { return &a.Country },
}

// ParsePath reads an attribute path a source may fill (SPEC §2.1):
//
//   - a string attribute of the User or its enterprise extension, with or
//     without its schema URN: title, name.middleName,
//     urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter;
//   - a custom attribute of m, with or without m's URN:
//     urn:example:params:scim:schemas:extension:roster:2.0:User:costCentreCode;
//     its value is converted by the attribute's type (Custom.Value), and
//     a multi-valued one gets the value as its only value;
//   - all the values of a multi-valued attribute of the common shape
//     that have no type: roles, entitlements.value, ims, photos.value,
//     x509Certificates.value (Multi; a source with several values gives
//     each with Add);
//   - a value of a multi-valued attribute chosen by its type, as SCIM
//     filtered paths write it: roles[type eq "job"].value,
//     addresses[type eq "work"].locality; the value whose type comes
//     first in a record is primary;
//   - displayName, emails[type eq "work"].value, phoneNumbers[type eq
//     "work"].value, employeeNumber and department, which are columns.
//
// Names match case-insensitively. Paths that only roster sets (id, meta,
// groups, manager, active, password, userName, name.givenName and
// name.familyName, which sources fill in their own fields) are refused,
// with the reason. m may be nil: no custom attributes.
func ParsePath(text string, m *Model) (Path, error) {
	p := Path{Text: text}
	if !utf8.ValidString(text) {
		return p, fmt.Errorf("%q is not valid UTF-8", text)
	}
	s := strings.TrimSpace(text)
	custom := false
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		urn := s[:i]
		switch {
		case m != nil && strings.EqualFold(urn, m.URN):
			custom = true
		case !strings.EqualFold(urn, enterpriseURN) && !strings.EqualFold(urn, "urn:ietf:params:scim:schemas:core:2.0:User"):
			return p, fmt.Errorf("%q: the schema %q is not one roster serves", text, urn)
		}
		s = s[i+1:]
	}
	if c, ok := m.Find(s); ok && (custom || !isCore(s)) {
		p.custom = &c
		p.set = func(d *Doc, v string) {
			if v == "" {
				delete(d.Custom, c.Key())
				return
			}
			x, err := c.Value(v)
			if err != nil {
				return // the source checked its values (Model.Check)
			}
			if c.MultiValued {
				x = []any{x}
			}
			if d.Custom == nil {
				d.Custom = map[string]any{}
			}
			d.Custom[c.Key()] = x
		}
		if c.MultiValued {
			p.add = func(d *Doc, v string) {
				x, err := c.Value(v)
				if err != nil {
					return // the source checked its values (Model.Check)
				}
				old, _ := d.Custom[c.Key()].([]any)
				if slices.Contains(old, x) {
					return
				}
				if d.Custom == nil {
					d.Custom = map[string]any{}
				}
				d.Custom[c.Key()] = append(old, x)
			}
		}
		return p, nil
	}
	if custom {
		return p, fmt.Errorf("%q: the schema %q has no attribute %q (attributes.custom)", text, m.URN, s)
	}
	attr, typ, sub, err := splitFiltered(s)
	if err != nil {
		return p, fmt.Errorf("%q: %w", text, err)
	}
	key := strings.ToLower(attr)
	if typ == "" {
		switch key {
		case "displayname":
			p.Column = DisplayName
			return p, nil
		case "employeenumber":
			p.Column = EmployeeNumber
			return p, nil
		case "department":
			p.Column = Department
			return p, nil
		}
		full := key
		if sub != "" {
			full += "." + strings.ToLower(sub)
		}
		if f, ok := scalars[full]; ok {
			p.set = func(d *Doc, v string) { *f(d) = v }
			return p, nil
		}
		if f, ok := plurals[key]; ok && (sub == "" || strings.EqualFold(sub, "value")) {
			allValues(&p, f)
			return p, nil
		}
		return p, fmt.Errorf("%q is not an attribute a source can fill: %s", text, whyNot(full))
	}
	lsub := strings.ToLower(sub)
	switch {
	case key == "emails" || key == "phonenumbers":
		if !strings.EqualFold(typ, "work") || lsub != "value" {
			return p, fmt.Errorf("%q: a source fills the work %s only (%s[type eq \"work\"].value)", text, attr, attr)
		}
		p.Column = Email
		if key == "phonenumbers" {
			p.Column = Phone
		}
		return p, nil
	case key == "addresses":
		f, ok := addressParts[lsub]
		if !ok {
			return p, fmt.Errorf("%q: an address has no part %q", text, sub)
		}
		p.set = func(d *Doc, v string) { *f(address(d, typ)) = v }
		return p, nil
	}
	f, ok := plurals[key]
	if !ok {
		return p, fmt.Errorf("%q is not an attribute a source can fill: %s", text, whyNot(key))
	}
	if lsub != "value" && lsub != "display" {
		return p, fmt.Errorf("%q: fill the value or the display of a %s", text, attr)
	}
	p.set = func(d *Doc, v string) {
		vs := f(d)
		i := slices.IndexFunc(*vs, func(x Value) bool { return x.Type == typ })
		if i < 0 {
			*vs = append(*vs, Value{Type: typ})
			i = len(*vs) - 1
			if i == 0 {
				t := true
				(*vs)[0].Primary = &t
			}
		}
		if lsub == "value" {
			(*vs)[i].Value = v
		} else {
			(*vs)[i].Display = v
		}
	}
	return p, nil
}

// allValues makes p the path of all the values of a multi-valued
// attribute that have no type (roles, entitlements.value): Set makes v
// the only one, Add appends it. Values with a type belong to the typed
// paths (roles[type eq "job"].value), which these leave alone.
func allValues(p *Path, f func(d *Doc) *[]Value) {
	untyped := func(x Value) bool { return x.Type == "" }
	p.set = func(d *Doc, v string) {
		vs := f(d)
		*vs = slices.DeleteFunc(*vs, untyped)
		if v != "" {
			*vs = append(*vs, Value{Value: v})
		}
	}
	p.add = func(d *Doc, v string) {
		vs := f(d)
		if !slices.ContainsFunc(*vs, func(x Value) bool { return untyped(x) && x.Value == v }) {
			*vs = append(*vs, Value{Value: v})
		}
	}
}

// Lookup is ParsePath for a path used again and again, such as the paths
// of a source's configuration applied to each of its records; m keeps
// what it parsed.
func (m *Model) Lookup(text string) (Path, error) {
	cache := &noCustom
	if m != nil {
		cache = &m.paths
	}
	if p, ok := cache.Load(text); ok {
		return p.(Path), nil
	}
	p, err := ParsePath(text, m)
	if err != nil {
		return p, err
	}
	cache.Store(text, p)
	return p, nil
}

// noCustom is Lookup's cache for the nil Model.
var noCustom sync.Map

// Check checks a source's value for the attribute path by the type of a
// custom attribute of m; other paths and "" pass (see sources.CheckAttribute
// for theirs). It returns "" or the reason, to follow the quoted value.
func (m *Model) Check(path, v string) string {
	if v == "" || m == nil {
		return ""
	}
	p, err := m.Lookup(path)
	if err != nil || p.custom == nil {
		return ""
	}
	if _, err := p.custom.Value(v); err != nil {
		return err.Error()
	}
	return ""
}

// isCore reports whether name is an attribute of the core User or its
// enterprise extension, which an unqualified name means before a custom
// one (the configuration keeps custom names apart from them).
func isCore(name string) bool {
	_, ok := coreNames[strings.ToLower(name)]
	return ok
}

// coreNames are the top-level attribute names of the User, its
// enterprise extension and the common attributes (RFC 7643 §3.1, §4.1,
// §4.3), lower-cased.
var coreNames = map[string]struct{}{}

// CoreName reports whether name (any case) is taken by the User resource
// type's fixed schemas, so that a custom attribute cannot be called so.
func CoreName(name string) bool { return isCore(name) }

func init() {
	for _, n := range []string{"schemas", "id", "externalId", "meta", "userName", "name", "displayName", "nickName",
		"profileUrl", "title", "userType", "preferredLanguage", "locale", "timezone", "active", "password", "emails",
		"phoneNumbers", "ims", "photos", "addresses", "groups", "entitlements", "roles", "x509Certificates",
		"employeeNumber", "costCenter", "organization", "division", "department", "manager"} {
		coreNames[strings.ToLower(n)] = struct{}{}
	}
}

// address returns the address of the type, adding it when missing; the
// first address is primary.
func address(d *Doc, typ string) *Address {
	for i := range d.Addresses {
		if d.Addresses[i].Type == typ {
			return &d.Addresses[i]
		}
	}
	a := Address{Type: typ}
	if len(d.Addresses) == 0 {
		t := true
		a.Primary = &t
	}
	d.Addresses = append(d.Addresses, a)
	return &d.Addresses[len(d.Addresses)-1]
}

// splitFiltered splits `attr`, `attr.sub` or `attr[type eq "x"].sub`.
func splitFiltered(s string) (attr, typ, sub string, err error) {
	i := strings.IndexByte(s, '[')
	if i < 0 {
		attr, sub, _ = strings.Cut(s, ".")
		return attr, "", sub, nil
	}
	attr = s[:i]
	rest := s[i+1:]
	j := strings.IndexByte(rest, ']')
	if j < 0 {
		return "", "", "", fmt.Errorf("the value filter has no closing ]")
	}
	f, after := strings.TrimSpace(rest[:j]), rest[j+1:]
	fields := strings.Fields(f)
	if len(fields) != 3 || !strings.EqualFold(fields[0], "type") || !strings.EqualFold(fields[1], "eq") ||
		len(fields[2]) < 3 || fields[2][0] != '"' || fields[2][len(fields[2])-1] != '"' {
		return "", "", "", fmt.Errorf(`a source selects a value by its type only, such as [type eq "work"]`)
	}
	typ = fields[2][1 : len(fields[2])-1]
	sub, ok := strings.CutPrefix(after, ".")
	if !ok || sub == "" {
		return "", "", "", fmt.Errorf("name the sub-attribute after the ], such as .value")
	}
	return attr, typ, sub, nil
}

func whyNot(path string) string {
	switch path {
	case "id", "externalid", "meta", "groups", "username", "name.givenname", "name.familyname", "active", "password":
		return "the source's own fields set it"
	case "manager":
		return "a manager is an id of the directory, which a source does not know"
	}
	return "it is in no schema roster serves (see /Schemas)"
}
