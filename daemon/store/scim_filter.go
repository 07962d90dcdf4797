package store

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
)

// This file turns a SCIM filter AST into a parameterised SQL condition
// that SQLite and PostgreSQL both evaluate. Values only ever travel as
// bind parameters; attribute names a client writes never reach the SQL
// text: they are looked up in a fixed table (scimUsers, scimGroups) whose
// entries are SQL fragments written here, or, for custom attributes, in
// the User resource type's schema, whose names the configuration declared
// and scim_custom.go checks again (RFC 7643 ATTRNAME) before quoting them
// in a JSON path; a name neither has is a *scim.FilterError.
//
// The rules, per RFC 7643 §2 and §7 and the schema in scim/schema:
//
//   - userName compares the lower-cased login key that the unique index
//     holds, with the value keyed the same way (reconcile.Key: lower-cased
//     and in normalization form C), so
//     userName eq "x" is one index lookup, and is case-insensitive
//     beyond ASCII on both databases.
//   - Other case-insensitive strings compare lower(column) with
//     lower(value). SQLite's lower() folds ASCII letters only, so on
//     SQLite "Ä" and "ä" differ there; PostgreSQL folds all of Unicode.
//   - Case-exact strings (id, externalId and the ids in references)
//     compare as they are. SQLite's LIKE ignores ASCII case, so co, sw
//     and ew on them use instr and substr there.
//   - co, sw and ew use LIKE with %, _ and \ in the value escaped
//     (ESCAPE '\'); an empty value matches every value.
//   - gt, ge, lt and le on strings order by code point (COLLATE "C" on
//     PostgreSQL), whatever the database's locale.
//   - dateTime values are parsed (scim.ParseDateTime) and compared as
//     instants: on PostgreSQL as timestamptz; on SQLite, where the driver
//     stores RFC 3339 text whose lexical order is not time order
//     ("…05Z" sorts after "…05.5Z"), through julianday() on both sides,
//     which is exact to the millisecond.
//   - pr is "has a non-empty value"; eq null and ne null are "not pr"
//     and "pr".
//   - Multi-valued attributes (emails, phoneNumbers, groups, members)
//     become subqueries whose cost is bounded by one index probe per
//     resource. On PostgreSQL that is a correlated EXISTS (SELECT ...
//     WHERE owner = id AND ...): an uncorrelated id IN (SELECT ...) under
//     OR or NOT becomes a SubPlan that, once its rows outgrow work_mem,
//     is re-read for every resource (quadratic: minutes on 100k users),
//     while EXISTS is a semi- or anti-join, or one probe of the owner
//     index (user_emails_user, memberships_member) per row. SQLite keeps
//     id IN (SELECT ...): it builds the subquery's result once into an
//     ephemeral index under any operator, and, having no EXISTS-to-IN
//     rewrite, could not start from the values' index with EXISTS
//     (emails.value eq "x" would scan every user). Terms on the same
//     multi-valued attribute joined by or (and negated terms joined by
//     and) share one subquery, so 300 OR'd members.value co terms read
//     the memberships once, not 300 times. A value filter such as
//     emails[type eq "work" and value ew "@example.com"] needs one value
//     that meets both conditions. A multi-valued or complex attribute
//     compared without a sub-attribute compares its "value".
//   - Every expression is NOT NULL (scalar subqueries are wrapped in
//     COALESCE, and the ids IN subqueries return are never NULL),
//     so "not" never meets SQL's unknown, and the filter can be put in
//     negation normal form: not is pushed down to the terms (De Morgan),
//     and a double negation vanishes.
//   - The SQL nests no deeper than the filter's own alternation of and
//     and or: chains of one operator become one flat list, OR'd eq terms
//     on one column become col IN (?, ?, ...), and the deepest operand of
//     a list comes first, so SQLite's parser, whose stack holds about 100
//     entries, parses every filter within the published limits (deep
//     right-nested SQL overflowed it: "parser stack overflow").

// scimKind is how a column compares.
type scimKind uint8

const (
	scimText    scimKind = iota + 1 // case-insensitive string
	scimExact                       // case-exact string
	scimKey                         // column holding a lower-cased key (userName)
	scimBool                        // boolean
	scimTime                        // dateTime
	scimVersion                     // meta.version: an integer column shown as W/"n"
	scimConst                       // a constant string, such as meta.resourceType
	scimNone                        // present in the schema, but not filterable
	scimNumber                      // integer or decimal (custom attributes)
)

type scimColumn struct {
	kind  scimKind
	sql   string // NOT NULL expression over the resource row (or the multi's rows)
	value string // the constant of a scimConst
	exact bool   // a scimConst compares case-exactly
	// json is the key of a value in the JSON document of (the users'
	// attrs column, or one element of an array in it): the SQL differs
	// between the databases, so the compiler writes it (scimCompiler.sql).
	json, of string
	// byKey marks the users' external_id, whose eq is looked up on the
	// indexes that hold it (see externalIDEq).
	byKey bool
	// ctype is the type of a custom attribute (scim_custom.go), ckey its
	// key in the document's "custom" object, and celem marks one value x
	// of a multi-valued one.
	ctype schema.Type
	ckey  string
	celem bool
}

// scimAttr is how one top-level attribute maps to SQL: a column, a
// single-valued complex attribute, or a multi-valued one.
type scimAttr struct {
	col *scimColumn
	// subs are the sub-attributes of a complex attribute, by lower-cased
	// name; present is its "pr" condition.
	subs    map[string]scimColumn
	present string
	// multi marks a multi-valued attribute: the resource's key column is
	// IN the subquery sel, narrowed by where (may be empty) and the
	// condition on the values.
	multi      bool
	key        string
	sel, where string
	// array is the key of a multi-valued attribute held as a JSON array
	// in the users' attrs document; its elements are "x.value".
	array string
	// custom is the key of a multi-valued custom attribute, whose values
	// are x.value too (see customElements).
	custom string
	// from and corr name the rows of a table-backed multi-valued
	// attribute that belong to one resource, and primary orders them
	// primary first, for sorting by the attribute (RFC 7644 §3.4.2.3).
	from, corr, primary string
}

// in is the condition of a multi-valued attribute: some value meets cond
// (any value, when cond is empty). On PostgreSQL it is a correlated
// EXISTS on the owner column, the first column sel selects.
func (a scimAttr) in(cond string, pg bool) string {
	w := a.where
	switch {
	case w == "":
		w = cond
	case cond != "":
		w += " AND " + cond
	}
	if pg {
		owner, _, _ := strings.Cut(strings.TrimPrefix(a.sel, "SELECT "), " ")
		if w == "" {
			return "EXISTS (" + a.sel + " WHERE " + owner + " = " + a.key + ")"
		}
		return "EXISTS (" + a.sel + " WHERE " + owner + " = " + a.key + " AND " + w + ")"
	}
	if w == "" {
		return a.key + " IN (" + a.sel + ")"
	}
	return a.key + " IN (" + a.sel + " WHERE " + w + ")"
}

// scimResource is the SQL side of a resource type.
type scimResource struct {
	rt    schema.ResourceType
	alias string
	table string
	// base is the condition every row of a listing meets.
	base  string
	attrs map[string]scimAttr // by scimAttrKey
	sorts map[string]scimSort // by scim.Sort* constant
}

// scimAttrKey is the map key of a top-level attribute: its lower-cased name,
// qualified with its schema URN for extension attributes.
func scimAttrKey(rt schema.ResourceType, owner, name string) string {
	if owner == rt.Schema {
		return strings.ToLower(name)
	}
	return strings.ToLower(owner + ":" + name)
}

func scimCol(k scimKind, sql string) *scimColumn { return &scimColumn{kind: k, sql: sql} }

func scimMeta(alias, resourceType string) scimAttr {
	return scimAttr{
		subs: map[string]scimColumn{
			"resourcetype": {kind: scimConst, value: resourceType, exact: true},
			"created":      {kind: scimTime, sql: alias + ".created_at"},
			"lastmodified": {kind: scimTime, sql: alias + ".updated_at"},
			"location":     {kind: scimNone},
			"version":      {kind: scimVersion, sql: alias + ".version"},
		},
		present: "1=1",
	}
}

// scimDisplay is the display name of a user row: displayName, or the login
// when it has none.
func scimDisplay(alias string) string {
	return "COALESCE(NULLIF(" + alias + ".display_name, ''), " + alias + ".user_name)"
}

var scimUsers = &scimResource{
	rt:    schema.Users,
	alias: "u",
	table: "users u",
	base:  "u.state <> 'deleted'",
	attrs: map[string]scimAttr{
		"id":          {col: scimCol(scimExact, "u.id")},
		"externalid":  {col: &scimColumn{kind: scimExact, sql: "u.external_id", byKey: true}},
		"username":    {col: scimCol(scimKey, "u.user_name_key")},
		"displayname": {col: scimCol(scimText, "u.display_name")},
		"active":      {col: scimCol(scimBool, "u.active")},
		"name": {
			subs: map[string]scimColumn{
				"givenname":  {kind: scimText, sql: "u.given_name"},
				"familyname": {kind: scimText, sql: "u.family_name"},
				// As the client wrote it, or scim.FormattedName in SQL.
				"formatted":       {kind: scimText, json: "name.formatted", of: "u.attrs", sql: "trim(u.given_name || ' ' || u.family_name)"},
				"middlename":      {kind: scimText, json: "name.middleName", of: "u.attrs"},
				"honorificprefix": {kind: scimText, json: "name.honorificPrefix", of: "u.attrs"},
				"honorificsuffix": {kind: scimText, json: "name.honorificSuffix", of: "u.attrs"},
			},
		},
		"emails": {
			multi: true, key: "u.id", sel: "SELECT e.user_id FROM user_emails e",
			from: "user_emails e", corr: "e.user_id = u.id", primary: `e."primary"`,
			subs: map[string]scimColumn{
				"value":   {kind: scimText, sql: "e.value"},
				"display": {kind: scimText, sql: "e.display"},
				"type":    {kind: scimText, sql: "e.type"},
				"primary": {kind: scimBool, sql: `e."primary"`},
			},
		},
		"phonenumbers": {
			multi: true, key: "u.id", sel: "SELECT p.user_id FROM user_phone_numbers p",
			from: "user_phone_numbers p", corr: "p.user_id = u.id", primary: `p."primary"`,
			subs: map[string]scimColumn{
				"value":   {kind: scimText, sql: "p.value"},
				"display": {kind: scimText, sql: "p.display"},
				"type":    {kind: scimText, sql: "p.type"},
				"primary": {kind: scimBool, sql: `p."primary"`},
			},
		},
		"ims":              scimArray("ims", "value", "display", "type"),
		"photos":           scimArray("photos", "value", "display", "type"),
		"entitlements":     scimArray("entitlements", "value", "display", "type"),
		"roles":            scimArray("roles", "value", "display", "type"),
		"x509certificates": scimArray("x509Certificates", "value", "display", "type"),
		"addresses": scimArray("addresses", "formatted", "streetAddress", "locality", "region", "postalCode",
			"country", "type"),
		"nickname":          {col: scimJSON("nickName")},
		"profileurl":        {col: scimJSON("profileUrl")},
		"title":             {col: scimJSON("title")},
		"usertype":          {col: scimJSON("userType")},
		"preferredlanguage": {col: scimJSON("preferredLanguage")},
		"locale":            {col: scimJSON("locale")},
		"timezone":          {col: scimJSON("timezone")},
		scimAttrKey(schema.Users, schema.EnterpriseURN, "costCenter"):   {col: scimJSON("costCenter")},
		scimAttrKey(schema.Users, schema.EnterpriseURN, "organization"): {col: scimJSON("organization")},
		scimAttrKey(schema.Users, schema.EnterpriseURN, "division"):     {col: scimJSON("division")},
		"groups": {
			multi: true, key: "u.id", sel: "SELECT m.member_id FROM memberships m JOIN groups gr ON gr.id = m.group_id",
			where: "m.member_type = 'User'",
			subs: map[string]scimColumn{
				"value":   {kind: scimExact, sql: "m.group_id"},
				"display": {kind: scimText, sql: "gr.display_name"},
				"type":    {kind: scimConst, value: "direct"},
				"$ref":    {kind: scimNone},
			},
		},
		scimAttrKey(schema.Users, schema.EnterpriseURN, "employeeNumber"): {col: scimCol(scimText, "u.employee_number")},
		scimAttrKey(schema.Users, schema.EnterpriseURN, "department"):     {col: scimCol(scimText, "u.department")},
		scimAttrKey(schema.Users, schema.EnterpriseURN, "manager"): {
			subs: map[string]scimColumn{
				"value": {kind: scimExact, sql: "u.manager"},
				"displayname": {kind: scimText, sql: "COALESCE((SELECT " + scimDisplay("mf") +
					" FROM users mf WHERE mf.id = u.manager AND mf.state <> 'deleted'), '')"},
				"$ref": {kind: scimNone},
			},
			present: "u.manager <> ''",
		},
		"meta": scimMeta("u", "User"),
	},
	sorts: map[string]scimSort{
		scim.SortUserName:     {expr: "u.user_name_key", kind: scimKeyText},
		scim.SortDisplayName:  {expr: "lower(u.display_name)", kind: scimKeyText},
		scim.SortGivenName:    {expr: "lower(u.given_name)", kind: scimKeyText},
		scim.SortFamilyName:   {expr: "lower(u.family_name)", kind: scimKeyText},
		scim.SortExternalID:   {expr: "u.external_id", kind: scimKeyText},
		scim.SortCreated:      {expr: "u.created_at", kind: scimKeyTime},
		scim.SortLastModified: {expr: "u.updated_at", kind: scimKeyTime},
		// RFC 7644 §3.4.2.3: a multi-valued attribute sorts by its
		// primary value, or else its first.
		scim.SortEmails: {expr: `COALESCE((SELECT lower(se.value) FROM user_emails se WHERE se.user_id = u.id
			ORDER BY se."primary" DESC, se.value LIMIT 1), '')`, kind: scimKeyText},
	},
}

// scimJSON is a string attribute held in the users' attrs document.
func scimJSON(key string) *scimColumn {
	return &scimColumn{kind: scimText, json: key, of: "u.attrs"}
}

// scimArray is a multi-valued attribute held as a JSON array in the
// users' attrs document, with its string sub-attributes and primary.
func scimArray(key string, subs ...string) scimAttr {
	a := scimAttr{multi: true, array: key, subs: map[string]scimColumn{
		"primary": {kind: scimBool, json: "primary", of: "x.value"},
	}}
	for _, sub := range subs {
		a.subs[strings.ToLower(sub)] = scimColumn{kind: scimText, json: sub, of: "x.value"}
	}
	return a
}

// scimMemberLive keeps memberships of deleted users out, should one outlive
// its user.
const scimMemberLive = "(m.member_type <> 'User' OR EXISTS (SELECT 1 FROM users ml WHERE ml.id = m.member_id AND ml.state <> 'deleted'))"

var scimGroups = &scimResource{
	rt:    schema.Groups,
	alias: "g",
	table: "groups g",
	base:  "1=1",
	attrs: map[string]scimAttr{
		"id":          {col: scimCol(scimExact, "g.id")},
		"externalid":  {col: scimCol(scimExact, "g.external_id")},
		"displayname": {col: scimCol(scimText, "g.display_name")},
		"members": {
			multi: true, key: "g.id", sel: "SELECT m.group_id FROM memberships m", where: scimMemberLive,
			subs: map[string]scimColumn{
				"value": {kind: scimExact, sql: "m.member_id"},
				"type":  {kind: scimText, sql: "m.member_type"},
				"display": {kind: scimText, sql: "COALESCE(CASE WHEN m.member_type = 'User' THEN (SELECT " + scimDisplay("md") +
					" FROM users md WHERE md.id = m.member_id) ELSE (SELECT gd.display_name FROM groups gd WHERE gd.id = m.member_id) END, '')"},
				"$ref": {kind: scimNone},
			},
		},
		scimAttrKey(schema.Groups, schema.RosterGroupURN, "owners"): {
			multi: true, key: "g.id",
			sel: "SELECT og.id FROM department_owners o JOIN groups og ON og.source = o.source AND og.external_id = o.dept_uid AND og.keyed " +
				"JOIN users ou ON ou.id = o.user_id",
			where: "ou.state <> 'deleted'",
			subs: map[string]scimColumn{
				"value":   {kind: scimExact, sql: "o.user_id"},
				"display": {kind: scimText, sql: scimDisplay("ou")},
				"$ref":    {kind: scimNone},
			},
		},
		"meta": scimMeta("g", "Group"),
	},
	sorts: map[string]scimSort{
		scim.SortDisplayName:  {expr: "lower(g.display_name)", kind: scimKeyText},
		scim.SortExternalID:   {expr: "g.external_id", kind: scimKeyText},
		scim.SortCreated:      {expr: "g.created_at", kind: scimKeyTime},
		scim.SortLastModified: {expr: "g.updated_at", kind: scimKeyTime},
	},
}

// scimCompiler builds one SQL condition and its arguments, in order.
type scimCompiler struct {
	res  *scimResource
	pg   bool
	args []any
}

func scimFilterErr(format string, args ...any) error {
	return &scim.FilterError{Msg: fmt.Sprintf(format, args...)}
}

func (c *scimCompiler) compile(e filter.Expr) (string, error) { return c.logic(e, nil) }

// scimNode is a filter in negation normal form: a flat and/or list, or a
// term (Compare, Present or ValuePath), possibly negated.
type scimNode struct {
	or   bool // a list: or (true) or and (false)
	kids []*scimNode
	term filter.Expr // a term; nil for a list
	neg  bool        // the term is negated
	// merged are further terms that share term's subquery or IN list
	// (see merge).
	merged []filter.Expr
	need   int // parser stack entries the SQL needs, roughly
}

// norm puts e, negated when neg, in negation normal form with flat lists.
// eq null and ne null become the presence tests they are.
func scimNorm(e filter.Expr, neg bool) *scimNode {
	switch e := e.(type) {
	case *filter.And:
		return scimList(neg, scimNorm(e.Left, neg), scimNorm(e.Right, neg))
	case *filter.Or:
		return scimList(!neg, scimNorm(e.Left, neg), scimNorm(e.Right, neg))
	case *filter.Not:
		return scimNorm(e.X, !neg)
	case *filter.Compare:
		if e.Value.Kind == filter.KindNull && (e.Op == filter.Eq || e.Op == filter.Ne) {
			return &scimNode{term: &filter.Present{Attr: e.Attr}, neg: neg == (e.Op == filter.Ne)}
		}
	}
	return &scimNode{term: e, neg: neg}
}

// scimList joins l and r with or (or is true) or and, splicing in lists
// of the same operator.
func scimList(or bool, l, r *scimNode) *scimNode {
	n := &scimNode{or: or}
	for _, k := range []*scimNode{l, r} {
		if k.term == nil && k.or == or {
			n.kids = append(n.kids, k.kids...)
		} else {
			n.kids = append(n.kids, k)
		}
	}
	return n
}

// logic compiles e, with and, or and not, to SQL that nests no deeper
// than it must (see the file comment).
func (c *scimCompiler) logic(e filter.Expr, scope map[string]scimColumn) (string, error) {
	n := scimNorm(e, false)
	c.merge(n, scope)
	scimNeed(n)
	return c.node(n, scope)
}

// merge lets the terms of a list that can share one subquery or one IN
// list do so: the positive terms of an or list, and the negated terms of
// an and list (not a and not b is not (a or b)).
func (c *scimCompiler) merge(n *scimNode, scope map[string]scimColumn) {
	if n.term != nil {
		return
	}
	at := map[string]*scimNode{}
	kids := n.kids[:0]
	for _, k := range n.kids {
		c.merge(k, scope)
		key := ""
		if k.term != nil && k.neg != n.or {
			key = c.mergeKey(k.term, scope)
		}
		if first := at[key]; key != "" && first != nil {
			first.merged = append(first.merged, k.term)
			continue
		}
		if key != "" {
			at[key] = k
		}
		kids = append(kids, k)
	}
	n.kids = kids
}

// mergeKey names what a term can share with others: the subquery of a
// multi-valued attribute, or the IN list of eq on a string column; ""
// when it shares nothing. Errors are left for node to report.
func (c *scimCompiler) mergeKey(e filter.Expr, scope map[string]scimColumn) string {
	if scope != nil {
		return ""
	}
	var p filter.AttrPath
	switch e := e.(type) {
	case *filter.Compare:
		p = e.Attr
	case *filter.Present:
		p = e.Attr
	case *filter.ValuePath:
		p = e.Attr
	default:
		return ""
	}
	a, err := c.lookup(p)
	if err != nil {
		return ""
	}
	if a.multi {
		// JSON-held attributes have no sel: their array names them.
		return "multi " + a.sel + "|" + a.array + "|" + a.custom
	}
	if col, ok := c.eqColumn(e); ok {
		return "in " + col.sql
	}
	return ""
}

// eqColumn is the string column that e compares with eq, if it does.
func (c *scimCompiler) eqColumn(e filter.Expr) (scimColumn, bool) {
	cmp, ok := e.(*filter.Compare)
	if !ok || cmp.Op != filter.Eq || cmp.Value.Kind != filter.KindString || cmp.Attr.Sub != "" {
		return scimColumn{}, false
	}
	a, err := c.lookup(cmp.Attr)
	if err != nil || a.col == nil {
		return scimColumn{}, false
	}
	switch a.col.kind {
	case scimKey, scimExact, scimText:
		return *a.col, true
	}
	return scimColumn{}, false
}

// scimNeed orders each list's operands deepest first and records what the
// SQL needs of SQLite's parser stack: an operand after the first holds
// the list's earlier operands and operator on the stack while it is
// parsed, the first holds only the parenthesis.
func scimNeed(n *scimNode) int {
	if n.term != nil {
		n.need = 1
		if n.neg {
			n.need = 2
		}
		return n.need
	}
	for _, k := range n.kids {
		scimNeed(k)
	}
	sort.SliceStable(n.kids, func(i, j int) bool { return n.kids[i].need > n.kids[j].need })
	n.need = 0
	for i, k := range n.kids {
		need := k.need
		if i > 0 {
			need += 2
		}
		n.need = max(n.need, need)
	}
	n.need++
	return n.need
}

func (c *scimCompiler) node(n *scimNode, scope map[string]scimColumn) (string, error) {
	if n.term == nil {
		op := " AND "
		if n.or {
			op = " OR "
		}
		parts := make([]string, len(n.kids))
		for i, k := range n.kids {
			x, err := c.node(k, scope)
			if err != nil {
				return "", err
			}
			parts[i] = x
		}
		return "(" + strings.Join(parts, op) + ")", nil
	}
	x, err := c.terms(n, scope)
	if err != nil {
		return "", err
	}
	if n.neg {
		return "NOT (" + x + ")", nil
	}
	return x, nil
}

// terms compiles a term and those merged with it, as their positive
// disjunction: one subquery, or one IN list.
func (c *scimCompiler) terms(n *scimNode, scope map[string]scimColumn) (string, error) {
	if len(n.merged) == 0 {
		return c.expr(n.term, scope)
	}
	all := append([]filter.Expr{n.term}, n.merged...)
	if col, ok := c.eqColumn(n.term); ok {
		vals := make([]string, len(all))
		for i, e := range all {
			s := e.(*filter.Compare).Value.Str
			switch col.kind {
			case scimKey:
				vals[i] = c.arg(reconcile.Key(s))
			case scimText:
				vals[i] = "lower(" + c.text(s) + ")"
			default:
				vals[i] = c.arg(s)
			}
		}
		col.sql = c.sql(col)
		left := col.sql
		if col.kind == scimText {
			left = "lower(" + col.sql + ")"
		}
		// Unassigned values match no comparison, eq "" included.
		return "(" + col.sql + " <> '' AND " + left + " IN (" + strings.Join(vals, ", ") + "))", nil
	}
	var a scimAttr
	conds := make([]string, len(all))
	for i, e := range all {
		cond, multi, err := c.inner(e)
		if err != nil {
			return "", err
		}
		if cond == "" {
			cond = "1=1" // a presence test: any value will do
		}
		a, conds[i] = multi, cond
	}
	return c.in(a, "("+strings.Join(conds, " OR ")+")"), nil
}

// inner is the condition a term on a multi-valued attribute puts on one
// of its values, "" for any value, with the attribute.
func (c *scimCompiler) inner(e filter.Expr) (string, scimAttr, error) {
	switch e := e.(type) {
	case *filter.Present:
		return c.attrInner(e.Attr, nil, func(col scimColumn) (string, error) { return c.present(col), nil }, true)
	case *filter.Compare:
		return c.attrInner(e.Attr, nil, func(col scimColumn) (string, error) { return c.compare(col, e) }, false)
	case *filter.ValuePath:
		a, err := c.lookup(e.Attr)
		if err != nil {
			return "", a, err
		}
		x, err := c.logic(e.Filter, a.subs)
		return "(" + x + ")", a, err
	}
	return "", scimAttr{}, scimFilterErr("unsupported filter node %T", e)
}

// expr compiles a term; inside a value filter, scope holds the
// sub-attributes of the bracketed attribute.
func (c *scimCompiler) expr(e filter.Expr, scope map[string]scimColumn) (string, error) {
	switch e := e.(type) {
	case *filter.And, *filter.Or, *filter.Not:
		return c.logic(e, scope)
	case *filter.Present:
		return c.attrCond(e.Attr, scope, func(col scimColumn) (string, error) { return c.present(col), nil }, true)
	case *filter.Compare:
		if e.Value.Kind == filter.KindNull {
			// eq null: the attribute has no value; ne null: it has one.
			if e.Op != filter.Eq && e.Op != filter.Ne {
				return "", scimFilterErr("null can only be compared with eq and ne")
			}
			cond, err := c.attrCond(e.Attr, scope, func(col scimColumn) (string, error) { return c.present(col), nil }, true)
			if err != nil || e.Op == filter.Ne {
				return cond, err
			}
			return "NOT (" + cond + ")", nil
		}
		return c.attrCond(e.Attr, scope, func(col scimColumn) (string, error) { return c.compare(col, e) }, false)
	case *filter.ValuePath:
		if scope != nil {
			return "", scimFilterErr("value filters cannot be nested")
		}
		a, err := c.lookup(e.Attr)
		if err != nil {
			return "", err
		}
		if a.subs == nil {
			return "", scimFilterErr("%q takes no value filter: it is not a complex attribute", e.Attr.String())
		}
		inner, err := c.logic(e.Filter, a.subs)
		if err != nil {
			return "", err
		}
		if !a.multi {
			return "(" + inner + ")", nil
		}
		return c.in(a, "("+inner+")"), nil
	case nil:
		return "", scimFilterErr("empty filter")
	}
	return "", scimFilterErr("unsupported filter node %T", e)
}

// lookup finds a top-level attribute through the schema, so that names
// match case-insensitively, with or without their schema URN.
func (c *scimCompiler) lookup(p filter.AttrPath) (scimAttr, error) {
	def, owner, ok := c.res.rt.Lookup(p.URN, p.Name, "")
	if !ok {
		return scimAttr{}, scimFilterErr("%s has no attribute %q", c.res.rt.Name, p.String())
	}
	a, ok := c.res.attr(owner, def)
	if !ok {
		return scimAttr{}, scimFilterErr("%q cannot be used in a filter", p.String())
	}
	return a, nil
}

// attr is the SQL side of an attribute the resource type's schema owner
// defines: a fixed one, or a custom one of the users.
func (r *scimResource) attr(owner string, def *schema.Attribute) (scimAttr, bool) {
	if a, ok := r.attrs[scimAttrKey(r.rt, owner, def.Name)]; ok {
		return a, true
	}
	if r.alias != "u" || owner == schema.UserURN || owner == schema.EnterpriseURN {
		return scimAttr{}, false
	}
	return scimCustomAttr(def)
}

// attrCond resolves an attribute path and applies cond to the column it
// names, wrapping it in the subquery of a multi-valued attribute.
// An attribute compared without its sub-attribute compares "value";
// tested for presence, a complex attribute is present when any of its
// sub-attributes is.
func (c *scimCompiler) attrCond(p filter.AttrPath, scope map[string]scimColumn, cond func(scimColumn) (string, error), present bool) (string, error) {
	x, a, err := c.attrInner(p, scope, cond, present)
	if err != nil || !a.multi {
		return x, err
	}
	return c.in(a, x), nil
}

// attrInner is attrCond without the subquery of a multi-valued attribute:
// it returns the condition on one value ("" for any value) and the
// attribute, whose multi field tells whether it needs the subquery.
func (c *scimCompiler) attrInner(p filter.AttrPath, scope map[string]scimColumn, cond func(scimColumn) (string, error), present bool) (string, scimAttr, error) {
	if scope != nil {
		col, ok := scope[strings.ToLower(p.Name)]
		if !ok || p.Sub != "" || p.URN != "" {
			return "", scimAttr{}, scimFilterErr("no sub-attribute %q here", p.String())
		}
		x, err := cond(col)
		return x, scimAttr{}, err
	}
	a, err := c.lookup(p)
	if err != nil {
		return "", a, err
	}
	if a.col != nil {
		if p.Sub != "" {
			return "", a, scimFilterErr("%q has no sub-attributes", p.Name)
		}
		x, err := cond(*a.col)
		return x, a, err
	}
	sub := strings.ToLower(p.Sub)
	if sub == "" && present {
		if a.custom != "" {
			// Present when a value of the declared type is.
			return c.customPresent(a.subs["value"]), a, nil
		}
		if a.multi {
			return "", a, nil
		}
		if a.present == "" {
			// Present when any of its sub-attributes is.
			var conds []string
			for _, col := range a.subs {
				conds = append(conds, c.present(col))
			}
			slices.Sort(conds)
			return "(" + strings.Join(conds, " OR ") + ")", a, nil
		}
		return a.present, a, nil
	}
	if sub == "" {
		sub = "value"
	}
	col, ok := a.subs[sub]
	if !ok {
		if p.Sub == "" {
			return "", a, scimFilterErr("%q is a complex attribute; compare one of its sub-attributes", p.String())
		}
		return "", a, scimFilterErr("%s has no attribute %q", c.res.rt.Name, p.String())
	}
	inner, err := cond(col)
	return inner, a, err
}

// in is the condition of a multi-valued attribute: some value meets cond
// (any value, when cond is empty).
func (c *scimCompiler) in(a scimAttr, cond string) string {
	if a.custom != "" {
		if cond == "" {
			cond = "1=1"
		}
		return "EXISTS (SELECT 1 FROM " + c.customElements(a.custom) + " WHERE " + cond + ")"
	}
	if a.array == "" {
		return a.in(cond, c.pg)
	}
	if cond == "" {
		cond = "1=1"
	}
	return "EXISTS (SELECT 1 FROM " + c.elements(a.array) + " WHERE " + cond + ")"
}

// elements is the FROM item of the elements x of a JSON array in the
// users' attrs document; each element is x.value.
func (c *scimCompiler) elements(key string) string {
	if c.pg {
		return "jsonb_array_elements(COALESCE(u.attrs->'" + key + "', '[]'::jsonb)) x"
	}
	return `json_each(u.attrs, '$."` + key + `"') x`
}

// sql is the NOT NULL expression of a column: a value of a JSON
// document, read the way each database reads one, or its SQL.
func (c *scimCompiler) sql(col scimColumn) string {
	if col.ctype != "" {
		return c.customText(col)
	}
	if col.json == "" {
		return col.sql
	}
	var v string
	switch {
	case col.kind == scimBool && c.pg:
		return "COALESCE((" + col.of + "->>'" + col.json + "')::boolean, FALSE)"
	case col.kind == scimBool:
		return "COALESCE(json_extract(" + col.of + `, '$."` + col.json + `"'), 0)`
	case c.pg:
		v = col.of + "->>'" + col.json + "'"
	default:
		v = "json_extract(" + col.of + `, '$."` + col.json + `"')`
	}
	if col.sql != "" {
		// A stored value, or else the derived one.
		return "COALESCE(NULLIF(" + v + ", ''), " + col.sql + ")"
	}
	return "COALESCE(" + v + ", '')"
}

// present is the condition that the column has a value.
func (c *scimCompiler) present(col scimColumn) string {
	if col.ctype != "" {
		return c.customPresent(col)
	}
	switch col.kind {
	case scimText, scimExact, scimKey:
		return c.sql(col) + " <> ''"
	}
	return "1=1" // booleans, timestamps and constants always have a value
}

// arg appends a bind parameter and returns its placeholder.
func (c *scimCompiler) arg(v any) string {
	c.args = append(c.args, v)
	return "?"
}

// text is a placeholder for a string parameter; PostgreSQL is told its
// type, since lower() is overloaded there.
func (c *scimCompiler) text(v string) string {
	c.arg(v)
	if c.pg {
		return "CAST(? AS TEXT)"
	}
	return "?"
}

// collate makes PostgreSQL order by code point, as SQLite does.
func (c *scimCompiler) collate(expr string) string {
	if c.pg {
		return expr + ` COLLATE "C"`
	}
	return expr
}

var scimOps = map[filter.Op]string{
	filter.Eq: "=", filter.Ne: "<>", filter.Gt: ">", filter.Ge: ">=", filter.Lt: "<", filter.Le: "<=",
}

// scimLikeEscaper escapes LIKE's wildcards and the escape character itself.
var scimLikeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func scimLikePattern(op filter.Op, v string) string {
	v = scimLikeEscaper.Replace(v)
	switch op {
	case filter.Co:
		return "%" + v + "%"
	case filter.Sw:
		return v + "%"
	}
	return "%" + v
}

func (c *scimCompiler) compare(col scimColumn, e *filter.Compare) (string, error) {
	if col.byKey && e.Op == filter.Eq && e.Value.Kind == filter.KindString && e.Value.Str != "" {
		return c.externalIDEq(e.Value.Str), nil
	}
	if col.ctype != "" && col.kind != scimText && col.kind != scimExact {
		return c.customCompare(col, e)
	}
	col.sql = c.sql(col)
	cond, err := c.compareValue(col, e)
	if err != nil {
		return "", err
	}
	switch col.kind {
	case scimText, scimExact, scimKey:
		// An unassigned value matches no comparison, eq "" and ne
		// included (RFC 7644 §3.4.2.2, SPEC §2.1).
		return "(" + col.sql + " <> '' AND " + cond + ")", nil
	}
	return cond, nil
}

// externalIDEq is externalId eq v for users, on the indexes that hold
// external_id: a source's record keys are unique per source (the unique
// index over source and external_id, reached once per source), what SCIM
// clients sent is indexed apart (migration 6). One index over every
// external_id would serve it too, but would cost every import an index
// more.
func (c *scimCompiler) externalIDEq(v string) string {
	return "u.id IN (SELECT k.id FROM sources s JOIN users k ON k.source = s.name AND k.keyed AND k.external_id = " + c.arg(v) +
		" UNION ALL SELECT k.id FROM users k WHERE NOT k.keyed AND k.external_id = " + c.arg(v) + ")"
}

func (c *scimCompiler) compareValue(col scimColumn, e *filter.Compare) (string, error) {
	op, v := e.Op, e.Value
	name := e.Attr.String()
	switch col.kind {
	case scimNone:
		return "", scimFilterErr("%q cannot be used in a filter", name)
	case scimConst:
		if v.Kind != filter.KindString {
			return "", scimFilterErr("%q is a string; compare it with a quoted value", name)
		}
		if scimConstMatch(col, op, v.Str) {
			return "1=1", nil
		}
		return "1=0", nil
	case scimBool:
		if v.Kind != filter.KindTrue && v.Kind != filter.KindFalse {
			return "", scimFilterErr("%q is a boolean; compare it with true or false", name)
		}
		if op != filter.Eq && op != filter.Ne {
			return "", scimFilterErr("%q is a boolean; only eq and ne compare booleans", name)
		}
		return col.sql + " " + scimOps[op] + " " + c.arg(v.Bool), nil
	case scimVersion:
		n, ok := scim.ParseVersion(v.Str)
		if v.Kind != filter.KindString || !ok || (op != filter.Eq && op != filter.Ne) {
			return "", scimFilterErr("%q compares only with eq or ne and a version such as \"W/\\\"3\\\"\"", name)
		}
		return col.sql + " " + scimOps[op] + " " + c.arg(n), nil
	case scimTime:
		if v.Kind != filter.KindString {
			return "", scimFilterErr("%q is a dateTime; compare it with a quoted date", name)
		}
		t, err := scim.ParseDateTime(v.Str)
		if err != nil {
			return "", scimFilterErr("%s: %v", v.String(), err)
		}
		sqlOp, ok := scimOps[op]
		if !ok {
			return "", scimFilterErr("%q is a dateTime; compare it with eq, ne, gt, ge, lt or le", name)
		}
		if c.pg {
			return col.sql + " " + sqlOp + " " + c.arg(t), nil
		}
		return "julianday(" + col.sql + ") " + sqlOp + " julianday(" + c.arg(t.Format(time.RFC3339Nano)) + ")", nil
	}
	if v.Kind != filter.KindString {
		return "", scimFilterErr("%q is a string; compare it with a quoted value", name)
	}
	s := v.Str
	switch op {
	case filter.Co, filter.Sw, filter.Ew:
		if s == "" {
			return "1=1", nil // every (assigned) value contains, starts and ends with ""
		}
		switch col.kind {
		case scimText:
			return "lower(" + col.sql + `) LIKE lower(` + c.text(scimLikePattern(op, s)) + `) ESCAPE '\'`, nil
		case scimKey:
			return col.sql + " LIKE " + c.arg(scimLikePattern(op, reconcile.Key(s))) + ` ESCAPE '\'`, nil
		}
		// Case-exact. PostgreSQL's LIKE is case-sensitive; SQLite's is
		// not, so SQLite compares substrings instead.
		if c.pg {
			return col.sql + " LIKE " + c.arg(scimLikePattern(op, s)) + ` ESCAPE '\'`, nil
		}
		switch op {
		case filter.Co:
			return "instr(" + col.sql + ", " + c.arg(s) + ") > 0", nil
		case filter.Sw:
			return "substr(" + col.sql + ", 1, length(" + c.arg(s) + ")) = " + c.arg(s), nil
		}
		return "substr(" + col.sql + ", -length(" + c.arg(s) + ")) = " + c.arg(s), nil
	}
	sqlOp := scimOps[op]
	ordered := op != filter.Eq && op != filter.Ne
	switch col.kind {
	case scimText:
		left := "lower(" + col.sql + ")"
		if ordered {
			left = c.collate(left)
		}
		return left + " " + sqlOp + " lower(" + c.text(s) + ")", nil
	case scimKey:
		left := col.sql
		if ordered {
			left = c.collate(left)
		}
		return left + " " + sqlOp + " " + c.arg(reconcile.Key(s)), nil
	}
	left := col.sql
	if ordered {
		left = c.collate(left)
	}
	return left + " " + sqlOp + " " + c.arg(s), nil
}

// scimConstMatch evaluates a comparison with a constant in Go.
func scimConstMatch(col scimColumn, op filter.Op, v string) bool {
	x := col.value
	if !col.exact {
		x, v = strings.ToLower(x), strings.ToLower(v)
	}
	switch op {
	case filter.Eq:
		return x == v
	case filter.Ne:
		return x != v
	case filter.Co:
		return strings.Contains(x, v)
	case filter.Sw:
		return strings.HasPrefix(x, v)
	case filter.Ew:
		return strings.HasSuffix(x, v)
	case filter.Gt:
		return x > v
	case filter.Ge:
		return x >= v
	case filter.Lt:
		return x < v
	case filter.Le:
		return x <= v
	}
	return false
}

// sortFor is the sort of an attribute path that no fixed sort names: any
// attribute with a value the filters compare, a multi-valued one by its
// primary value, or else its first (RFC 7644 §3.4.2.3).
func (c *scimCompiler) sortFor(path string) (scimSort, bool) {
	urn, name, sub := schema.SplitPath(path)
	def, owner, ok := c.res.rt.Lookup(urn, name, "")
	if !ok {
		return scimSort{}, false
	}
	a, ok := c.res.attr(owner, def)
	if !ok {
		return scimSort{}, false
	}
	if a.col != nil && a.col.ctype != "" {
		if sub != "" {
			return scimSort{}, false
		}
		return c.customSort(a, *a.col), true
	}
	if a.custom != "" {
		if sub != "" && !strings.EqualFold(sub, "value") {
			return scimSort{}, false
		}
		return c.customSort(a, a.subs["value"]), true
	}
	var col scimColumn
	switch {
	case a.col != nil && sub == "":
		col = *a.col
	case a.col != nil:
		return scimSort{}, false
	default:
		if sub == "" && !a.multi {
			return scimSort{}, false
		}
		if sub == "" {
			sub = "value"
		}
		if col, ok = a.subs[strings.ToLower(sub)]; !ok {
			return scimSort{}, false
		}
	}
	expr := c.sql(col)
	switch col.kind {
	case scimText:
		expr = "lower(" + expr + ")"
	case scimBool:
		expr = "CASE WHEN " + expr + " THEN 'true' ELSE 'false' END"
	case scimExact, scimKey:
	default:
		return scimSort{}, false
	}
	if a.multi {
		switch {
		case a.array != "":
			order := c.sql(a.subs["primary"]) + " DESC"
			if !c.pg {
				order += ", x.key"
			}
			expr = "(SELECT " + expr + " FROM " + c.elements(a.array) + " WHERE " + c.present(col) + " ORDER BY " + order + " LIMIT 1)"
		case a.from != "":
			expr = "(SELECT " + expr + " FROM " + a.from + " WHERE " + a.corr + " AND " + c.present(col) +
				" ORDER BY " + a.primary + " DESC, " + expr + " LIMIT 1)"
		default:
			return scimSort{}, false
		}
		expr = "COALESCE(" + expr + ", '')"
	}
	return scimSort{expr: expr, kind: scimKeyText}, true
}

// scimLast stands in for an unassigned value in a sort, after every
// value there is (U+10FFFF, the last code point, is a noncharacter), so
// that unassigned values sort last in ascending order and first in
// descending order (RFC 7644 §3.4.2.3).
func (c *scimCompiler) last(expr string) string {
	if c.pg {
		return "COALESCE(NULLIF(" + expr + ", ''), chr(1114111))"
	}
	return "COALESCE(NULLIF(" + expr + ", ''), char(1114111))"
}
