package scim

import (
	"encoding/json"
	"time"

	"github.com/rosterd/roster/scim/schema"
)

// User is a User resource (RFC 7643 §4.1) with the enterprise extension
// (§4.3) in its wire form: every attribute of the published schemas.
// Empty attributes are left out of the JSON; password is write-only and
// has no field here, so it cannot leak.
type User struct {
	Schemas           []string        `json:"schemas"`
	ID                string          `json:"id"`
	ExternalID        string          `json:"externalId,omitempty"`
	UserName          string          `json:"userName,omitempty"`
	Name              *Name           `json:"name,omitempty"`
	DisplayName       string          `json:"displayName,omitempty"`
	NickName          string          `json:"nickName,omitempty"`
	ProfileURL        string          `json:"profileUrl,omitempty"`
	Title             string          `json:"title,omitempty"`
	UserType          string          `json:"userType,omitempty"`
	PreferredLanguage string          `json:"preferredLanguage,omitempty"`
	Locale            string          `json:"locale,omitempty"`
	Timezone          string          `json:"timezone,omitempty"`
	Active            *bool           `json:"active,omitempty"`
	Emails            []MultiValue    `json:"emails,omitempty"`
	PhoneNumbers      []MultiValue    `json:"phoneNumbers,omitempty"`
	Ims               []MultiValue    `json:"ims,omitempty"`
	Photos            []MultiValue    `json:"photos,omitempty"`
	Addresses         []Address       `json:"addresses,omitempty"`
	Groups            []Reference     `json:"groups,omitempty"`
	Entitlements      []MultiValue    `json:"entitlements,omitempty"`
	Roles             []MultiValue    `json:"roles,omitempty"`
	X509Certificates  []MultiValue    `json:"x509Certificates,omitempty"`
	Enterprise        *EnterpriseUser `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,omitempty"`
	// Custom are the values of the configured custom attributes, encoded
	// under their schema's URN (see MarshalJSON).
	Custom *CustomValues `json:"-"`
	Meta   *Meta         `json:"meta,omitempty"`
}

// CustomValues are the values of a user's custom attributes (SPEC §2.1).
// A Directory fills Values by attribute name in any case (the store keeps
// them lower-cased); the Handler spells them as the schema does, drops
// what the schema no longer declares or what no longer has the declared
// type, and sets URN.
type CustomValues struct {
	URN string
	// Values holds a string, bool or float64, or a []any of them for a
	// multi-valued attribute; a dateTime is a string in UTC.
	Values map[string]any
}

// MarshalJSON encodes the user with its custom attributes in the object
// named by their schema's URN, which is configured and so cannot be a
// field tag.
func (u *User) MarshalJSON() ([]byte, error) {
	type plain User // without this method
	b, err := json.Marshal((*plain)(u))
	if err != nil || u.Custom == nil || u.Custom.URN == "" || len(u.Custom.Values) == 0 {
		return b, err
	}
	key, err := json.Marshal(u.Custom.URN)
	if err != nil {
		return nil, err
	}
	ext, err := json.Marshal(u.Custom.Values)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+len(key)+len(ext)+2)
	out = append(out, b[:len(b)-1]...) // b is an object: it ends with "}"
	out = append(out, ',')
	out = append(out, key...)
	out = append(out, ':')
	out = append(out, ext...)
	return append(out, '}'), nil
}

// Name is a user's name. Formatted is what the client or source wrote,
// or else derived (see FormattedName).
type Name struct {
	// Derived says Formatted is roster's (FormattedName), not written by
	// a client or source: it then follows the name parts.
	Derived         bool   `json:"-"`
	Formatted       string `json:"formatted,omitempty"`
	FamilyName      string `json:"familyName,omitempty"`
	GivenName       string `json:"givenName,omitempty"`
	MiddleName      string `json:"middleName,omitempty"`
	HonorificPrefix string `json:"honorificPrefix,omitempty"`
	HonorificSuffix string `json:"honorificSuffix,omitempty"`
}

func (n *Name) empty() bool { return *n == Name{} || *n == Name{Derived: true} }

// MultiValue is one value of a multi-valued attribute of the common
// shape (RFC 7643 §2.4): emails, phoneNumbers, ims, photos,
// entitlements, roles and x509Certificates.
type MultiValue struct {
	Value   string `json:"value,omitempty"`
	Display string `json:"display,omitempty"`
	Type    string `json:"type,omitempty"`
	Primary *bool  `json:"primary,omitempty"`
}

func (v *MultiValue) empty() bool { return *v == MultiValue{} }

// Address is one of a user's addresses (RFC 7643 §4.1.2).
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

func (a *Address) empty() bool { return *a == Address{} }

// Reference is one value of a user's groups or a group's members. Type
// is "direct" for groups and "User" or "Group" for members.
type Reference struct {
	Value   string `json:"value,omitempty"`
	Ref     string `json:"$ref,omitempty"`
	Display string `json:"display,omitempty"`
	Type    string `json:"type,omitempty"`
}

func (r *Reference) empty() bool { return *r == Reference{} }

// EnterpriseUser is the enterprise extension of a user.
type EnterpriseUser struct {
	EmployeeNumber string   `json:"employeeNumber,omitempty"`
	CostCenter     string   `json:"costCenter,omitempty"`
	Organization   string   `json:"organization,omitempty"`
	Division       string   `json:"division,omitempty"`
	Department     string   `json:"department,omitempty"`
	Manager        *Manager `json:"manager,omitempty"`
}

func (e *EnterpriseUser) empty() bool { return *e == EnterpriseUser{} }

// Manager is the enterprise manager: Value is the manager's user id.
// DisplayName is set only when that id names a user of the directory,
// and only then does the Handler add $ref.
type Manager struct {
	Value       string `json:"value,omitempty"`
	Ref         string `json:"$ref,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

// Group is a Group resource (RFC 7643 §4.2) in its wire form.
type Group struct {
	Schemas     []string    `json:"schemas"`
	ID          string      `json:"id"`
	ExternalID  string      `json:"externalId,omitempty"`
	DisplayName string      `json:"displayName,omitempty"`
	Members     []Reference `json:"members,omitempty"`
	// Roster is roster's Group extension (schema.RosterGroupURN); nil
	// when it holds nothing.
	Roster *GroupExtension `json:"urn:rosterd:params:scim:schemas:extension:roster:2.0:Group,omitempty"`
	Meta   *Meta           `json:"meta,omitempty"`
	// MembersPending is set by a Directory that is a MemberReader and
	// left the group's members unread (Members is empty): the Handler
	// reads them in pieces as it writes the answer.
	MembersPending bool `json:"-"`
}

// GroupExtension is roster's Group extension: the owners of a department
// a push source keeps (NocoBase's isOwner).
type GroupExtension struct {
	Owners []Reference `json:"owners,omitempty"`
}

// Meta is a resource's metadata. A Directory sets Created, LastModified
// and Version (see WeakVersion); the Handler sets ResourceType and
// Location.
type Meta struct {
	ResourceType string     `json:"resourceType,omitempty"`
	Created      *time.Time `json:"created,omitempty"`
	LastModified *time.Time `json:"lastModified,omitempty"`
	Location     string     `json:"location,omitempty"`
	Version      string     `json:"version,omitempty"`
}

func (m *Meta) empty() bool { return *m == Meta{} }

// ListResponse is the answer to a list or search (RFC 7644 §3.4.2, with
// nextCursor from RFC 9865). StartIndex is left out of cursor-paged
// answers, and Resources is never null.
type ListResponse struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	ItemsPerPage int      `json:"itemsPerPage"`
	StartIndex   int      `json:"startIndex,omitempty"`
	NextCursor   string   `json:"nextCursor,omitempty"`
	Resources    any      `json:"Resources"`
}

func listResponse(total, startIndex int, resources any, n int) *ListResponse {
	return &ListResponse{
		Schemas:      []string{schema.ListResponseURN},
		TotalResults: total,
		ItemsPerPage: n,
		StartIndex:   startIndex,
		Resources:    resources,
	}
}

// SearchRequest is the body of POST /.search (RFC 7644 §3.4.3), with
// cursor from RFC 9865. A nil Cursor means index pagination.
type SearchRequest struct {
	Schemas            []string `json:"schemas"`
	Attributes         []string `json:"attributes"`
	ExcludedAttributes []string `json:"excludedAttributes"`
	Filter             string   `json:"filter"`
	SortBy             string   `json:"sortBy"`
	SortOrder          string   `json:"sortOrder"`
	StartIndex         *int     `json:"startIndex"`
	Count              *int     `json:"count"`
	Cursor             *string  `json:"cursor"`
}
