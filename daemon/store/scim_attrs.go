package store

import (
	"encoding/json"
	"fmt"

	"github.com/rosterd/roster/scim"
)

// userAttrs are the attributes of a user (SPEC §2.1) that have no column
// of their own: the users.attrs JSON document. Keys are the attributes'
// paths in the schema without their URN (name parts with a dot), so that
// filters reach each one with a constant JSON path (see scimJSON). Only
// assigned values are kept: an absent key is an unassigned attribute.
type userAttrs struct {
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

	Ims              []scim.MultiValue `json:"ims,omitempty"`
	Photos           []scim.MultiValue `json:"photos,omitempty"`
	Addresses        []scim.Address    `json:"addresses,omitempty"`
	Entitlements     []scim.MultiValue `json:"entitlements,omitempty"`
	Roles            []scim.MultiValue `json:"roles,omitempty"`
	X509Certificates []scim.MultiValue `json:"x509Certificates,omitempty"`
}

// attrsOf collects the attributes of u that live in the document.
func attrsOf(u *scim.User) userAttrs {
	a := userAttrs{
		NickName: u.NickName, ProfileURL: u.ProfileURL, Title: u.Title, UserType: u.UserType,
		PreferredLanguage: u.PreferredLanguage, Locale: u.Locale, Timezone: u.Timezone,
		Ims: u.Ims, Photos: u.Photos, Addresses: u.Addresses, Entitlements: u.Entitlements,
		Roles: u.Roles, X509Certificates: u.X509Certificates,
	}
	if n := u.Name; n != nil {
		a.Formatted, a.MiddleName, a.HonorificPrefix, a.HonorificSuffix = n.Formatted, n.MiddleName, n.HonorificPrefix, n.HonorificSuffix
	}
	if e := u.Enterprise; e != nil {
		a.CostCenter, a.Organization, a.Division = e.CostCenter, e.Organization, e.Division
	}
	return a
}

// encode renders the document as the column holds it; "{}" when empty,
// which is also the column's default.
func (a userAttrs) encode() (string, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("encode the attributes of a user: %w", err)
	}
	return string(b), nil
}

// decodeUserAttrs reads the column into u: the name parts, the enterprise
// parts and the multi-valued attributes it holds. given and family are
// the columns, for the derived name.formatted.
func decodeUserAttrs(raw []byte, u *scim.User, given, family string) error {
	var a userAttrs
	if len(raw) > 2 { // "{}" is the common case
		if err := json.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("read the attributes of user %s: %w", u.ID, err)
		}
	}
	u.NickName, u.ProfileURL, u.Title, u.UserType = a.NickName, a.ProfileURL, a.Title, a.UserType
	u.PreferredLanguage, u.Locale, u.Timezone = a.PreferredLanguage, a.Locale, a.Timezone
	u.Ims, u.Photos, u.Addresses, u.Entitlements, u.Roles, u.X509Certificates = a.Ims, a.Photos, a.Addresses, a.Entitlements, a.Roles, a.X509Certificates
	n := scim.Name{GivenName: given, FamilyName: family, Formatted: a.Formatted,
		MiddleName: a.MiddleName, HonorificPrefix: a.HonorificPrefix, HonorificSuffix: a.HonorificSuffix}
	if n.Formatted == "" {
		n.Formatted = scim.FormattedName(given, family)
	}
	if n != (scim.Name{}) {
		u.Name = &n
	}
	if a.CostCenter != "" || a.Organization != "" || a.Division != "" {
		if u.Enterprise == nil {
			u.Enterprise = &scim.EnterpriseUser{}
		}
		u.Enterprise.CostCenter, u.Enterprise.Organization, u.Enterprise.Division = a.CostCenter, a.Organization, a.Division
	}
	return nil
}
