package schema

import "strings"

// MaxResults is the most resources one list or search answer holds
// (SPEC §6); it is what ServiceProviderConfig advertises by default.
const MaxResults = 1000

// DefaultCount is the page size when a client sends no count (SPEC §6).
const DefaultCount = 100

// ConfigOptions are the features ServiceProviderConfig advertises. They
// are options rather than constants so that the document can follow what
// the running configuration actually enables.
type ConfigOptions struct {
	// DocumentationURI is left out of the document when empty.
	DocumentationURI string
	Patch            bool
	Bulk             BulkOptions
	Filter           FilterOptions
	ChangePassword   bool
	Sort             bool
	ETag             bool
	// Pagination is the "pagination" attribute of RFC 9865 §4; nil leaves
	// it out, which RFC 9865 allows.
	Pagination            *PaginationOptions
	AuthenticationSchemes []AuthenticationScheme
}

// BulkOptions is the "bulk" attribute of RFC 7643 §5.
type BulkOptions struct {
	Supported      bool
	MaxOperations  int
	MaxPayloadSize int
}

// FilterOptions is the "filter" attribute of RFC 7643 §5.
type FilterOptions struct {
	Supported  bool
	MaxResults int
}

// PaginationOptions is the "pagination" attribute of RFC 9865 §4. Zero
// numbers and an empty DefaultMethod are left out of the document.
type PaginationOptions struct {
	Cursor          bool
	Index           bool
	DefaultMethod   string // "index" or "cursor"
	DefaultPageSize int
	MaxPageSize     int
	CursorTimeout   int // seconds
}

// AuthenticationScheme is one entry of "authenticationSchemes" (RFC 7643
// §5). SpecURI and DocumentationURI are left out when empty.
type AuthenticationScheme struct {
	Type             string
	Name             string
	Description      string
	SpecURI          string
	DocumentationURI string
	Primary          bool
}

// OAuthBearerToken is how clients authenticate to roster: a bearer token
// (RFC 6750) that the configuration holds as a hash.
var OAuthBearerToken = AuthenticationScheme{
	Type:        "oauthbearertoken",
	Name:        "OAuth Bearer Token",
	Description: "Authentication with a bearer token in the Authorization header, as RFC 6750 describes.",
	SpecURI:     "https://www.rfc-editor.org/info/rfc6750",
	Primary:     true,
}

// DefaultConfigOptions are the features roster implements: PATCH (at
// least of "active", SPEC §4.4), filters, sorting, ETags and both index
// and cursor pagination. Bulk and the change-password operation are not
// offered.
func DefaultConfigOptions() ConfigOptions {
	return ConfigOptions{
		Patch:          true,
		Filter:         FilterOptions{Supported: true, MaxResults: MaxResults},
		ChangePassword: false,
		Sort:           true,
		ETag:           true,
		Pagination: &PaginationOptions{
			Cursor:          true,
			Index:           true,
			DefaultMethod:   "index",
			DefaultPageSize: DefaultCount,
			MaxPageSize:     MaxResults,
		},
		AuthenticationSchemes: []AuthenticationScheme{OAuthBearerToken},
	}
}

// ServiceProviderConfig is the document of RFC 7643 §5 served at
// /ServiceProviderConfig; baseURL is the SCIM base such as
// "https://roster.example.com/scim/v2".
func ServiceProviderConfig(baseURL string, opts ConfigOptions) map[string]any {
	// type, name and description are REQUIRED (RFC 7643 §5); the URIs are
	// optional, and an empty one would be an invalid reference.
	schemes := make([]map[string]any, 0, len(opts.AuthenticationSchemes))
	for _, s := range opts.AuthenticationSchemes {
		m := map[string]any{
			"type":        s.Type,
			"name":        s.Name,
			"description": s.Description,
			"primary":     s.Primary,
		}
		if s.SpecURI != "" {
			m["specUri"] = s.SpecURI
		}
		if s.DocumentationURI != "" {
			m["documentationUri"] = s.DocumentationURI
		}
		schemes = append(schemes, m)
	}
	doc := map[string]any{
		"schemas": []string{ServiceProviderConfigURN},
		"patch":   supported(opts.Patch),
		// maxOperations and maxPayloadSize are REQUIRED even when bulk is
		// not supported.
		"bulk": map[string]any{
			"supported":      opts.Bulk.Supported,
			"maxOperations":  opts.Bulk.MaxOperations,
			"maxPayloadSize": opts.Bulk.MaxPayloadSize,
		},
		"filter": map[string]any{
			"supported":  opts.Filter.Supported,
			"maxResults": opts.Filter.MaxResults,
		},
		"changePassword":        supported(opts.ChangePassword),
		"sort":                  supported(opts.Sort),
		"etag":                  supported(opts.ETag),
		"authenticationSchemes": schemes,
		"meta":                  meta("ServiceProviderConfig", base(baseURL)+"/ServiceProviderConfig"),
	}
	if opts.DocumentationURI != "" {
		doc["documentationUri"] = opts.DocumentationURI
	}
	if p := opts.Pagination; p != nil {
		m := map[string]any{"cursor": p.Cursor, "index": p.Index}
		if p.DefaultMethod != "" {
			m["defaultPaginationMethod"] = p.DefaultMethod
		}
		for k, v := range map[string]int{
			"defaultPageSize": p.DefaultPageSize,
			"maxPageSize":     p.MaxPageSize,
			"cursorTimeout":   p.CursorTimeout,
		} {
			if v > 0 {
				m[k] = v
			}
		}
		doc["pagination"] = m
	}
	return doc
}

// SchemasDocument is the list of schema resources (RFC 7643 §7) served
// at /Schemas: the schemas of each resource type, in order (User,
// enterprise User, the custom attributes' schema, Group, roster's Group
// extension). Each entry's
// "id" is what /Schemas/{id} looks up. The maps are new on every call,
// but "attributes" holds the definitions themselves: read them only.
func SchemasDocument(baseURL string, types ...ResourceType) []map[string]any {
	var schemas []*Schema
	for _, rt := range types {
		schemas = append(schemas, rt.Schemas()...)
	}
	docs := make([]map[string]any, 0, len(schemas))
	for _, s := range schemas {
		docs = append(docs, map[string]any{
			"schemas":     []string{SchemaURN},
			"id":          s.ID,
			"name":        s.Name,
			"description": s.Description,
			"attributes":  s.Attributes,
			"meta":        meta("Schema", base(baseURL)+"/Schemas/"+s.ID),
		})
	}
	return docs
}

// ResourceTypesDocument is the list of the resource types (RFC 7643 §6)
// served at /ResourceTypes. Each entry's "id" is what /ResourceTypes/{id}
// looks up.
func ResourceTypesDocument(baseURL string, types ...ResourceType) []map[string]any {
	docs := make([]map[string]any, 0, len(types))
	for _, rt := range types {
		doc := map[string]any{
			"schemas":     []string{ResourceTypeURN},
			"id":          rt.ID,
			"name":        rt.Name,
			"endpoint":    rt.Endpoint,
			"description": rt.Description,
			"schema":      rt.Schema,
			"meta":        meta("ResourceType", base(baseURL)+"/ResourceTypes/"+rt.ID),
		}
		if len(rt.Extensions) > 0 {
			exts := make([]map[string]any, 0, len(rt.Extensions))
			for _, e := range rt.Extensions {
				exts = append(exts, map[string]any{"schema": e.Schema, "required": e.Required})
			}
			doc["schemaExtensions"] = exts
		}
		docs = append(docs, doc)
	}
	return docs
}

func supported(b bool) map[string]any { return map[string]any{"supported": b} }

func meta(resourceType, location string) map[string]any {
	return map[string]any{"resourceType": resourceType, "location": location}
}

// base drops a trailing slash so that joined locations never hold "//".
func base(baseURL string) string { return strings.TrimRight(baseURL, "/") }
