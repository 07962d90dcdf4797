package scim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
)

// checkFilter checks a parsed filter against the resource type's schema:
// every attribute path must name an attribute, password cannot be
// filtered on, and every comparison must suit the attribute's type
// (RFC 7644 §3.4.2.2). It returns an error worded for the client, naming
// the position of the attribute in the filter text where it can.
//
// A complex attribute compared without a sub-attribute, as in
// members eq "..." (which Entra ID sends), compares its "value"
// sub-attribute; "pr" on a complex attribute asks whether any of its
// sub-attributes has a value.
func checkFilter(rt schema.ResourceType, text string, e filter.Expr) error {
	c := filterChecker{rt: rt, text: text}
	if err := c.check(e, nil); err != nil {
		return err
	}
	return c.budget()
}

// The filter budget, beyond the parser's limits on length and depth
// (filter.MaxLength, filter.MaxDepth): what one filter may ask of the
// database. Every comparison or presence test is a term and costs 1;
// co and ew, which no index serves, cost 2; a term on a multi-valued
// attribute (emails, phoneNumbers, groups, members) or on the display
// name of a reference (manager.displayName) reads other rows for every
// resource and costs 4 times as much. So 100 OR'd userName eq terms fit,
// as do 25 OR'd members.value co terms, but not 26.
const (
	MaxFilterTerms = 100
	MaxFilterCost  = 200
)

type filterChecker struct {
	rt    schema.ResourceType
	text  string
	terms int
	cost  int
}

// budget refuses a filter beyond MaxFilterTerms or MaxFilterCost.
func (c *filterChecker) budget() error {
	if c.terms > MaxFilterTerms {
		return fmt.Errorf("invalid filter: it has %d comparisons; the limit is %d", c.terms, MaxFilterTerms)
	}
	if c.cost > MaxFilterCost {
		return fmt.Errorf("invalid filter: it costs %d; the limit is %d (each comparison costs 1, co and ew 2, "+
			"and 4 times as much on a multi-valued attribute such as emails, groups or members)", c.cost, MaxFilterCost)
	}
	return nil
}

// count adds a term to the budget. outer is the attribute of the value
// filter the term is in, top the term's top-level attribute otherwise.
func (c *filterChecker) count(op filter.Op, p filter.AttrPath, outer *schema.Attribute) {
	cost := 1
	if op == filter.Co || op == filter.Ew {
		cost = 2
	}
	top := outer
	if top == nil {
		top, _, _ = c.rt.Lookup(p.URN, p.Name, "")
	}
	if top != nil {
		_, ref := top.Sub("$ref")
		display := outer == nil && (strings.EqualFold(p.Sub, "displayName") || strings.EqualFold(p.Sub, "display"))
		if top.MultiValued || (ref && display) {
			cost *= 4
		}
	}
	c.terms++
	c.cost += cost
}

func (c *filterChecker) errf(a filter.AttrPath, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if i := strings.Index(c.text, a.String()); i >= 0 {
		return fmt.Errorf("invalid filter at position %d: %s", i, msg)
	}
	return fmt.Errorf("invalid filter: %s", msg)
}

func (c *filterChecker) check(e filter.Expr, outer *schema.Attribute) error {
	switch e := e.(type) {
	case *filter.And:
		if err := c.check(e.Left, outer); err != nil {
			return err
		}
		return c.check(e.Right, outer)
	case *filter.Or:
		if err := c.check(e.Left, outer); err != nil {
			return err
		}
		return c.check(e.Right, outer)
	case *filter.Not:
		return c.check(e.X, outer)
	case *filter.Present:
		c.count("pr", e.Attr, outer)
		_, err := c.resolve(e.Attr, outer, true)
		return err
	case *filter.Compare:
		c.count(e.Op, e.Attr, outer)
		a, err := c.resolve(e.Attr, outer, false)
		if err != nil {
			return err
		}
		return c.compare(e, a)
	case *filter.ValuePath:
		a, _, ok := c.rt.Lookup(e.Attr.URN, e.Attr.Name, "")
		if !ok {
			return c.errf(e.Attr, "%s has no attribute %q", c.rt.Name, e.Attr.String())
		}
		if a.Type != schema.TypeComplex {
			return c.errf(e.Attr, "%q is not a complex attribute, so it takes no value filter in brackets", e.Attr.String())
		}
		return c.check(e.Filter, a)
	}
	return fmt.Errorf("invalid filter: unexpected %T", e)
}

// resolve finds the attribute a path compares. Inside a value filter,
// names are sub-attributes of outer.
func (c *filterChecker) resolve(p filter.AttrPath, outer *schema.Attribute, present bool) (*schema.Attribute, error) {
	var a *schema.Attribute
	var ok bool
	if outer != nil {
		if a, ok = outer.Sub(p.Name); !ok {
			return nil, c.errf(p, "%q has no sub-attribute %q", outer.Name, p.Name)
		}
	} else {
		if a, _, ok = c.rt.Lookup(p.URN, p.Name, ""); !ok {
			return nil, c.errf(p, "%s has no attribute %q", c.rt.Name, p.String())
		}
		if p.Sub != "" {
			if a, ok = a.Sub(p.Sub); !ok {
				return nil, c.errf(p, "%s has no attribute %q", c.rt.Name, p.String())
			}
		}
	}
	if a.Returned == schema.ReturnedNever || a.Mutability == schema.WriteOnly {
		return nil, c.errf(p, "%q is write-only and cannot be used in a filter", p.String())
	}
	if a.Type == schema.TypeComplex && !present {
		v, ok := a.Sub("value")
		if !ok {
			return nil, c.errf(p, "%q is a complex attribute; compare one of its sub-attributes, such as %s.%s",
				p.String(), p.String(), a.SubAttributes[0].Name)
		}
		a = v
	}
	return a, nil
}

func (c *filterChecker) compare(e *filter.Compare, a *schema.Attribute) error {
	v := e.Value
	if v.Kind == filter.KindNull {
		return nil // eq null and ne null test for absence and presence
	}
	switch a.Type {
	case schema.TypeBoolean:
		if v.Kind != filter.KindTrue && v.Kind != filter.KindFalse {
			return c.errf(e.Attr, "%q is a boolean; compare it with true or false, without quotes", e.Attr.String())
		}
		if e.Op != filter.Eq && e.Op != filter.Ne {
			return c.errf(e.Attr, "%q is a boolean; only eq and ne compare booleans", e.Attr.String())
		}
	case schema.TypeDateTime:
		if v.Kind != filter.KindString {
			return c.errf(e.Attr, "%q is a dateTime; compare it with a quoted date such as \"2026-01-02T15:04:05Z\"", e.Attr.String())
		}
		switch e.Op {
		case filter.Co, filter.Sw, filter.Ew:
			return c.errf(e.Attr, "%q is a dateTime; compare it with eq, ne, gt, ge, lt or le", e.Attr.String())
		}
		if _, err := ParseDateTime(v.Str); err != nil {
			return c.errf(e.Attr, "%s is %s", v.String(), err)
		}
	case schema.TypeInteger, schema.TypeDecimal:
		if v.Kind != filter.KindNumber {
			return c.errf(e.Attr, "%q is a number; compare it with a number without quotes, such as 12", e.Attr.String())
		}
		switch e.Op {
		case filter.Co, filter.Sw, filter.Ew:
			return c.errf(e.Attr, "%q is a number; compare it with eq, ne, gt, ge, lt or le", e.Attr.String())
		}
		if _, err := strconv.ParseFloat(string(v.Num), 64); err != nil {
			return c.errf(e.Attr, "%s is not a number roster can compare", v.String())
		}
	default: // string and reference
		if v.Kind != filter.KindString {
			return c.errf(e.Attr, "%q is a string; compare it with a quoted value", e.Attr.String())
		}
		// No attribute can hold NUL, and the stores cannot compare it:
		// PostgreSQL refuses it, SQLite's LIKE stops at it.
		if strings.ContainsRune(v.Str, 0) {
			return c.errf(e.Attr, "%s holds the character U+0000 (NUL), which no attribute can hold", v.String())
		}
	}
	return nil
}
