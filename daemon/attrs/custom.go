package attrs

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The types a custom attribute may have: the simple data types of RFC
// 7643 §2.3 that a filter can compare. binary (base64 that no filter
// orders) and complex (sub-attributes of its own) are not offered.
const (
	TypeString    = "string"
	TypeBoolean   = "boolean"
	TypeInteger   = "integer"
	TypeDecimal   = "decimal"
	TypeDateTime  = "dateTime"
	TypeReference = "reference"
)

// Types lists the custom attribute types, in the order the docs give them.
var Types = []string{TypeString, TypeBoolean, TypeInteger, TypeDecimal, TypeDateTime, TypeReference}

// DefaultCustomURN is the schema of the custom attributes when the
// configuration names none. It has the shape identity providers expect
// of a User extension (Entra ID's and Okta's attribute editors offer
// urn:ietf:params:scim:schemas:extension:<name>:2.0:User); an operator
// with a namespace of its own sets attributes.custom_schema.
const DefaultCustomURN = "urn:ietf:params:scim:schemas:extension:roster:2.0:User"

// Custom is a custom attribute declared in the configuration
// (attributes.custom).
type Custom struct {
	Name        string
	Type        string
	MultiValued bool
	CaseExact   bool
}

// Key is where the attribute's value is kept in the document (Doc.Custom):
// its lower-cased name, so that a declaration that only changes the
// name's case keeps the values, as names match case-insensitively
// everywhere else (RFC 7643 §2.1).
func (c Custom) Key() string { return strings.ToLower(c.Name) }

// Model is the configured custom attributes: the schema URN they are
// served under and their declarations. A nil *Model has none.
type Model struct {
	URN    string
	Custom []Custom
	paths  sync.Map // path text → Path, see Lookup
}

// NewModel returns the model of the custom attributes; urn "" is
// DefaultCustomURN. The declarations are taken as the configuration
// checked them (see ValidName, ValidURN).
func NewModel(urn string, custom []Custom) *Model {
	if urn == "" {
		urn = DefaultCustomURN
	}
	return &Model{URN: urn, Custom: custom}
}

// Find returns the custom attribute called name, matched
// case-insensitively.
func (m *Model) Find(name string) (Custom, bool) {
	if m == nil {
		return Custom{}, false
	}
	for _, c := range m.Custom {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return Custom{}, false
}

// ValidName reports whether name is an attribute name by RFC 7643 §2.1's
// ATTRNAME: a letter, then letters, digits, "-" and "_". That keeps a
// name out of every delimiter of a path, a filter and a JSON path.
func ValidName(name string) bool {
	if name == "" || !isLetter(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isLetter(c) && !isDigit(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// ValidURN checks a schema URN for the custom attributes: RFC 8141's
// urn:NID:NSS, with an NSS of letters, digits and ". - _ :" only, so
// that a path of the URN, a colon and a name is read back as written by
// every parser of paths (the last colon ends the URN), and its last
// segment not a number (a version such as 2.0 is followed by the
// resource name, "User", by convention).
func ValidURN(urn string) error {
	rest, ok := cutPrefixFold(urn, "urn:")
	if !ok {
		return fmt.Errorf("%q does not start with \"urn:\"", urn)
	}
	nid, nss, ok := strings.Cut(rest, ":")
	if !ok || nss == "" {
		return fmt.Errorf("%q has no namespace-specific part after %q", urn, "urn:"+nid+":")
	}
	if len(nid) < 2 || len(nid) > 32 || nid[0] == '-' || nid[len(nid)-1] == '-' {
		return fmt.Errorf("%q: the namespace %q must be 2 to 32 letters, digits or inner hyphens (RFC 8141)", urn, nid)
	}
	for i := 0; i < len(nid); i++ {
		if c := nid[i]; !isLetter(c) && !isDigit(c) && c != '-' {
			return fmt.Errorf("%q: the namespace %q must be 2 to 32 letters, digits or inner hyphens (RFC 8141)", urn, nid)
		}
	}
	for i := 0; i < len(nss); i++ {
		if c := nss[i]; !isLetter(c) && !isDigit(c) && !strings.ContainsRune(".-_:", rune(c)) {
			return fmt.Errorf("%q: the character %q is not allowed; use letters, digits, \".\", \"-\", \"_\" and \":\"", urn, string(rune(c)))
		}
	}
	if strings.HasSuffix(nss, ":") || strings.Contains(nss, "::") {
		return fmt.Errorf("%q has an empty segment between colons", urn)
	}
	last := nss[strings.LastIndexByte(nss, ':')+1:]
	if !isLetter(last[0]) {
		return fmt.Errorf("%q: the last segment %q must start with a letter, as in ...:2.0:User", urn, last)
	}
	return nil
}

// Value converts a source's text for a custom attribute to the value the
// document keeps, by the attribute's type: booleans true or false (any
// case), integers within ±2^53 (exact in JSON everywhere), decimals as
// finite numbers, dateTimes as RFC 3339 (kept in UTC, as written
// otherwise); strings and references as they are. The error says why,
// to follow the quoted value.
func (c Custom) Value(s string) (any, error) {
	switch c.Type {
	case TypeBoolean:
		switch strings.ToLower(s) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("is not a boolean (true or false)")
	case TypeInteger:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > maxExact || n < -maxExact {
			return nil, fmt.Errorf("is not an integer between -2^53 and 2^53")
		}
		return float64(n), nil
	case TypeDecimal:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("is not a decimal number such as 12.5")
		}
		return f, nil
	case TypeDateTime:
		t, err := ParseDateTime(s)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	return s, nil
}

// maxExact is the largest integer a JSON number holds exactly in every
// reader (an IEEE 754 double).
const maxExact = 1 << 53

// ParseDateTime reads a dateTime (RFC 7643 §2.3.5) as RFC 3339 and
// returns it in the form the document keeps: UTC, with as many fractional
// digits as it needs, so that equal instants are equal text.
func ParseDateTime(s string) (string, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", fmt.Errorf("is not a date and time such as 2026-01-02T15:04:05Z (RFC 3339)")
	}
	return t.UTC().Format(time.RFC3339Nano), nil
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
