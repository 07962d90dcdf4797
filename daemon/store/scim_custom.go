package store

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
)

// Custom attributes (SPEC §2.1) live in the users' attrs document, in its
// "custom" object, by lower-cased name (attrs.Custom.Key); a multi-valued
// one is an array of simple values. Their SQL is built from the
// definition the User resource type carries, as the configuration
// declares them, not from the table of fixed attributes. The names are
// RFC 7643 ATTRNAMEs, checked by the configuration and again here, so
// they are safe inside a quoted JSON path.
//
// They compare by their declared type, and a stored value of another
// type (left by an earlier declaration) compares like an unassigned one:
//
//   - strings and references as the fixed JSON-held strings do, case-exact
//     when declared so;
//   - booleans as JSON true or false, so an unassigned value is neither;
//   - integers and decimals as numbers (double precision, which holds
//     integers of the range the writes allow exactly);
//   - dateTimes, kept in UTC RFC 3339, as instants.
//
// Sorting puts unassigned values last in ascending order (first in
// descending): text through scimCompiler.last, numbers and instants with
// +Infinity in their place.

// customName is the syntax of a custom attribute's name (RFC 7643 ATTRNAME).
var customName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// scimCustomAttr is the SQL side of a custom attribute.
func scimCustomAttr(def *schema.Attribute) (scimAttr, bool) {
	if !customName.MatchString(def.Name) || def.Type == schema.TypeComplex {
		return scimAttr{}, false
	}
	col := scimColumn{kind: scimText, ctype: def.Type, ckey: strings.ToLower(def.Name)}
	if def.CaseExact || def.Type == schema.TypeReference {
		col.kind = scimExact
	}
	switch def.Type {
	case schema.TypeBoolean:
		col.kind = scimBool
	case schema.TypeInteger, schema.TypeDecimal:
		col.kind = scimNumber
	case schema.TypeDateTime:
		col.kind = scimTime
	}
	if !def.MultiValued {
		return scimAttr{col: &col}, true
	}
	elem := col
	elem.celem = true
	return scimAttr{multi: true, custom: col.ckey, subs: map[string]scimColumn{"value": elem}}, true
}

// customPath is the SQLite JSON path of a custom attribute's value.
func customPath(key string) string { return `'$."custom"."` + key + `"'` }

// customJSON is the JSON value of a custom column (PostgreSQL: jsonb; SQLite:
// the path's text is not needed, see customType), NULL when unassigned.
func (c *scimCompiler) customJSON(col scimColumn) string {
	if col.celem {
		return "x.value"
	}
	return "u.attrs->'custom'->'" + col.ckey + "'"
}

// customRaw is the value of a custom column as SQL text (numbers and
// booleans as SQLite returns them), NULL when unassigned.
func (c *scimCompiler) customRaw(col scimColumn) string {
	switch {
	case c.pg && col.celem:
		return "(x.value #>> '{}')"
	case c.pg:
		return "u.attrs->'custom'->>'" + col.ckey + "'"
	case col.celem:
		return "x.value"
	}
	return "json_extract(u.attrs, " + customPath(col.ckey) + ")"
}

// customType is the JSON type of a custom column's value on SQLite
// (json_type's names: text, integer, real, true, false), NULL when
// unassigned.
func (c *scimCompiler) customType(col scimColumn) string {
	if col.celem {
		return "x.type"
	}
	return "json_type(u.attrs, " + customPath(col.ckey) + ")"
}

// customInstant is a dateTime column on PostgreSQL as text of one width,
// YYYY-MM-DDTHH:MM:SS.fffffffff in UTC, whose order is time order, NULL
// when unassigned or of another form. Writes keep dateTimes in UTC RFC
// 3339, so no cast is needed, and none can fail on a string an earlier
// declaration left (a cast of "2026-13-45T..." would fail the query).
func (c *scimCompiler) customInstant(col scimColumn) string {
	raw := c.customRaw(col)
	// The pattern spells "optional" {0,1}, not ?, which the driver would
	// take for a parameter.
	return "CASE WHEN jsonb_typeof(" + c.customJSON(col) + ") = 'string' AND " + raw +
		` ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9}){0,1}Z$' THEN rpad(CASE WHEN ` + raw +
		` LIKE '%.%' THEN left(` + raw + `, -1) ELSE left(` + raw + `, -1) || '.' END, 29, '0') END`
}

// instantText is t as customInstant renders instants.
func instantText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000") }

// customNumber is a number column as a double, or on SQLite a dateTime
// column as seconds since 1970, NULL when unassigned or of another type.
func (c *scimCompiler) customNumber(col scimColumn) string {
	raw := c.customRaw(col)
	switch {
	case col.kind == scimTime:
		return "CASE WHEN " + c.customType(col) + " = 'text' THEN (julianday(" + raw + ") - 2440587.5) * 86400.0 END"
	case c.pg:
		return "CASE WHEN jsonb_typeof(" + c.customJSON(col) + ") = 'number' THEN CAST(" + c.customJSON(col) + " AS float8) END"
	}
	return "CASE WHEN " + c.customType(col) + " IN ('integer', 'real') THEN " + raw + " END"
}

// customText is a string column as NOT NULL text, "" when unassigned.
func (c *scimCompiler) customText(col scimColumn) string {
	return "COALESCE(" + c.customRaw(col) + ", '')"
}

// customPresent is the condition that a custom column has a value.
func (c *scimCompiler) customPresent(col scimColumn) string {
	switch col.kind {
	case scimText, scimExact:
		return c.customText(col) + " <> ''"
	case scimBool:
		if c.pg {
			return "COALESCE(jsonb_typeof(" + c.customJSON(col) + ") = 'boolean', FALSE)"
		}
		return "COALESCE(" + c.customType(col) + " IN ('true', 'false'), 0)"
	case scimTime:
		if c.pg {
			return "(" + c.customInstant(col) + ") IS NOT NULL"
		}
	}
	return "(" + c.customNumber(col) + ") IS NOT NULL"
}

// customCompare compares a boolean, number or dateTime column; the
// filter check has matched the value's kind to the type.
func (c *scimCompiler) customCompare(col scimColumn, e *filter.Compare) (string, error) {
	name := e.Attr.String()
	switch col.kind {
	case scimBool:
		if e.Value.Kind != filter.KindTrue && e.Value.Kind != filter.KindFalse || (e.Op != filter.Eq && e.Op != filter.Ne) {
			return "", scimFilterErr("%q is a boolean; compare it with eq or ne and true or false", name)
		}
		// ne true is "false", as an unassigned value matches neither.
		want := e.Value.Bool == (e.Op == filter.Eq)
		if c.pg {
			return "COALESCE(" + c.customJSON(col) + " = CAST(" + c.arg(strconv.FormatBool(want)) + " AS jsonb), FALSE)", nil
		}
		return "COALESCE(" + c.customType(col) + " = " + c.arg(strconv.FormatBool(want)) + ", 0)", nil
	case scimNumber, scimTime:
		op, ok := scimOps[e.Op]
		if !ok {
			return "", scimFilterErr("%q compares with eq, ne, gt, ge, lt or le", name)
		}
		var v float64
		if col.kind == scimTime {
			if e.Value.Kind != filter.KindString {
				return "", scimFilterErr("%q is a dateTime; compare it with a quoted date", name)
			}
			t, err := scim.ParseDateTime(e.Value.Str)
			if err != nil {
				return "", scimFilterErr("%s: %v", e.Value.String(), err)
			}
			if c.pg {
				return "COALESCE((" + c.customInstant(col) + ") " + op + " " + c.text(instantText(t)) + ` COLLATE "C", FALSE)`, nil
			}
			v = float64(t.UnixNano()) / float64(time.Second)
		} else {
			f, err := strconv.ParseFloat(string(e.Value.Num), 64)
			if e.Value.Kind != filter.KindNumber || err != nil {
				return "", scimFilterErr("%q is a number; compare it with a number without quotes", name)
			}
			v = f
		}
		if col.kind == scimTime {
			// SQLite's julianday is exact to the millisecond; a double of
			// seconds since 1970 holds that, but not always the same bits
			// for one instant computed two ways: eq and ne allow half a
			// millisecond.
			const half = 0.0005
			switch e.Op {
			case filter.Eq:
				return "COALESCE(abs((" + c.customNumber(col) + ") - " + c.arg(v) + ") < " + strconv.FormatFloat(half, 'f', -1, 64) + ", " + c.falseSQL() + ")", nil
			case filter.Ne:
				return "COALESCE(abs((" + c.customNumber(col) + ") - " + c.arg(v) + ") >= " + strconv.FormatFloat(half, 'f', -1, 64) + ", " + c.falseSQL() + ")", nil
			}
		}
		return "COALESCE((" + c.customNumber(col) + ") " + op + " " + c.arg(v) + ", " + c.falseSQL() + ")", nil
	}
	return "", scimFilterErr("%q cannot be used in a filter", name)
}

func (c *scimCompiler) falseSQL() string {
	if c.pg {
		return "FALSE"
	}
	return "0"
}

// customElements is the FROM item of the values x of a multi-valued
// custom attribute.
func (c *scimCompiler) customElements(key string) string {
	if c.pg {
		j := "u.attrs->'custom'->'" + key + "'"
		return "jsonb_array_elements(CASE WHEN jsonb_typeof(" + j + ") = 'array' THEN " + j + " ELSE '[]'::jsonb END) WITH ORDINALITY x(value, n)"
	}
	// A value that is not an array (left by a declaration that was not
	// multi-valued) has no values here, as on PostgreSQL.
	return "json_each(CASE WHEN json_type(u.attrs, " + customPath(key) + ") = 'array' THEN json_extract(u.attrs, " + customPath(key) + ") ELSE '[]' END) x"
}

// customSort is the sort of a custom attribute: its first value for a
// multi-valued one.
func (c *scimCompiler) customSort(a scimAttr, col scimColumn) scimSort {
	var expr string
	kind := scimKeyText
	switch col.kind {
	case scimTime:
		if c.pg {
			expr = "COALESCE(" + c.customInstant(col) + ", '')"
		} else {
			expr, kind = c.customNumber(col), scimKeyNumber
		}
	case scimNumber:
		expr, kind = c.customNumber(col), scimKeyNumber
	case scimBool:
		expr = "CASE WHEN " + c.customPresent(col) + " THEN CASE WHEN " + c.customBoolTrue(col) + " THEN 'true' ELSE 'false' END ELSE '' END"
	case scimText:
		expr = "lower(" + c.customText(col) + ")"
	default:
		expr = c.customText(col)
	}
	if a.multi {
		order := "x.key" // the values' index in the array
		if c.pg {
			order = "x.n"
		}
		expr = "(SELECT " + expr + " FROM " + c.customElements(a.custom) + " WHERE " + c.customPresent(col) + " ORDER BY " + order + " LIMIT 1)"
		if kind == scimKeyText {
			expr = "COALESCE(" + expr + ", '')"
		}
	}
	if kind == scimKeyNumber {
		if c.pg {
			expr = "COALESCE(" + expr + ", 'Infinity'::float8)"
		} else {
			expr = "COALESCE(" + expr + ", 9e999)" // +Infinity
		}
	}
	return scimSort{expr: expr, kind: kind}
}

func (c *scimCompiler) customBoolTrue(col scimColumn) string {
	if c.pg {
		return c.customJSON(col) + " = 'true'::jsonb"
	}
	return c.customType(col) + " = 'true'"
}
