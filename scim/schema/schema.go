// Package schema describes the SCIM resources roster serves: the User (core, enterprise extension and, when the configuration declares them, custom attributes in an extension of their own) and Group schemas with every attribute's characteristics, the resource types that carry them, and the discovery documents generated from them.
package schema

import "strings"

// The schema and message URNs of RFC 7643 and RFC 7644.
const (
	UserURN       = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupURN      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	// RosterGroupURN is roster's own Group extension: the owners of a
	// pushed department (NocoBase's isOwner, SPEC §3.3).
	RosterGroupURN           = "urn:rosterd:params:scim:schemas:extension:roster:2.0:Group"
	ServiceProviderConfigURN = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	ResourceTypeURN          = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaURN                = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	ListResponseURN          = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SearchRequestURN         = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	PatchOpURN               = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	ErrorURN                 = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// Type is an attribute's data type (RFC 7643 §2.3).
type Type string

// The data types of RFC 7643 §2.3.
const (
	TypeString    Type = "string"
	TypeBoolean   Type = "boolean"
	TypeDecimal   Type = "decimal"
	TypeInteger   Type = "integer"
	TypeDateTime  Type = "dateTime"
	TypeBinary    Type = "binary"
	TypeReference Type = "reference"
	TypeComplex   Type = "complex"
)

// Mutability says whether and when a client may write an attribute
// (RFC 7643 §7).
type Mutability string

// The mutability values of RFC 7643 §7.
const (
	ReadOnly  Mutability = "readOnly"
	ReadWrite Mutability = "readWrite"
	Immutable Mutability = "immutable"
	WriteOnly Mutability = "writeOnly"
)

// Returned says when an attribute appears in a response (RFC 7643 §7).
type Returned string

// The returned values of RFC 7643 §7.
const (
	ReturnedAlways  Returned = "always"
	ReturnedNever   Returned = "never"
	ReturnedDefault Returned = "default"
	ReturnedRequest Returned = "request"
)

// Uniqueness says how widely a value must be unique (RFC 7643 §7).
type Uniqueness string

// The uniqueness values of RFC 7643 §7.
const (
	UniquenessNone   Uniqueness = "none"
	UniquenessServer Uniqueness = "server"
	UniquenessGlobal Uniqueness = "global"
)

// Attribute is an attribute definition; its JSON form is the one RFC 7643
// §7 gives for the /Schemas endpoint.
type Attribute struct {
	Name            string       `json:"name"`
	Type            Type         `json:"type"`
	MultiValued     bool         `json:"multiValued"`
	Description     string       `json:"description"`
	Required        bool         `json:"required"`
	CaseExact       bool         `json:"caseExact"`
	Mutability      Mutability   `json:"mutability"`
	Returned        Returned     `json:"returned"`
	Uniqueness      Uniqueness   `json:"uniqueness"`
	CanonicalValues []string     `json:"canonicalValues,omitempty"`
	ReferenceTypes  []string     `json:"referenceTypes,omitempty"`
	SubAttributes   []*Attribute `json:"subAttributes,omitempty"`
}

// Sub returns the sub-attribute called name, matched case-insensitively
// as RFC 7643 §2.1 requires of attribute names. Only complex attributes
// have sub-attributes.
func (a *Attribute) Sub(name string) (*Attribute, bool) {
	if a.Type != TypeComplex {
		return nil, false
	}
	return find(a.SubAttributes, name)
}

// Schema is a schema definition (RFC 7643 §7).
type Schema struct {
	ID          string
	Name        string
	Description string
	Attributes  []*Attribute
}

// Attribute returns the schema's attribute called name, matched
// case-insensitively.
func (s *Schema) Attribute(name string) (*Attribute, bool) {
	return find(s.Attributes, name)
}

// Extension is a schema extension a resource type allows (RFC 7643 §6).
type Extension struct {
	Schema   string
	Required bool
}

// ResourceType is a resource type served at an endpoint (RFC 7643 §6),
// with the definitions of its schemas: NewUsers and Groups make them.
type ResourceType struct {
	ID          string
	Name        string
	Endpoint    string
	Description string
	Schema      string
	Extensions  []Extension
	// schemas are the definitions of Schema and of each extension, in
	// that order.
	schemas []*Schema
}

// Schemas returns the definitions of the resource type's core schema and
// of its extensions, in that order. Read them only.
func (rt ResourceType) Schemas() []*Schema { return rt.schemas }

// SchemaByURN returns the resource type's schema with the given id. URNs
// are compared case-insensitively, as attribute names are (RFC 7643
// §2.1): a URN prefixes attribute names in paths, and clients are not
// consistent about its case.
func (rt ResourceType) SchemaByURN(urn string) (*Schema, bool) {
	for _, s := range rt.schemas {
		if strings.EqualFold(s.ID, urn) {
			return s, true
		}
	}
	return nil, false
}

// NewUsers returns the User resource type: the core User with the
// enterprise extension and, when custom is not nil, the schema of the
// custom attributes (see Custom) as a further optional extension.
func NewUsers(custom *Schema) ResourceType {
	rt := ResourceType{
		ID:          "User",
		Name:        "User",
		Endpoint:    "/Users",
		Description: "User Account",
		Schema:      UserURN,
		Extensions:  []Extension{{Schema: EnterpriseURN, Required: false}},
		schemas:     []*Schema{User, Enterprise},
	}
	if custom != nil {
		rt.Extensions = append(rt.Extensions, Extension{Schema: custom.ID, Required: false})
		rt.schemas = append(rt.schemas, custom)
	}
	return rt
}

// Custom is the schema of the custom attributes declared in the
// configuration (SPEC §2.1), served at /Schemas under urn; attrs are
// made by CustomAttribute.
func Custom(urn string, attrs []*Attribute) *Schema {
	return &Schema{
		ID:          urn,
		Name:        "RosterUser",
		Description: "Custom attributes of users, declared in roster's configuration (attributes.custom)",
		Attributes:  attrs,
	}
}

// CustomAttribute defines a custom attribute: readWrite, returned by
// default, not unique, as RFC 7643 §2.2's defaults have it. A reference
// refers to a resource outside roster ("external").
func CustomAttribute(name string, typ Type, multiValued, caseExact bool) *Attribute {
	a := attr(Attribute{
		Name:        name,
		Type:        typ,
		MultiValued: multiValued,
		CaseExact:   caseExact,
		Description: "Custom attribute declared in roster's configuration.",
	})
	if typ == TypeReference {
		a.ReferenceTypes = []string{"external"}
	}
	return a
}

// Lookup finds an attribute of the resource type by its schema URN, name
// and sub-attribute name, all matched case-insensitively. An empty urn
// searches the core schema, then the common attributes (id, externalId,
// meta), then each extension: a core name wins, as an unqualified name
// means a core attribute (RFC 7644 §3.10), and an unqualified extension
// name such as "department" is still understood. A urn selects one
// schema: the core schema's URN also reaches the common attributes,
// because they sit at the top level of a resource as core attributes do.
// An empty sub returns the attribute itself; a sub of an attribute that
// is not complex is not found.
//
// The string returned is the URN of the schema the attribute belongs to;
// for common attributes it is the core schema's, for the reason above.
func (rt ResourceType) Lookup(urn, name, sub string) (*Attribute, string, bool) {
	a, owner, ok := rt.lookup(urn, name)
	if !ok {
		return nil, "", false
	}
	if sub == "" {
		return a, owner, true
	}
	s, ok := a.Sub(sub)
	if !ok {
		return nil, "", false
	}
	return s, owner, true
}

func (rt ResourceType) lookup(urn, name string) (*Attribute, string, bool) {
	if name == "" {
		return nil, "", false
	}
	core, ok := rt.SchemaByURN(rt.Schema)
	if !ok {
		return nil, "", false
	}
	if urn == "" || strings.EqualFold(urn, rt.Schema) {
		if a, ok := core.Attribute(name); ok {
			return a, core.ID, true
		}
		if a, ok := find(Common, name); ok {
			return a, core.ID, true
		}
		if urn != "" {
			return nil, "", false
		}
	}
	for _, ext := range rt.Extensions {
		if urn != "" && !strings.EqualFold(urn, ext.Schema) {
			continue
		}
		s, ok := rt.SchemaByURN(ext.Schema)
		if !ok {
			continue
		}
		if a, ok := s.Attribute(name); ok {
			return a, s.ID, true
		}
	}
	return nil, "", false
}

// LookupPath is Lookup for an attribute path as it appears in filters,
// PATCH paths and the attributes parameter, such as "name.givenName" or
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value".
func (rt ResourceType) LookupPath(path string) (*Attribute, string, bool) {
	urn, name, sub := SplitPath(path)
	return rt.Lookup(urn, name, sub)
}

// SplitPath splits an attribute path (RFC 7644 §3.10) into its schema
// URN, attribute name and sub-attribute name, each possibly empty. The
// URN ends at the last colon, because attribute names cannot contain one
// while URNs contain dots ("2.0") and so cannot be split at the first dot.
func SplitPath(path string) (urn, name, sub string) {
	if i := strings.LastIndexByte(path, ':'); i >= 0 {
		urn, path = path[:i], path[i+1:]
	}
	name, sub, _ = strings.Cut(path, ".")
	return urn, name, sub
}

func find(attrs []*Attribute, name string) (*Attribute, bool) {
	for _, a := range attrs {
		if strings.EqualFold(a.Name, name) {
			return a, true
		}
	}
	return nil, false
}
