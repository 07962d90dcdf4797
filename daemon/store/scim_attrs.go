package store

import (
	"strings"

	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/scim"
)

// The attributes of a user that have no column of their own live in the
// users.attrs document (package attrs); these convert it to and from the
// SCIM wire form. The value types have the same fields, so a conversion
// is a copy.

// attrsOf collects the attributes of u that live in the document.
func attrsOf(u *scim.User) attrs.Doc {
	a := attrs.Doc{
		NickName: u.NickName, ProfileURL: u.ProfileURL, Title: u.Title, UserType: u.UserType,
		PreferredLanguage: u.PreferredLanguage, Locale: u.Locale, Timezone: u.Timezone,
		Ims: docValues(u.Ims), Photos: docValues(u.Photos), Entitlements: docValues(u.Entitlements),
		Roles: docValues(u.Roles), X509Certificates: docValues(u.X509Certificates),
	}
	for _, ad := range u.Addresses {
		a.Addresses = append(a.Addresses, attrs.Address(ad))
	}
	if n := u.Name; n != nil {
		a.Formatted, a.MiddleName, a.HonorificPrefix, a.HonorificSuffix = n.Formatted, n.MiddleName, n.HonorificPrefix, n.HonorificSuffix
	}
	if e := u.Enterprise; e != nil {
		a.CostCenter, a.Organization, a.Division = e.CostCenter, e.Organization, e.Division
	}
	if c := u.Custom; c != nil && len(c.Values) > 0 {
		// Keyed as attrs.Custom.Key keys them, so that sources and SCIM
		// clients fill the same place.
		a.Custom = make(map[string]any, len(c.Values))
		for k, v := range c.Values {
			a.Custom[strings.ToLower(k)] = v
		}
	}
	return a
}

func docValues(vs []scim.MultiValue) []attrs.Value {
	var out []attrs.Value
	for _, v := range vs {
		out = append(out, attrs.Value(v))
	}
	return out
}

func wireValues(vs []attrs.Value) []scim.MultiValue {
	var out []scim.MultiValue
	for _, v := range vs {
		out = append(out, scim.MultiValue(v))
	}
	return out
}

// decodeUserAttrs reads the column into u: the name parts, the enterprise
// parts and the multi-valued attributes it holds. given and family are
// the columns, for the derived name.formatted.
func decodeUserAttrs(raw []byte, u *scim.User, given, family string) error {
	a, err := attrs.Decode(raw)
	if err != nil {
		return err
	}
	u.NickName, u.ProfileURL, u.Title, u.UserType = a.NickName, a.ProfileURL, a.Title, a.UserType
	u.PreferredLanguage, u.Locale, u.Timezone = a.PreferredLanguage, a.Locale, a.Timezone
	u.Ims, u.Photos, u.Entitlements = wireValues(a.Ims), wireValues(a.Photos), wireValues(a.Entitlements)
	u.Roles, u.X509Certificates = wireValues(a.Roles), wireValues(a.X509Certificates)
	for _, ad := range a.Addresses {
		u.Addresses = append(u.Addresses, scim.Address(ad))
	}
	n := scim.Name{GivenName: given, FamilyName: family, Formatted: a.Formatted,
		MiddleName: a.MiddleName, HonorificPrefix: a.HonorificPrefix, HonorificSuffix: a.HonorificSuffix}
	if n.Formatted == "" {
		n.Formatted, n.Derived = scim.FormattedName(given, family), true
	}
	if n != (scim.Name{}) && n != (scim.Name{Derived: true}) {
		u.Name = &n
	}
	if a.CostCenter != "" || a.Organization != "" || a.Division != "" {
		if u.Enterprise == nil {
			u.Enterprise = &scim.EnterpriseUser{}
		}
		u.Enterprise.CostCenter, u.Enterprise.Organization, u.Enterprise.Division = a.CostCenter, a.Organization, a.Division
	}
	if len(a.Custom) > 0 {
		u.Custom = &scim.CustomValues{Values: a.Custom} // named and checked by the SCIM handler
	}
	return nil
}

// encodeAttrs renders a document for the column, whose default "{}" is
// the empty one.
func encodeAttrs(d *attrs.Doc) (string, error) {
	s, err := d.Encode()
	if s == "" {
		s = "{}"
	}
	return s, err
}
