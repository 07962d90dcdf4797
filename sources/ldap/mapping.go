package ldap

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/sources"
)

// Flavors of directory, each with its default map and filters.
const (
	FlavorOpenLDAP        = "openldap"
	FlavorActiveDirectory = "active_directory"
)

// The directory fields a map fills besides attribute paths.
const (
	FieldExternalID = "externalId"
	FieldUserName   = "userName"
	FieldGivenName  = "givenName"
	FieldFamilyName = "familyName"
	FieldEmail      = "email"
	FieldPhone      = "phone"
	FieldActive     = "active"
	FieldManager    = "manager"
)

// Fields lists the directory fields in the order records are checked.
var Fields = []string{FieldExternalID, FieldUserName, FieldGivenName, FieldFamilyName, FieldEmail, FieldPhone, FieldActive, FieldManager}

// Flavor is what a kind of directory server calls things.
type Flavor struct {
	Map         map[string]string
	UserFilter  string
	GroupFilter string
	// GroupName names a group; Members lists its members' DNs.
	GroupName string
	Members   []string
	// ChangeAttr grows whenever an entry changes: what a changed-only
	// read asks for.
	ChangeAttr string
}

// Flavors are the built-in defaults (SPEC §3.5).
var Flavors = map[string]Flavor{
	FlavorOpenLDAP: {
		Map: map[string]string{
			FieldExternalID: "entryUUID", FieldUserName: "uid", FieldGivenName: "givenName", FieldFamilyName: "sn",
			FieldEmail: "mail", FieldPhone: "telephoneNumber", FieldManager: "manager",
			"displayName": "displayName", "title": "title", "employeeNumber": "employeeNumber",
			"department": "departmentNumber", "preferredLanguage": "preferredLanguage",
		},
		UserFilter:  "(objectClass=inetOrgPerson)",
		GroupFilter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
		GroupName:   "cn",
		Members:     []string{"member", "uniqueMember"},
		ChangeAttr:  "modifyTimestamp",
	},
	FlavorActiveDirectory: {
		Map: map[string]string{
			FieldExternalID: "objectGUID", FieldUserName: "sAMAccountName", FieldGivenName: "givenName", FieldFamilyName: "sn",
			FieldEmail: "mail", FieldPhone: "telephoneNumber", FieldActive: "userAccountControl", FieldManager: "manager",
			"displayName": "displayName", "title": "title", "employeeNumber": "employeeID", "department": "department",
			"organization": "company",
		},
		UserFilter:  "(&(objectCategory=person)(objectClass=user))",
		GroupFilter: "(objectClass=group)",
		GroupName:   "cn",
		Members:     []string{"member"},
		ChangeAttr:  "uSNChanged",
	},
}

// field is one entry of a compiled map: a directory field or an attribute
// path, and the LDAP attribute that fills it.
type field struct {
	name      string
	ldap      string
	attribute bool
	// multi marks a path that takes all the values of the LDAP attribute
	// (attrs.Path.Multi); binary marks x509Certificates, whose DER values
	// SCIM carries in base64.
	multi, binary bool
}

// mapping is a flavor's map with the configuration's entries laid over it.
type mapping struct {
	fields     []field
	groupName  string
	members    []string
	changeAttr string
	check      sources.AttributeCheck
}

// compileMapping lays m over the flavor's map: an entry replaces the
// default of its field, an empty value removes it.
func compileMapping(flavor string, m map[string]string, model *attrs.Model, check sources.AttributeCheck) (*mapping, error) {
	fl, ok := Flavors[flavor]
	if !ok {
		return nil, fmt.Errorf("flavor %q is not one of %s and %s", flavor, FlavorActiveDirectory, FlavorOpenLDAP)
	}
	merged := maps.Clone(fl.Map)
	for k, v := range m {
		// A field named in another case replaces the default of that field.
		for d := range merged {
			if strings.EqualFold(d, k) {
				delete(merged, d)
			}
		}
		merged[k] = strings.TrimSpace(v)
	}
	mp := &mapping{groupName: fl.GroupName, members: fl.Members, changeAttr: fl.ChangeAttr, check: check}
	var bad []string
	for _, name := range slices.Sorted(maps.Keys(merged)) {
		a := merged[name]
		if a == "" {
			continue
		}
		if !validAttrName(a) {
			bad = append(bad, fmt.Sprintf("map %s: %q is not an LDAP attribute name", name, a))
			continue
		}
		if IsSecret(a) {
			bad = append(bad, fmt.Sprintf("map %s: %s holds passwords, which roster never reads", name, a))
			continue
		}
		f := field{name: name, ldap: a}
		if i := slices.IndexFunc(Fields, func(s string) bool { return strings.EqualFold(s, name) }); i >= 0 {
			f.name = Fields[i]
		} else {
			p, err := attrs.ParsePath(name, model)
			if err != nil {
				bad = append(bad, fmt.Sprintf("map %s: %v", name, err))
				continue
			}
			f.attribute, f.multi = true, p.Multi()
			f.binary = strings.HasPrefix(strings.ToLower(name), "x509certificates")
		}
		mp.fields = append(mp.fields, f)
	}
	for _, need := range []string{FieldExternalID, FieldUserName} {
		if !slices.ContainsFunc(mp.fields, func(f field) bool { return f.name == need }) {
			bad = append(bad, fmt.Sprintf("map %s: an LDAP attribute is required", need))
		}
	}
	// Directory fields first, in their order; then attribute paths.
	slices.SortStableFunc(mp.fields, func(a, b field) int { return fieldRank(a) - fieldRank(b) })
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return mp, nil
}

func fieldRank(f field) int {
	if f.attribute {
		return len(Fields)
	}
	return slices.Index(Fields, f.name)
}

// validAttrName accepts an attribute description's name: a descriptor
// (letters, digits, hyphens) or a numeric OID.
func validAttrName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(sources.IsASCIIAlnum(rune(c)) || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// userAttributes are the LDAP attributes a user search asks for.
func (m *mapping) userAttributes(extra ...string) []string {
	var out []string
	for _, f := range m.fields {
		if !slices.ContainsFunc(out, func(s string) bool { return strings.EqualFold(s, f.ldap) }) {
			out = append(out, f.ldap)
		}
	}
	return append(out, extra...)
}

// groupAttributes are the LDAP attributes a group search asks for.
func (m *mapping) groupAttributes() []string {
	return append([]string{m.groupName}, m.members...)
}

// builder turns entries into records, users first, then groups, and
// collects every problem. Memory holds the records and each group's
// member DNs, not the entries.
type builder struct {
	source string
	m      *mapping
	recs   []sources.Record
	// n counts the users read.
	n int
	// index, when set, keeps what Index holds instead of the records
	// (Options.Index).
	index *Index
	// byDN maps a user's DN to its record index.
	byDN     map[dnKey]int32
	managers []dnKey  // by record index: the manager's DN (zero: none)
	entryDN  []string // by record index: the entry's DN as read
	// later, when set, leaves entryDN empty: a read that keeps an index
	// names the first entry of a duplicate id or login from its LDIF
	// afterwards (nameFirsts), and firsts are the errors to complete.
	later  bool
	firsts []first
	warned map[string]bool
	ids    map[string]int
	// logins maps the digest of each login's fold key (as keyOf digests
	// DNs) to its line.
	logins map[dnKey]int
	errs   []sources.FieldError

	groups      []group
	groupByDN   map[dnKey]int
	groupByName map[string]int
	warnings    []string

	// partial marks a changed-only read.
	partial bool
}

type group struct {
	dn, name string
	members  []dnKey
}

func newBuilder(source string, m *mapping) *builder {
	return &builder{source: source, m: m, byDN: map[dnKey]int32{}, ids: map[string]int{}, logins: map[dnKey]int{},
		groupByDN: map[dnKey]int{}, groupByName: map[string]int{}}
}

// dnKey identifies a DN: the first 16 bytes of the SHA-256 of its normal
// form (normDN). The read indexes every user and group by DN and keeps
// every manager's and member's DN until it resolves them; 16 bytes each
// instead of the DN's text (some 60) is a fifth of what the read holds
// besides the records, and two DNs that differ share a key with a
// probability of 2^-128 per pair, which no directory comes near.
type dnKey [16]byte

func keyOf(dn string) dnKey {
	sum := sha256.Sum256([]byte(normDN(dn)))
	return dnKey(sum[:16])
}

// normDN is the key of a DN: its RFC 4514 normal form, case-folded. A DN
// that does not parse is its own key, lower-cased.
func normDN(dn string) string {
	d, err := goldap.ParseDN(dn)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(dn))
	}
	return strings.ToLower(d.String())
}

func (b *builder) fail(line int, dn, field, format string, args ...any) {
	msg := fmt.Sprintf("ldap source %s: entry %q (%s): ", b.source, dn, field) + fmt.Sprintf(format, args...)
	b.errs = append(b.errs, sources.FieldError{Line: line, Field: field, Message: msg})
}

func (b *builder) warn(format string, args ...any) {
	b.warnings = append(b.warnings, fmt.Sprintf(format, args...))
}

// add takes one entry of a search.
func (b *builder) add(kind Kind, e *Entry) {
	if kind == KindGroup {
		b.addGroup(e)
		return
	}
	b.addUser(e)
}

func (b *builder) addUser(e *Entry) {
	b.n++
	rec, manager := b.user(e, b.n)
	if b.index == nil {
		b.recs = append(b.recs, rec)
	}
	b.managers = append(b.managers, manager)
	b.byDN[keyOf(e.DN)] = int32(b.n - 1)
	if !b.later {
		b.entryDN = append(b.entryDN, e.DN)
	}
}

// user maps a user entry, the line'th, checking its values (and, while
// the builder keeps ids and logins, that they are unique), and returns
// its record and its manager's DN key (zero: none).
func (b *builder) user(e *Entry, line int) (sources.Record, dnKey) {
	rec := sources.Record{Line: line}
	var manager dnKey
	for _, f := range b.m.fields {
		vals := e.Values(f.ldap)
		if f.name == FieldExternalID && strings.EqualFold(f.ldap, "objectGUID") {
			rec.ExternalID = b.guid(line, e.DN, vals)
			b.uniqueID(line, e.DN, rec.ExternalID, f)
			continue
		}
		if f.multi {
			rec.Attributes = b.multi(line, e.DN, f, vals, rec.Attributes)
			continue
		}
		if f.binary && len(vals) > 0 && !utf8.Valid(vals[0]) {
			vals = [][]byte{[]byte(base64.StdEncoding.EncodeToString(vals[0]))}
		}
		s, ok := b.text(line, e.DN, f, vals)
		if !ok {
			continue
		}
		if f.attribute {
			// An absent or empty value is left out: a snapshot leaves its
			// path unassigned either way, and the read holds every record
			// (a slot each for the flavor's five default paths was a third
			// of a record's memory).
			if s == "" {
				continue
			}
			if why := b.m.check.Check(f.name, s); why != "" {
				b.fail(line, e.DN, f.name, "%s %s", sources.QuoteValue(s), why)
				continue
			}
			rec.Attributes = append(rec.Attributes, sources.Attribute{Path: f.name, Value: s})
			continue
		}
		switch f.name {
		case FieldExternalID:
			rec.ExternalID = s
			b.uniqueID(line, e.DN, s, f)
		case FieldUserName:
			rec.UserName = s
			key := dnKey{}
			if b.logins != nil {
				sum := sha256.Sum256([]byte(sources.FoldKey(s)))
				key = dnKey(sum[:16])
			}
			if s == "" {
				b.fail(line, e.DN, f.name, "the entry has no %s, the login of its user", f.ldap)
			} else if why := sources.LoginProblem(s); why != "" {
				b.fail(line, e.DN, f.name, "%s %s", sources.QuoteValue(s), why)
			} else if b.logins == nil {
				// A second pass: the first checked.
			} else if first, dup := b.logins[key]; dup {
				b.fail(line, e.DN, f.name, "the login %s is already the login of entry %q (login names are compared without regard to case)",
					sources.QuoteValue(s), b.dnOf(first))
			} else {
				b.logins[key] = line
			}
		case FieldGivenName:
			rec.GivenName = s
		case FieldFamilyName:
			rec.FamilyName = s
		case FieldEmail:
			if s != "" && !sources.ValidEmail(s) {
				b.fail(line, e.DN, f.name, "%s is not a valid e-mail address", sources.QuoteValue(s))
			}
			rec.Email = s
		case FieldPhone:
			rec.Phone = s
		case FieldActive:
			rec.Active = b.active(line, e.DN, f, s)
		case FieldManager:
			if s != "" {
				manager = keyOf(s)
			}
		}
	}
	return rec, manager
}

// multi appends to attributes a value for each of the LDAP attribute's
// values: the path takes them all (sources.Attribute). The values of an
// LDAP attribute are a set whose order a server need not keep (RFC 4511
// §4.1.7), so they go sorted: a read in another order changes nothing.
// An entry without the attribute gives none, which leaves the path
// unassigned.
func (b *builder) multi(line int, dn string, f field, vals [][]byte, attributes []sources.Attribute) []sources.Attribute {
	n := len(attributes)
	for _, v := range vals {
		if f.binary && !utf8.Valid(v) {
			v = []byte(base64.StdEncoding.EncodeToString(v))
		}
		s, ok := b.text(line, dn, f, [][]byte{v})
		if !ok || s == "" {
			continue
		}
		if why := b.m.check.Check(f.name, s); why != "" {
			b.fail(line, dn, f.name, "%s %s", sources.QuoteValue(s), why)
			continue
		}
		attributes = append(attributes, sources.Attribute{Path: f.name, Value: s})
	}
	slices.SortFunc(attributes[n:], func(a, b sources.Attribute) int { return strings.Compare(a.Value, b.Value) })
	return attributes
}

// first is an error naming the first entry of a duplicate, whose DN a
// read that keeps an index finds later.
type first struct{ err, line int }

// dnOf is the DN of record line; while DNs are found later, a stand-in
// that nameFirsts replaces in the error about to be added.
func (b *builder) dnOf(line int) string {
	if b.later {
		b.firsts = append(b.firsts, first{err: len(b.errs), line: line})
		return firstStandIn(line)
	}
	return b.entryDN[line-1]
}

func firstStandIn(line int) string { return fmt.Sprintf("\x00entry %d\x00", line) }

// nameFirsts completes the errors that name the first entry of a
// duplicate with its DN, from raw, the LDIF of the read.
func (b *builder) nameFirsts(raw io.Reader) error {
	if len(b.firsts) == 0 {
		return nil
	}
	want := map[int]string{}
	for _, f := range b.firsts {
		want[f.line] = ""
	}
	line := 0
	err := ReadLDIF(raw, func(kind Kind, e *Entry) error {
		if kind != KindUser {
			return errStop
		}
		line++
		if _, ok := want[line]; ok {
			want[line] = e.DN
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	for _, f := range b.firsts {
		m := &b.errs[f.err].Message
		*m = strings.Replace(*m, fmt.Sprintf("%q", firstStandIn(f.line)), fmt.Sprintf("%q", want[f.line]), 1)
	}
	return nil
}

func (b *builder) uniqueID(line int, dn, id string, f field) {
	if id == "" || b.ids == nil {
		return
	}
	if first, dup := b.ids[id]; dup {
		b.fail(line, dn, f.name, "%s %s is already the id of entry %q", f.ldap, sources.QuoteValue(id), b.dnOf(first))
		return
	}
	b.ids[id] = line
}

// guid renders Active Directory's binary objectGUID as the canonical UUID
// string: its first three fields are little-endian.
func (b *builder) guid(line int, dn string, vals [][]byte) string {
	if len(vals) == 0 || len(vals[0]) == 0 {
		b.fail(line, dn, FieldExternalID, "the entry has no objectGUID")
		return ""
	}
	g := vals[0]
	if len(g) != 16 {
		b.fail(line, dn, FieldExternalID, "the objectGUID is not readable: it holds %d bytes, not 16", len(g))
		return ""
	}
	return FormatGUID(g)
}

// FormatGUID renders a 16-byte Microsoft GUID as a UUID string.
func FormatGUID(g []byte) string {
	o := []byte{g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6]}
	o = append(o, g[8:16]...)
	h := hex.EncodeToString(o)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// text turns an attribute's first value into trimmed text and checks its
// characters; a second value is named in a warning, once per field.
func (b *builder) text(line int, dn string, f field, vals [][]byte) (string, bool) {
	if len(vals) == 0 {
		if f.name == FieldExternalID {
			b.fail(line, dn, f.name, "the entry has no %s, the id of its user", f.ldap)
			return "", false
		}
		return "", true
	}
	v := vals[0]
	if !utf8.Valid(v) {
		b.fail(line, dn, f.name, "the value of %s is not valid UTF-8 text", f.ldap)
		return "", false
	}
	s := strings.TrimSpace(string(v))
	if r, bad := sources.ForbiddenRune(s); bad {
		b.fail(line, dn, f.name, "the value of %s %s contains the control character U+%04X", f.ldap, sources.QuoteValue(s), r)
		return "", false
	}
	if len(vals) > 1 && f.name != FieldManager {
		b.warnOnce(f, fmt.Sprintf("ldap source %s: entry %q: %s has %d values; %s takes the first", b.source, dn, f.ldap, len(vals), f.name))
	}
	return s, true
}

func (b *builder) warnOnce(f field, msg string) {
	key := "multi:" + f.name
	if b.warned == nil {
		b.warned = map[string]bool{}
	}
	if !b.warned[key] {
		b.warned[key] = true
		b.warnings = append(b.warnings, msg+" (reported for the first entry only)")
	}
}

// active reads userAccountControl (bit 2, ACCOUNTDISABLE, means
// inactive) or an LDAP boolean.
func (b *builder) active(line int, dn string, f field, s string) *bool {
	if s == "" {
		return nil
	}
	if strings.EqualFold(f.ldap, "userAccountControl") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.fail(line, dn, f.name, "userAccountControl %s is not a number", sources.QuoteValue(s))
			return nil
		}
		on := uint32(n)&0x2 == 0
		return &on
	}
	switch strings.ToLower(s) {
	case "true", "1", "yes":
		on := true
		return &on
	case "false", "0", "no":
		off := false
		return &off
	}
	b.fail(line, dn, f.name, "%s %s is not TRUE or FALSE", f.ldap, sources.QuoteValue(s))
	return nil
}

func (b *builder) addGroup(e *Entry) {
	vals := e.Values(b.m.groupName)
	name := ""
	if len(vals) > 0 && utf8.Valid(vals[0]) {
		name = strings.TrimSpace(string(vals[0]))
	}
	if name == "" {
		b.errs = append(b.errs, sources.FieldError{Field: "group", Message: fmt.Sprintf(
			"ldap source %s: group entry %q (group): it has no %s to name the group", b.source, e.DN, b.m.groupName)})
		return
	}
	if r, bad := sources.ForbiddenRune(name); bad {
		b.errs = append(b.errs, sources.FieldError{Field: "group", Message: fmt.Sprintf(
			"ldap source %s: group entry %q (group): its name %s contains the control character U+%04X", b.source, e.DN, sources.QuoteValue(name), r)})
		return
	}
	key := strings.ToLower(name)
	if i, dup := b.groupByName[key]; dup {
		b.errs = append(b.errs, sources.FieldError{Field: "group", Message: fmt.Sprintf(
			"ldap source %s: group entry %q (group): the name %s is already the name of group entry %q; group names of a source are unique",
			b.source, e.DN, sources.QuoteValue(name), b.groups[i].dn)})
		return
	}
	g := group{dn: e.DN, name: name}
	for _, m := range b.m.members {
		for _, v := range e.Values(m) {
			k := keyOf(string(v))
			if b.index != nil {
				// Every user is read before the first group: a user
				// member is known now, and only the pair is kept.
				if i, ok := b.byDN[k]; ok {
					b.index.member(int(i), len(b.groups))
					continue
				}
			}
			g.members = append(g.members, k)
		}
	}
	b.groupByName[key] = len(b.groups)
	b.groupByDN[keyOf(e.DN)] = len(b.groups)
	b.groups = append(b.groups, g)
}

// finish resolves memberships, nested groups and managers.
func (b *builder) finish() *Result {
	res := &Result{}
	outside := 0
	for _, g := range b.groups {
		res.Groups = append(res.Groups, g.name)
		for _, m := range g.members {
			if i, ok := b.byDN[m]; ok {
				if !slices.Contains(b.recs[i].Groups, g.name) {
					b.recs[i].Groups = append(b.recs[i].Groups, g.name)
				}
				continue
			}
			if j, ok := b.groupByDN[m]; ok {
				res.Nested = append(res.Nested, Nesting{Child: b.groups[j].name, Parent: g.name})
				continue
			}
			outside++
		}
	}
	b.checkCycles(res.Nested)
	if outside > 0 && !b.partial {
		b.warn("ldap source %s: %d group members are neither users nor groups this source read (outside base_dn or its filters); they are left out", b.source, outside)
	}
	if b.index != nil {
		b.finishIndex(res)
		return res
	}
	unknown := 0
	for i, m := range b.managers {
		if m == (dnKey{}) {
			continue
		}
		if j, ok := b.byDN[m]; ok && b.recs[j].ExternalID != "" {
			b.recs[i].Manager = b.recs[j].ExternalID
			continue
		}
		if b.partial {
			// The manager did not change, so was not read: the user keeps
			// the manager the directory holds.
			b.recs[i].Manager = sources.KeepManager
			continue
		}
		unknown++
	}
	b.warnManagers(unknown)
	res.Records = b.recs
	res.Warnings = b.warnings
	res.Partial = b.partial
	return res
}

func (b *builder) warnManagers(unknown int) {
	if unknown > 0 {
		b.warn("ldap source %s: the manager of %d users is not a user this source read; they have no manager", b.source, unknown)
	}
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// checkCycles reports groups that are members of themselves through other
// groups: SCIM groups may not nest in a circle.
func (b *builder) checkCycles(nested []Nesting) {
	parents := map[string][]string{}
	for _, n := range nested {
		parents[n.Child] = append(parents[n.Child], n.Parent)
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(g string)
	visit = func(g string) {
		state[g] = onPath
		path = append(path, g)
		for _, p := range parents[g] {
			switch state[p] {
			case onPath:
				i := slices.Index(path, p)
				cycle := append(slices.Clone(path[i:]), p)
				b.errs = append(b.errs, sources.FieldError{Field: "group", Message: fmt.Sprintf(
					"ldap source %s: group entry %q (group): the groups nest in a circle (%s); SCIM groups cannot",
					b.source, b.groups[b.groupByName[strings.ToLower(p)]].dn, strings.Join(cycle, " is a member of "))})
			case unseen:
				visit(p)
			}
		}
		path = path[:len(path)-1]
		state[g] = done
	}
	for _, g := range b.groups {
		if state[g.name] == unseen {
			visit(g.name)
		}
	}
}
