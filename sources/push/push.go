// Package push decodes and validates the payloads that systems push to
// roster (SPEC §3.3): users and departments, NocoBase's user data sync
// format. It knows nothing of the store: the reconcile engine decides what a
// valid payload changes.
//
// Decisions where the specification leaves room:
//
//   - The body must be valid UTF-8 (encoding/json would silently replace
//     bad bytes) and JSON. Other keys of a user record are NocoBase's
//     custom fields: the source's fields map them to attribute paths
//     (MapFields); the others are named in the task's warning and kept in
//     the raw record. Other keys of a department record (its table's
//     custom fields in NocoBase) have no attributes to fill: they too are
//     named in a warning and kept in the raw record. Known keys must have
//     the right JSON type.
//   - A field that is absent or null is left as it is on an existing user
//     (a push is a delta); a present field, even "", is set. A user needs
//     a login name when it is created: username, or else its e-mail.
//   - uid, username, departments and parentUid may be numbers; they become
//     their decimal text exactly as written ("0042" stays a string, 42 is "42").
//   - departments, when present, is the user's complete list of
//     departments in this source; the first entry, or the one with
//     isMain, is the enterprise department.
//   - Every problem of a payload is reported at once, each naming the
//     record index (0-based, as in the JSON array) and the field.
package push

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rosterd/roster/sources"
)

// Data types and match keys of a payload.
const (
	DataUser       = "user"
	DataDepartment = "department"

	MatchUID      = "uid"
	MatchUserName = "username"
	MatchEmail    = "email"
	MatchPhone    = "phone"
)

// maxText bounds every text field; longer values are refused.
const maxText = 1024

// maxDepartments bounds the departments of one user record: generous for
// any organisation, and it keeps what one record costs to validate, plan
// and apply small.
const maxDepartments = 1000

// Payload is one validated push.
type Payload struct {
	// Raw is the body Decode read, byte for byte: what the push's raw
	// record keeps (SPEC §5).
	Raw []byte
	// SourceName is NocoBase's "sourceName", "" when absent.
	SourceName  string
	DataType    string
	MatchKey    string
	Users       []User
	Departments []Department
}

// User is one user record. Nil fields were absent and stay as they are.
type User struct {
	Index       int
	UID         string
	UserName    *string
	NickName    *string
	Email       *string
	Phone       *string
	Departments []DeptRef // nil when absent; empty when the user has none
	IsDeleted   bool
	// Custom are the record's other keys (NocoBase's custom fields),
	// sorted by name, for MapFields.
	Custom []Field
	// Attributes are the attribute values of the custom fields the
	// source maps (MapFields); a push sets the ones it names and leaves
	// the others as they are.
	Attributes []sources.Attribute
}

// Field is a custom field of a user record: its value as text, when it
// is a string, a number or a boolean (Text), or else its JSON.
type Field struct {
	Name, Value string
	Text        bool
	// Raw is the value as the record holds it, which Encode keeps.
	Raw json.RawMessage
}

// userKeys are the keys of a user record that are not custom fields.
var userKeys = map[string]bool{"uid": true, "username": true, "nickname": true, "email": true, "phone": true,
	"departments": true, "isDeleted": true}

// departmentKeys are the keys of a department record that are not custom
// fields.
var departmentKeys = map[string]bool{"uid": true, "title": true, "parentUid": true, "isDeleted": true}

// MapFields turns the custom fields of p's users that fields maps (custom
// field name → attribute path, SPEC §3.3) into their Attributes, checking
// each value by its attribute's type, and returns the names of the custom
// fields no entry maps, sorted, for the task's warning: their values stay
// in the raw record only. A mapped field that is not text or not a valid
// value is an error naming the record and the field.
//
// check checks values beyond sources.CheckAttribute (nil: nothing more).
func MapFields(p *Payload, fields map[string]string, check sources.AttributeCheck) (unmapped []string, errs []RecordError) {
	seen := map[string]bool{}
	for i := range p.Users {
		u := &p.Users[i]
		u.Attributes = u.Attributes[:0]
		for _, f := range u.Custom {
			path, ok := fields[f.Name]
			switch {
			case !ok:
				if !seen[f.Name] {
					seen[f.Name] = true
					unmapped = append(unmapped, f.Name)
				}
			case !f.Text:
				errs = append(errs, RecordError{Index: u.Index, Field: f.Name,
					Message: fmt.Sprintf("records[%d] (%s): must be a string, a number or a boolean: it fills %s", u.Index, f.Name, path)})
			case len(f.Value) > maxText:
				errs = append(errs, RecordError{Index: u.Index, Field: f.Name,
					Message: fmt.Sprintf("records[%d] (%s): is longer than %d bytes", u.Index, f.Name, maxText)})
			default:
				if why := check.Check(path, f.Value); why != "" {
					errs = append(errs, RecordError{Index: u.Index, Field: f.Name,
						Message: fmt.Sprintf("records[%d] (%s): %s %s", u.Index, f.Name, sources.QuoteMember(f.Value), why)})
					continue
				}
				u.Attributes = append(u.Attributes, sources.Attribute{Path: path, Value: f.Value})
			}
		}
	}
	slices.Sort(unmapped)
	return unmapped, errs
}

// MatchValue is the value of the record's match key.
func (u *User) MatchValue(key string) string {
	switch key {
	case MatchUserName:
		return deref(u.UserName)
	case MatchEmail:
		return deref(u.Email)
	case MatchPhone:
		return deref(u.Phone)
	default:
		return u.UID
	}
}

// MainDepartment is the uid of the user's enterprise department: the one
// marked isMain, else the first; "" when the user has none.
func (u *User) MainDepartment() string {
	for _, d := range u.Departments {
		if d.IsMain {
			return d.UID
		}
	}
	if len(u.Departments) > 0 {
		return u.Departments[0].UID
	}
	return ""
}

// DeptRef is one of a user's departments.
type DeptRef struct {
	UID     string `json:"uid"`
	IsMain  bool   `json:"isMain,omitempty"`
	IsOwner bool   `json:"isOwner,omitempty"`
}

// Department is one department record.
type Department struct {
	Index     int
	UID       string
	Title     *string
	ParentUID *string // "" detaches the department from its parent
	IsDeleted bool
	// Custom are the record's other keys (NocoBase's custom fields of the
	// department table), sorted by name. Groups have no attributes to
	// hold them: the task names them in a warning, and the raw record
	// keeps them.
	Custom []Field
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// RecordError is one problem of a payload. Index is the record's position
// in "records", or -1 for the payload itself.
type RecordError struct {
	Index   int    `json:"index"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Error lists every problem of a payload.
type Error struct {
	Errors []RecordError
}

func (e *Error) Error() string {
	switch len(e.Errors) {
	case 0:
		return "invalid payload"
	case 1:
		return e.Errors[0].Message
	default:
		return fmt.Sprintf("%s (and %d more errors)", e.Errors[0].Message, len(e.Errors)-1)
	}
}

// maxErrors bounds the list of problems reported for one payload.
const maxErrors = 1000

type decoder struct {
	errs []RecordError
	// work counts the steps of the loops whose length depends on the
	// payload, so that tests hold validation to linear time without a clock.
	work int
}

func (d *decoder) fail(index int, field, format string, args ...any) {
	if len(d.errs) == maxErrors {
		d.errs = append(d.errs, RecordError{Index: -1, Message: "too many errors; the rest are not listed"})
	}
	if len(d.errs) > maxErrors {
		return
	}
	var where string
	switch {
	case index < 0:
		where = field
	case field == "":
		where = fmt.Sprintf("records[%d]", index)
	default:
		where = fmt.Sprintf("records[%d] (%s)", index, field)
	}
	d.errs = append(d.errs, RecordError{Index: index, Field: field, Message: where + ": " + fmt.Sprintf(format, args...)})
}

// Decode reads and validates a payload. A payload with any problem returns
// an *Error listing all of them; nothing of it may be applied.
func Decode(body []byte) (*Payload, error) {
	return (&decoder{}).decode(body)
}

func (d *decoder) decode(body []byte) (*Payload, error) {
	var p *Payload
	err := d.records(body, func(head *Payload, u *User, dep *Department) error {
		p = head
		if u != nil {
			p.Users = append(p.Users, *u)
		} else if dep != nil {
			p.Departments = append(p.Departments, *dep)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.duplicates(p)
	if p.DataType == DataDepartment {
		d.cycles(p.Departments)
	}
	if len(d.errs) > 0 {
		return nil, &Error{Errors: d.errs}
	}
	return p, nil
}

// DecodeParts reads a payload that Decode accepted (a stored push) n
// records at a time: fn gets a payload of the next n records (the last
// part may hold fewer; a payload without records gives one empty part),
// which it may keep. Only one part is held at a time besides the body:
// a push of hundreds of thousands of records is applied without its
// records decoded all at once. The checks across records (uids and logins
// used twice, cycles in the payload) are Decode's and are not repeated; a
// record that does not pass its own checks ends the reading with an
// *Error, and so does an error of fn, as it came.
func DecodeParts(body []byte, n int, fn func(part *Payload) error) error {
	d := &decoder{}
	var part *Payload
	flush := func() error {
		if part == nil {
			return nil
		}
		p := part
		part = nil
		return fn(p)
	}
	var head *Payload
	err := d.records(body, func(h *Payload, u *User, dep *Department) error {
		head = h
		if part == nil {
			part = &Payload{SourceName: h.SourceName, DataType: h.DataType, MatchKey: h.MatchKey}
		}
		switch {
		case u != nil:
			part.Users = append(part.Users, *u)
		case dep != nil:
			part.Departments = append(part.Departments, *dep)
		default:
			return nil
		}
		if len(part.Users)+len(part.Departments) >= max(n, 1) {
			return flush()
		}
		return nil
	})
	if err == nil && len(d.errs) > 0 {
		err = &Error{Errors: d.errs}
	}
	if err != nil {
		return err
	}
	if part == nil && head != nil {
		return nil // the last part was full
	}
	return flush()
}

// records reads body's top level and then its records one at a time,
// calling fn with the payload's head (no records, no Raw besides the body)
// and each valid record: once with neither for a payload without records.
// Problems are added to d.errs; an error of the top level ends the reading.
func (d *decoder) records(body []byte, fn func(head *Payload, u *User, dep *Department) error) error {
	if !utf8.Valid(body) {
		return &Error{Errors: []RecordError{{Index: -1, Message: fmt.Sprintf("the body is not valid UTF-8 (first bad byte at offset %d)", firstInvalid(body))}}}
	}
	// The top level is decoded into parts of body, not copies: "records"
	// is most of a push (tens of megabytes), and it is then read one
	// record at a time, so that decoding holds the body once, not three
	// times (issue 16: a 61 MB push peaked at 1.66 GB).
	var top map[string]bodyPart
	if err := json.Unmarshal(body, &top); err != nil {
		msg := err.Error()
		if strings.Contains(msg, "after top-level value") {
			msg = "unexpected data after the JSON object"
		}
		return &Error{Errors: []RecordError{{Index: -1, Message: "the body is not a JSON object: " + msg}}}
	}
	p := &Payload{Raw: body}
	p.SourceName, _ = d.text(-1, "sourceName", json.RawMessage(top["sourceName"]), false)
	p.DataType, _ = d.text(-1, "dataType", json.RawMessage(top["dataType"]), false)
	switch p.DataType {
	case DataUser, DataDepartment:
	case "":
		d.fail(-1, "dataType", `is required: "user" or "department"`)
	default:
		d.fail(-1, "dataType", `must be "user" or "department", not %s`, sources.QuoteMember(p.DataType))
	}
	p.MatchKey, _ = d.text(-1, "matchKey", json.RawMessage(top["matchKey"]), false)
	switch p.MatchKey {
	case "":
		p.MatchKey = MatchUID
	case MatchUID, MatchUserName, MatchEmail, MatchPhone:
	default:
		d.fail(-1, "matchKey", `must be "uid", "username", "email" or "phone", not %s`, sources.QuoteMember(p.MatchKey))
	}
	records := json.NewDecoder(bytes.NewReader(top["records"]))
	if raw, ok := top["records"]; !ok || isNull(json.RawMessage(raw)) {
		d.fail(-1, "records", "is required: an array of records")
	} else if tok, err := records.Token(); err != nil || tok != json.Delim('[') {
		d.fail(-1, "records", "must be an array of records")
	}
	if len(d.errs) > 0 {
		return &Error{Errors: d.errs}
	}
	if err := fn(p, nil, nil); err != nil {
		return err
	}
	for i := 0; records.More(); i++ {
		// One record at a time: the decoder buffers this record only.
		var raw json.RawMessage
		if err := records.Decode(&raw); err != nil {
			// The body was valid JSON as a whole; a record that does not
			// decode is a bug here, not the sender's.
			return fmt.Errorf("read records[%d] of a valid body: %w", i, err)
		}
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(raw, &rec); err != nil || rec == nil {
			d.fail(i, "", "must be a JSON object")
			continue
		}
		if p.DataType == DataUser {
			if u, ok := d.user(i, rec, p.MatchKey); ok {
				if err := fn(p, &u, nil); err != nil {
					return err
				}
			}
		} else if dep, ok := d.department(i, rec); ok {
			if err := fn(p, nil, &dep); err != nil {
				return err
			}
		}
	}
	return nil
}

// keysInOrder are the keys of a decoded object, sorted, so that the same
// record maps the same way every time.
func keysInOrder(rec map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// bodyPart is a JSON value as it stands in the body json.Unmarshal
// reads, kept without a copy: json.Unmarshal hands an Unmarshaler the
// part of its input the value spans, and the body outlives the decoding.
type bodyPart []byte

func (p *bodyPart) UnmarshalJSON(b []byte) error {
	*p = b
	return nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// text reads a string field; ids may also be numbers. ok is false when the
// field is absent or null.
func (d *decoder) text(index int, field string, raw json.RawMessage, numbers bool) (string, bool) {
	if raw == nil || isNull(raw) {
		return "", false
	}
	var s string
	switch raw[0] {
	case '"':
		if n := len(raw); n >= 2 && raw[n-1] == '"' && bytes.IndexByte(raw[1:n-1], '\\') < 0 {
			// Without escapes a string is its own text: the body is valid
			// JSON and UTF-8, so it holds no control character or bad
			// byte. Most fields are such; reading them without reflection
			// cut what decoding a large push allocates by a fifth.
			s = string(raw[1 : n-1])
		} else if err := json.Unmarshal(raw, &s); err != nil {
			d.fail(index, field, "is not a valid JSON string")
			return "", false
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if !numbers {
			d.fail(index, field, "must be a string, not a number")
			return "", false
		}
		s = string(raw) // the number as written, without float rounding
	default:
		d.fail(index, field, "must be a string, not %s", jsonKind(raw))
		return "", false
	}
	s = strings.TrimSpace(s)
	if len(s) > maxText {
		d.fail(index, field, "is longer than %d bytes", maxText)
		return "", false
	}
	if r, bad := sources.ForbiddenRune(s); bad {
		d.fail(index, field, "contains the control character %U", r)
		return "", false
	}
	return s, true
}

func jsonKind(raw json.RawMessage) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	default:
		return "a number"
	}
}

func (d *decoder) optText(index int, field string, raw json.RawMessage) *string {
	if s, ok := d.text(index, field, raw, false); ok {
		return &s
	}
	return nil
}

func (d *decoder) flag(index int, field string, raw json.RawMessage) bool {
	if raw == nil || isNull(raw) {
		return false
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		d.fail(index, field, "must be true or false, not %s", jsonKind(raw))
	}
	return b
}

func (d *decoder) user(i int, rec map[string]json.RawMessage, matchKey string) (User, bool) {
	before := len(d.errs)
	u := User{Index: i}
	var ok bool
	if u.UID, ok = d.text(i, "uid", rec["uid"], true); !ok || u.UID == "" {
		if len(d.errs) == before {
			d.fail(i, "uid", "is required")
		}
	}
	u.UserName = d.optText(i, "username", rec["username"])
	if u.UserName != nil && *u.UserName == "" {
		d.fail(i, "username", "must not be empty")
	} else if u.UserName != nil {
		*u.UserName = sources.NormalizeLogin(*u.UserName)
		if why := sources.LoginProblem(*u.UserName); why != "" {
			d.fail(i, "username", "%s %s", sources.QuoteMember(*u.UserName), why)
		}
	}
	u.NickName = d.optText(i, "nickname", rec["nickname"])
	u.Email = d.optText(i, "email", rec["email"])
	if u.Email != nil && *u.Email != "" && !sources.ValidEmail(*u.Email) {
		d.fail(i, "email", "%s is not a valid e-mail address", sources.QuoteMember(*u.Email))
	}
	u.Phone = d.optText(i, "phone", rec["phone"])
	u.IsDeleted = d.flag(i, "isDeleted", rec["isDeleted"])
	if raw, present := rec["departments"]; present && !isNull(raw) {
		u.Departments = d.deptRefs(i, raw)
	}
	if matchKey != MatchUID && u.MatchValue(matchKey) == "" {
		d.fail(i, matchKey, "is required: the payload's matchKey is %q", matchKey)
	}
	u.Custom = customFields(rec, userKeys)
	return u, len(d.errs) == before
}

// customFields are the keys of a record that known does not name, sorted,
// with their values; null ones are left out, as absent.
func customFields(rec map[string]json.RawMessage, known map[string]bool) []Field {
	var out []Field
	for _, k := range keysInOrder(rec) {
		raw := rec[k]
		if known[k] || isNull(raw) {
			continue
		}
		f := Field{Name: k, Value: string(raw), Raw: raw}
		var v any
		if json.Unmarshal(raw, &v) == nil {
			switch x := v.(type) {
			case string:
				f.Value, f.Text = strings.TrimSpace(x), true
			case float64, bool:
				f.Value, f.Text = strings.TrimSpace(string(raw)), true
			}
		}
		out = append(out, f)
	}
	return out
}

func (d *decoder) deptRefs(i int, raw json.RawMessage) []DeptRef {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		d.fail(i, "departments", "must be an array of department uids or {\"uid\": ...} objects")
		return nil
	}
	if len(items) > maxDepartments {
		d.fail(i, "departments", "lists %d departments; a user may have at most %d", len(items), maxDepartments)
		return nil
	}
	refs := make([]DeptRef, 0, len(items))
	seen := make(map[string]bool, len(items))
	mains := 0
	for _, item := range items {
		d.work++
		var ref DeptRef
		if len(item) > 0 && item[0] == '{' {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(item, &obj); err != nil {
				d.fail(i, "departments", "holds an object that is not valid JSON")
				continue
			}
			ref.UID, _ = d.text(i, "departments", obj["uid"], true)
			ref.IsMain = d.flag(i, "departments", obj["isMain"])
			ref.IsOwner = d.flag(i, "departments", obj["isOwner"])
		} else {
			ref.UID, _ = d.text(i, "departments", item, true)
		}
		if ref.UID == "" {
			d.fail(i, "departments", "holds an entry without a department uid")
			continue
		}
		if seen[ref.UID] {
			continue
		}
		seen[ref.UID] = true
		if ref.IsMain {
			mains++
		}
		refs = append(refs, ref)
	}
	if mains > 1 {
		d.fail(i, "departments", "marks %d departments as isMain; at most one may be", mains)
	}
	return refs
}

func (d *decoder) department(i int, rec map[string]json.RawMessage) (Department, bool) {
	before := len(d.errs)
	dep := Department{Index: i}
	var ok bool
	if dep.UID, ok = d.text(i, "uid", rec["uid"], true); !ok || dep.UID == "" {
		if len(d.errs) == before {
			d.fail(i, "uid", "is required")
		}
	}
	dep.Title = d.optText(i, "title", rec["title"])
	if raw, present := rec["parentUid"]; present && !isNull(raw) {
		if s, ok := d.text(i, "parentUid", raw, true); ok {
			dep.ParentUID = &s
		}
	}
	dep.IsDeleted = d.flag(i, "isDeleted", rec["isDeleted"])
	dep.Custom = customFields(rec, departmentKeys)
	if !dep.IsDeleted && dep.Title != nil && *dep.Title == "" {
		d.fail(i, "title", "must not be empty")
	}
	if dep.ParentUID != nil && *dep.ParentUID == dep.UID && dep.UID != "" {
		d.fail(i, "parentUid", "is the department itself")
	}
	return dep, len(d.errs) == before
}

// duplicates refuses a payload that names one uid, or one login, twice:
// which of the two should win is not for roster to guess.
func (d *decoder) duplicates(p *Payload) {
	uids := map[string]int{}
	seen := func(i int, uid string) {
		if first, dup := uids[uid]; dup {
			d.fail(i, "uid", "%s is already used by records[%d]", sources.QuoteMember(uid), first)
		} else {
			uids[uid] = i
		}
	}
	logins := map[string]int{}
	for _, u := range p.Users {
		seen(u.Index, u.UID)
		if u.UserName == nil || u.IsDeleted {
			continue
		}
		k := strings.ToLower(*u.UserName)
		if first, dup := logins[k]; dup {
			d.fail(u.Index, "username", "%s is already used by records[%d]", sources.QuoteMember(*u.UserName), first)
		} else {
			logins[k] = u.Index
		}
	}
	for _, dep := range p.Departments {
		seen(dep.Index, dep.UID)
	}
}

// cycles refuses departments that would be their own ancestors through the
// parents this payload gives them. Cycles through departments stored
// earlier are found when the payload is planned. Each department has one
// parent, so one walk per department that stops where an earlier walk
// went finds every cycle in time linear in the payload, whatever its depth.
func (d *decoder) cycles(deps []Department) {
	parent := map[string]string{}
	for _, dep := range deps {
		if dep.ParentUID != nil && !dep.IsDeleted {
			parent[dep.UID] = *dep.ParentUID
		}
	}
	// walked holds the walk that reached each department: the current
	// walk's number while it runs, an earlier one's once it ended.
	walked := make(map[string]int, len(parent))
	onCycle := map[string]bool{}
	for n, dep := range deps {
		walk := n + 1
		p, ok := dep.UID, true
		for ; ok && p != "" && walked[p] == 0; p, ok = parent[p] {
			walked[p] = walk
			d.work++
		}
		if !ok || p == "" || walked[p] != walk {
			continue // the walk left the payload or met an earlier walk
		}
		// p is on a cycle the current walk went round: mark it all.
		for c := p; !onCycle[c]; c = parent[c] {
			onCycle[c] = true
			d.work++
		}
	}
	for _, dep := range deps {
		if onCycle[dep.UID] {
			d.fail(dep.Index, "parentUid", "makes department %s its own ancestor", sources.QuoteMember(dep.UID))
			delete(onCycle, dep.UID) // a duplicate uid is reported once
		}
	}
}

// appendFields adds custom fields to the JSON object b, their values as
// they came.
func appendFields(b []byte, fields []Field) ([]byte, error) {
	for _, f := range fields {
		name, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		b = append(append(append(append(b[:len(b)-1], ','), name...), ':'), f.Raw...)
		b = append(b, '}')
	}
	return b, nil
}

// Encode writes a payload in the push format; Decode reads it back as it
// was. It is what roster keeps to run or retry a push. Records are
// encoded one at a time into the result, which is what encoding them as
// one array gives, without holding every record boxed and the text
// twice, as encoding the array whole did.
func Encode(p *Payload) ([]byte, error) {
	type user struct {
		UID         string    `json:"uid"`
		UserName    *string   `json:"username,omitempty"`
		NickName    *string   `json:"nickname,omitempty"`
		Email       *string   `json:"email,omitempty"`
		Phone       *string   `json:"phone,omitempty"`
		Departments []DeptRef `json:"departments,omitempty"`
		IsDeleted   bool      `json:"isDeleted,omitempty"`
	}
	type department struct {
		UID       string  `json:"uid"`
		Title     *string `json:"title,omitempty"`
		ParentUID *string `json:"parentUid,omitempty"`
		IsDeleted bool    `json:"isDeleted,omitempty"`
	}
	head, err := json.Marshal(struct {
		SourceName string `json:"sourceName,omitempty"`
		DataType   string `json:"dataType"`
		MatchKey   string `json:"matchKey,omitempty"`
		Records    []any  `json:"records"`
	}{p.SourceName, p.DataType, p.MatchKey, []any{}})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Write(head[:len(head)-len("]}")])
	n := 0
	add := func(rec any) error {
		var b []byte
		var err error
		if raw, ok := rec.(json.RawMessage); ok {
			// Compacted, but not HTML-escaped as json.Marshal would:
			// custom fields keep their bytes ("&" stays "&").
			var c bytes.Buffer
			err = json.Compact(&c, raw)
			b = c.Bytes()
		} else {
			b, err = json.Marshal(rec)
		}
		if err != nil {
			return err
		}
		if n > 0 {
			out.WriteByte(',')
		}
		n++
		out.Write(b)
		return nil
	}
	for _, u := range p.Users {
		rec := user{UID: u.UID, UserName: u.UserName, NickName: u.NickName, Email: u.Email, Phone: u.Phone,
			Departments: u.Departments, IsDeleted: u.IsDeleted}
		if (u.Departments == nil || len(u.Departments) > 0) && len(u.Custom) == 0 {
			if err := add(rec); err != nil {
				return nil, err
			}
			continue
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		if u.Departments != nil && len(u.Departments) == 0 {
			// omitempty would turn "no departments" into "leave them".
			b = append(b[:len(b)-1], []byte(`,"departments":[]}`)...)
		}
		// Custom fields go as they came: mapped or not, they are part of
		// the input (the raw record, a retry under other fields).
		if b, err = appendFields(b, u.Custom); err != nil {
			return nil, err
		}
		// As a json.RawMessage, compacted as encoding the array did.
		if err := add(json.RawMessage(b)); err != nil {
			return nil, err
		}
	}
	for _, dep := range p.Departments {
		rec := department{UID: dep.UID, Title: dep.Title, ParentUID: dep.ParentUID, IsDeleted: dep.IsDeleted}
		if len(dep.Custom) == 0 {
			if err := add(rec); err != nil {
				return nil, err
			}
			continue
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		// Kept as they came, as a user's are: a retry warns of them again.
		b, err = appendFields(b, dep.Custom)
		if err != nil {
			return nil, err
		}
		if err := add(json.RawMessage(b)); err != nil {
			return nil, err
		}
	}
	out.WriteString("]}")
	return out.Bytes(), nil
}
