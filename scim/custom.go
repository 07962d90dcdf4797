package scim

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// customSchema returns the schema of the custom attributes among rt's
// extensions: the one that is not the enterprise extension; nil when the
// configuration declares none.
func customSchema(rt schema.ResourceType) *schema.Schema {
	for _, s := range rt.Schemas() {
		if s.ID != rt.Schema && s.ID != schema.EnterpriseURN {
			return s
		}
	}
	return nil
}

// customValues takes the custom attributes out of a resource that
// patch.Resource has checked and spelled canonically: strings trimmed
// and dropped when empty, dateTimes in UTC (so that equal instants are
// equal values, as the store compares them), repeated values of a
// multi-valued attribute dropped.
func customValues(canon map[string]any, rt schema.ResourceType) (*CustomValues, error) {
	cs := customSchema(rt)
	if cs == nil {
		return nil, nil
	}
	m, _ := canon[cs.ID].(map[string]any)
	delete(canon, cs.ID)
	out := map[string]any{}
	for name, v := range m {
		a, ok := cs.Attribute(name)
		if !ok {
			return nil, scimerr.InvalidValue("attribute " + name + " is not in the schema " + cs.ID)
		}
		if !a.MultiValued {
			x, err := customValue(a, v)
			if err != nil {
				return nil, err
			}
			if x != nil {
				out[a.Name] = x
			}
			continue
		}
		vs, _ := v.([]any)
		var keep []any
		for _, e := range vs {
			x, err := customValue(a, e)
			if err != nil {
				return nil, err
			}
			if x != nil && !slices.Contains(keep, x) {
				keep = append(keep, x)
			}
		}
		if len(keep) > 0 {
			out[a.Name] = keep
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return &CustomValues{URN: cs.ID, Values: out}, nil
}

// customValue is one value of a custom attribute, coerced already.
func customValue(a *schema.Attribute, v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return v, nil
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if a.Type == schema.TypeDateTime {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, scimerr.InvalidValue(a.Name + " must be a date and time (RFC 3339)")
		}
		s = t.UTC().Format(time.RFC3339Nano)
	}
	return s, nil
}

// fitting is what of a stored value has the type a declares now, nil
// for nothing: a value stored under another declaration is not served,
// as the store's filters do not match it.
func fitting(a *schema.Attribute, v any) any {
	if !a.MultiValued {
		if fitsOne(a, v) {
			return v
		}
		return nil
	}
	vs, _ := v.([]any)
	var out []any
	for _, e := range vs {
		if fitsOne(a, e) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func fitsOne(a *schema.Attribute, v any) bool {
	switch x := v.(type) {
	case bool:
		return a.Type == schema.TypeBoolean
	case float64:
		return a.Type == schema.TypeDecimal || a.Type == schema.TypeInteger && x == math.Trunc(x)
	case string:
		switch a.Type {
		case schema.TypeString, schema.TypeReference:
			return true
		case schema.TypeDateTime:
			_, err := time.Parse(time.RFC3339Nano, x)
			return err == nil
		}
	}
	return false
}

// custom projects the custom attributes: names spelled as the schema
// does, values the schema no longer declares left out, attributes and
// excludedAttributes applied.
func (p *projection) custom(c *CustomValues) *CustomValues {
	cs := customSchema(p.rt)
	if c == nil || cs == nil {
		return nil
	}
	out := make(map[string]any, len(c.Values))
	for k, v := range c.Values {
		a, ok := cs.Attribute(k)
		if !ok || !p.wants(cs.ID+":"+a.Name) {
			continue
		}
		if v = fitting(a, v); v != nil {
			out[a.Name] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &CustomValues{URN: cs.ID, Values: out}
}

// UserType is the User resource type for the configured custom
// attributes (attributes.custom, SPEC §2.1): schema.Users when there are
// none.
func UserType(a *config.Attributes) schema.ResourceType {
	m := a.Model()
	if m == nil {
		return schema.Users
	}
	defs := make([]*schema.Attribute, len(m.Custom))
	for i, c := range m.Custom {
		defs[i] = schema.CustomAttribute(c.Name, schema.Type(c.Type), c.MultiValued, c.CaseExact)
	}
	return schema.NewUsers(schema.Custom(m.URN, defs))
}

// ProjectUser gives a user read from a Directory the form the Handler
// serves it in, for other pages that show it (the admin page): custom
// attributes named as declared under their URN, schemas filled in.
func ProjectUser(rt schema.ResourceType, u *User) { newProjection(rt, nil, nil).user(u) }
