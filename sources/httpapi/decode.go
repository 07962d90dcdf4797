package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rosterd/roster/sources"
)

// Directory field names a Map may hold, in the order records are checked.
const (
	FieldExternalID = "externalId"
	FieldUserName   = "userName"
	FieldGivenName  = "givenName"
	FieldFamilyName = "familyName"
	FieldEmail      = "email"
	FieldPhone      = "phone"
	FieldGroups     = "groups"
	FieldActive     = "active"
)

// Fields lists every directory field a Map may name.
var Fields = []string{FieldExternalID, FieldUserName, FieldGivenName, FieldFamilyName, FieldEmail, FieldPhone, FieldGroups, FieldActive}

type fieldPointer struct {
	name string
	ptr  pointer
	// attribute marks an attribute path (SPEC §2.1) rather than a field.
	attribute bool
}

// mapping is the compiled form of Options.Records, Next and Map.
type mapping struct {
	records pointer
	next    pointer
	useNext bool // Next was set: the body names the next page, not Link
	fields  []fieldPointer
}

func compileMapping(records, next string, m map[string]string) (*mapping, error) {
	var err error
	mp := &mapping{}
	if mp.records, err = parsePointer(records); err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	if next != "" {
		mp.useNext = true
		if mp.next, err = parsePointer(next); err != nil {
			return nil, fmt.Errorf("next: %w", err)
		}
	}
	if len(m) == 0 {
		// Without a map each field is read from the member of its own name.
		m = make(map[string]string, len(Fields))
		for _, f := range Fields {
			m[f] = "/" + f
		}
	}
	// Names other than the record's fields are attribute paths (SPEC
	// §2.1), checked by the configuration; they follow in sorted order.
	var paths []string
	for name := range m {
		if !slices.Contains(Fields, name) {
			paths = append(paths, name)
		}
	}
	slices.Sort(paths)
	for _, name := range append(slices.Clone(Fields), paths...) {
		text, ok := m[name]
		if !ok {
			if name == FieldExternalID || name == FieldUserName {
				return nil, fmt.Errorf("map: %s is required; give the JSON pointer to it inside a record", name)
			}
			continue
		}
		if text == "" {
			return nil, fmt.Errorf("map: the pointer for %s is empty; a field is a member of the record, such as \"/%s\"", name, name)
		}
		p, err := parsePointer(text)
		if err != nil {
			return nil, fmt.Errorf("map: %s: %w", name, err)
		}
		mp.fields = append(mp.fields, fieldPointer{name: name, ptr: p, attribute: !slices.Contains(Fields, name)})
	}
	return mp, nil
}

// bodyError is why a page body could not be read or parsed. transient marks
// a failure of the connection rather than of the content.
type bodyError struct {
	msg       string
	transient bool
	tooLarge  bool
}

func (e *bodyError) Error() string { return e.msg }

// countingReader counts the bytes read and remembers a read error other
// than io.EOF, so that a broken connection is told apart from bad JSON.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// decodeBody reads exactly one JSON value from r, streaming it through a
// limit of maxBody bytes. Numbers are kept as json.Number, exact.
func decodeBody(r io.Reader, maxBody int64) (any, error) {
	cr := &countingReader{r: io.LimitReader(r, maxBody+1)}
	dec := json.NewDecoder(cr)
	dec.UseNumber()
	var doc any
	err := dec.Decode(&doc)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
		}
	} else {
		// Read on to the limit, so that a body too large is reported as
		// such rather than as JSON cut short.
		_, _ = io.Copy(io.Discard, cr)
	}
	switch {
	case cr.err != nil:
		return nil, &bodyError{msg: "reading the body failed: " + cr.err.Error(), transient: true}
	case cr.n > maxBody:
		return nil, &bodyError{msg: fmt.Sprintf("the body is larger than %d bytes (max_body)", maxBody), tooLarge: true}
	case err == nil:
		return doc, nil
	}
	var syn *json.SyntaxError
	switch {
	case err == io.EOF:
		return nil, &bodyError{msg: "the body is empty; expected JSON"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, &bodyError{msg: "malformed JSON: the body ends in the middle of a value"}
	case err == errTrailing:
		return nil, &bodyError{msg: "malformed JSON: more data follows the JSON value"}
	case errors.As(err, &syn):
		return nil, &bodyError{msg: fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))}
	}
	return nil, &bodyError{msg: "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
}

var errTrailing = errors.New("trailing data")

// page finds the records and the next page's URL in a decoded body. next
// is "" when the body names no next page (or Next is not set).
func (m *mapping) page(doc any) (items []any, next string, err error) {
	v, found := m.records.lookup(doc)
	if !found {
		return nil, "", fmt.Errorf("the records pointer %s finds nothing in the body", m.records)
	}
	items, ok := v.([]any)
	if !ok {
		if m.records.text == "" {
			return nil, "", fmt.Errorf("the body is %s, not an array of records (set records to the JSON pointer of the array)", jsonType(v))
		}
		return nil, "", fmt.Errorf("the records pointer %s finds %s, not an array of records", m.records, jsonType(v))
	}
	if m.useNext {
		nv, found := m.next.lookup(doc)
		if found && nv != nil {
			s, ok := nv.(string)
			if !ok {
				return nil, "", fmt.Errorf("the next pointer %s finds %s, not a URL", m.next, jsonType(nv))
			}
			next = strings.TrimSpace(s)
		}
	}
	return items, next, nil
}

// jsonType names the type of a decoded JSON value for a message.
func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("%t", v)
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// validator maps records and collects every problem across all pages.
type validator struct {
	m      *mapping
	errs   []sources.FieldError
	ids    map[string]int
	logins map[string]int
	check  sources.AttributeCheck
}

func newValidator(m *mapping) *validator {
	return &validator{m: m, ids: make(map[string]int), logins: make(map[string]int)}
}

func (v *validator) fail(line int, field, format string, args ...any) {
	msg := fmt.Sprintf("record %d (%s): ", line, field) + fmt.Sprintf(format, args...)
	v.errs = append(v.errs, sources.FieldError{Line: line, Field: field, Message: msg})
}

// record maps one record object to a sources.Record, reporting every
// problem it has. line is the record's number across all pages.
func (v *validator) record(obj map[string]any, line int) sources.Record {
	rec := sources.Record{Line: line}
	for _, f := range v.m.fields {
		raw, found := f.ptr.lookup(obj)
		switch f.name {
		case FieldGroups:
			rec.Groups = v.groups(raw, line)
			continue
		case FieldActive:
			rec.Active = v.active(raw, line)
			continue
		}
		s, ok := v.text(raw, line, f.name)
		if !ok {
			continue
		}
		if f.attribute {
			if why := v.check.Check(f.name, s); why != "" {
				v.fail(line, f.name, "%s %s", sources.QuoteValue(s), why)
				s = ""
			}
			rec.Attributes = append(rec.Attributes, sources.Attribute{Path: f.name, Value: s})
			continue
		}
		switch f.name {
		case FieldExternalID:
			rec.ExternalID = s
			if s == "" {
				v.required(line, f, found)
			} else if first, dup := v.ids[s]; dup {
				v.fail(line, f.name, "%s is already used by record %d", sources.QuoteMember(s), first)
			} else {
				v.ids[s] = line
			}
		case FieldUserName:
			s = sources.NormalizeLogin(s)
			rec.UserName = s
			key := sources.FoldKey(s)
			if s == "" {
				v.required(line, f, found)
			} else if why := sources.LoginProblem(s); why != "" {
				v.fail(line, f.name, "%s %s", sources.QuoteValue(s), why)
			} else if first, dup := v.logins[key]; dup {
				v.fail(line, f.name, "%s is already used by record %d (login names are compared without regard to case)", sources.QuoteMember(s), first)
			} else {
				v.logins[key] = line
			}
		case FieldGivenName:
			rec.GivenName = s
		case FieldFamilyName:
			rec.FamilyName = s
		case FieldEmail:
			if s != "" && !sources.ValidEmail(s) {
				v.fail(line, f.name, "%s is not a valid e-mail address", sources.QuoteMember(s))
			}
			rec.Email = s
		case FieldPhone:
			rec.Phone = s
		}
	}
	return rec
}

func (v *validator) required(line int, f fieldPointer, found bool) {
	if found {
		v.fail(line, f.name, "a value is required")
	} else {
		v.fail(line, f.name, "a value is required; the record has nothing at %s", f.ptr)
	}
}

// text turns a string or number into trimmed text and checks its
// characters. ok is false when the value is unusable (already reported).
func (v *validator) text(raw any, line int, field string) (string, bool) {
	var s string
	switch x := raw.(type) {
	case nil:
		return "", true
	case string:
		s = strings.TrimSpace(x)
	case json.Number:
		return string(x), true
	default:
		v.fail(line, field, "the value is %s; expected a string or a number", jsonType(raw))
		return "", false
	}
	return s, v.allowed(s, line, field, "")
}

// allowed reports invalid text and forbidden characters in s. what names
// the value inside the field, such as "group 2", or is "".
func (v *validator) allowed(s string, line int, field, what string) bool {
	prefix := ""
	if what != "" {
		prefix = what + ": "
	}
	// encoding/json turns invalid UTF-8 and unpaired surrogates into
	// U+FFFD; a value holding it has lost characters on the way.
	if strings.ContainsRune(s, utf8.RuneError) {
		v.fail(line, field, "%s%s is not valid text: it holds invalid UTF-8, an unpaired surrogate or U+FFFD", prefix, sources.QuoteMember(s))
		return false
	}
	if r, bad := sources.ForbiddenRune(s); bad {
		v.fail(line, field, "%s%s contains %s", prefix, sources.QuoteMember(s), describeRune(r))
		return false
	}
	return true
}

// groups accepts an array of strings (or numbers) or one string. Names are
// trimmed, empty ones dropped, and later spellings of a name already listed
// dropped, ignoring case.
func (v *validator) groups(raw any, line int) []string {
	var items []any
	switch x := raw.(type) {
	case nil:
		return nil
	case string, json.Number:
		items = []any{x}
	case []any:
		items = x
	default:
		v.fail(line, FieldGroups, "the value is %s; expected an array of group names or one group name", jsonType(raw))
		return nil
	}
	var groups []string
	seen := make(map[string]struct{}, len(items))
	for i, it := range items {
		var g string
		switch x := it.(type) {
		case string:
			g = strings.TrimSpace(x)
		case json.Number:
			g = string(x)
		default:
			v.fail(line, FieldGroups, "group %d is %s; expected a group name", i+1, jsonType(it))
			continue
		}
		if g == "" || !v.allowed(g, line, FieldGroups, fmt.Sprintf("group %d", i+1)) {
			continue
		}
		k := sources.FoldKey(g)
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		groups = append(groups, g)
	}
	return groups
}

// active accepts true, false and the strings "true" and "false" in any
// case; null, "" and a missing value mean the source does not say.
func (v *validator) active(raw any, line int) *bool {
	var b bool
	switch x := raw.(type) {
	case nil:
		return nil
	case bool:
		b = x
	case string:
		switch s := strings.TrimSpace(x); {
		case s == "":
			return nil
		case strings.EqualFold(s, "true"):
			b = true
		case strings.EqualFold(s, "false"):
			b = false
		default:
			v.fail(line, FieldActive, "%s is neither true nor false", sources.QuoteMember(s))
			return nil
		}
	default:
		v.fail(line, FieldActive, "the value is %s; expected true or false", jsonType(raw))
		return nil
	}
	return &b
}

// readPage decodes one page body and maps its records, numbering them from
// line+1. Problems inside records go to v; err is a problem with the page
// as a whole (a *bodyError for the body itself).
func readPage(r io.Reader, maxBody int64, m *mapping, v *validator, line int) (recs []sources.Record, next string, err error) {
	doc, err := decodeBody(r, maxBody)
	if err != nil {
		return nil, "", err
	}
	items, next, err := m.page(doc)
	if err != nil {
		return nil, "", err
	}
	recs = make([]sources.Record, 0, len(items))
	for i, it := range items {
		obj, ok := it.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("record %d (item %d of the page's array) is %s, not an object", line+i+1, i+1, jsonType(it))
		}
		recs = append(recs, v.record(obj, line+i+1))
	}
	return recs, next, nil
}
