package patch

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// MaxValues bounds the values of one multi-valued attribute of a written
// resource (a user's e-mails, addresses, roles...), so that no client can
// make one resource cost what a thousand do. Group members are not
// bounded here: they are written through their own operations.
const MaxValues = 200

// Resource checks a whole resource as POST and PUT send it, with the rules
// that PATCH values follow, so that the three verbs accept and refuse the
// same: every key must name an attribute of rt's schemas (matched
// case-insensitively, extension attributes inside their URN's object or
// prefixed with it), values are coerced to their attribute's type (string
// booleans as Entra ID sends them, a bare string for a complex attribute
// with a value), and read-only attributes are left out, as RFC 7644 §3.3
// lets a server ignore them. The result uses the schema's spelling: core
// attributes at the top level, extension attributes in their URN's
// object. An attribute no schema has is 400 invalidValue naming it.
func Resource(doc map[string]any, rt schema.ResourceType) (map[string]any, error) {
	out := map[string]any{}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the same body fails the same way every time
	for _, k := range keys {
		v := doc[k]
		if strings.EqualFold(k, "schemas") {
			continue
		}
		if ext, ok := extensionOf(rt, k); ok {
			if v == nil {
				continue
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil, scimerr.InvalidValue(fmt.Sprintf("the value of %s must be an object of its attributes, got %s", ext, kind(v)))
			}
			for name, sv := range m {
				if err := put(out, rt, ext, name, sv); err != nil {
					return nil, err
				}
			}
			continue
		}
		urn, name, sub := schema.SplitPath(k)
		if sub != "" {
			return nil, unknown(rt, "", k)
		}
		if err := put(out, rt, urn, name, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// put coerces one attribute and stores it under its canonical name.
func put(out map[string]any, rt schema.ResourceType, urn, name string, v any) error {
	a, owner, ok := rt.Lookup(urn, name, "")
	if !ok {
		return unknown(rt, urn, name)
	}
	if a.Mutability == schema.ReadOnly || v == nil {
		return nil
	}
	c, err := coerce(a, v, a.Name)
	if err != nil {
		return err
	}
	if vs, ok := c.([]any); ok && len(vs) > MaxValues {
		return scimerr.InvalidValue(fmt.Sprintf("%s has %d values; a resource may hold at most %d", a.Name, len(vs), MaxValues))
	}
	if c == nil {
		return nil
	}
	if owner == rt.Schema {
		out[a.Name] = c
		return nil
	}
	ext, _ := out[owner].(map[string]any)
	if ext == nil {
		ext = map[string]any{}
		out[owner] = ext
	}
	ext[a.Name] = c
	return nil
}

func unknown(rt schema.ResourceType, urn, name string) *scimerr.Error {
	where := "no schema of the " + rt.Name + " resource type"
	if s, ok := rt.SchemaByURN(urn); ok {
		where = "the schema " + s.ID
	}
	return scimerr.InvalidValue(fmt.Sprintf("attribute %q is in %s (see /Schemas)", clip(name), where))
}

func extensionOf(rt schema.ResourceType, name string) (string, bool) {
	for _, e := range rt.Extensions {
		if strings.EqualFold(e.Schema, name) {
			return e.Schema, true
		}
	}
	return "", false
}
