package patch

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// coerce converts v, as encoding/json decoded it, to the form a takes in
// the resource: for a multi-valued attribute a []any (a single value
// becoming a one-element array), nil when v is null or empty. text names
// the target in error details.
func coerce(a *schema.Attribute, v any, text string) (any, *scimerr.Error) {
	if v == nil {
		return nil, nil
	}
	if !a.MultiValued {
		return coerceOne(a, v, text)
	}
	in, ok := v.([]any)
	if !ok {
		in = []any{v}
	}
	var out []any
	for _, e := range in {
		c, err := coerceOne(a, e, text)
		if err != nil {
			return nil, err
		}
		if c != nil {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// coerceOne converts a single value of a; for a multi-valued attribute it
// is one element, which may come as a one-element array.
func coerceOne(a *schema.Attribute, v any, text string) (any, *scimerr.Error) {
	if s, ok := v.([]any); ok && a.MultiValued && len(s) == 1 {
		v = s[0]
	}
	if v == nil {
		return nil, nil
	}
	bad := func(want string) *scimerr.Error {
		return scimerr.InvalidValue(fmt.Sprintf("%s must be %s, got %s", text, want, kind(v)))
	}
	switch a.Type {
	case schema.TypeComplex:
		if s, ok := v.(string); ok {
			if _, hasValue := a.Sub("value"); hasValue {
				v = map[string]any{"value": s}
			}
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, bad("an object")
		}
		out := make(map[string]any, len(m))
		// In key order, so that the same value fails the same way every
		// time.
		for _, k := range slices.Sorted(maps.Keys(m)) {
			sv := m[k]
			sub, ok := a.Sub(k)
			if !ok {
				return nil, scimerr.InvalidPath(fmt.Sprintf("%s has no sub-attribute %q", a.Name, clip(k)))
			}
			if sub.Mutability == schema.ReadOnly || sv == nil {
				continue
			}
			c, err := coerceOne(sub, sv, a.Name+"."+sub.Name)
			if err != nil {
				return nil, err
			}
			out[sub.Name] = c
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	case schema.TypeBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(x) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, bad("true or false")
	case schema.TypeDateTime:
		s, ok := v.(string)
		if !ok {
			return nil, bad("a date and time (RFC 3339)")
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, scimerr.InvalidValue(fmt.Sprintf("%s must be a date and time (RFC 3339), got %q", text, clip(s)))
		}
		return s, nil
	case schema.TypeInteger:
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			return nil, bad("an integer")
		}
		// Beyond 2^53 a JSON number is not exact in every reader (an
		// IEEE 754 double), and the stores compare numbers as such.
		if math.Abs(f) > 1<<53 {
			return nil, bad("an integer between -2^53 and 2^53")
		}
		return f, nil
	case schema.TypeDecimal:
		if _, ok := v.(float64); !ok {
			return nil, bad("a number")
		}
		return v, nil
	default: // string, reference, binary
		if _, ok := v.(string); !ok {
			return nil, bad("a string")
		}
		return v, nil
	}
}

// kind names v's JSON type for error details.
func kind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return fmt.Sprintf("the string %q", clip(v))
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
