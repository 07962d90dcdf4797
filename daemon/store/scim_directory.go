package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
)

// SCIM returns the store as the directory the SCIM endpoint reads, for
// the User resource type without custom attributes.
func (s *Store) SCIM() scim.Directory { return s.SCIMFor(schema.Users) }

// SCIMFor is SCIM for the User resource type users, whose custom
// attributes (schema.NewUsers) filters and sorts may name; the SCIM
// Handler must serve the same type.
func (s *Store) SCIMFor(users schema.ResourceType) scim.Directory {
	r := *scimUsers
	r.rt = users
	return &scimDirectory{s: s, users: &r}
}

type scimDirectory struct {
	s     *Store
	users *scimResource
}

var _ scim.Directory = (*scimDirectory)(nil)

// scimKeyKind is how a sort value travels inside a cursor.
type scimKeyKind uint8

const (
	scimKeyText scimKeyKind = iota + 1
	scimKeyTime
	scimKeyNumber // a double; +Infinity stands for an unassigned value
)

// scimSort is a sort order: an expression, ordered with the id as the
// tie-break, which keyset pagination compares as the row value
// (expr, id) > (key, id) so that a page costs the same at any depth.
type scimSort struct {
	expr string
	kind scimKeyKind
}

// scimListing is one list query being built.
type scimListing struct {
	res  *scimResource
	pg   bool
	q    scim.Query
	sort *scimSort // nil: by id
	// sortExpr is the sort expression as SQL, comparable with its key.
	sortExpr string
}

func (d *scimDirectory) newListing(res *scimResource, q scim.Query) (*scimListing, error) {
	l := &scimListing{res: res, pg: d.s.driver == Postgres, q: q}
	if q.SortBy != "" && q.SortBy != scim.SortID {
		c := scimCompiler{res: res, pg: l.pg}
		s, ok := res.sorts[q.SortBy]
		if !ok {
			if s, ok = c.sortFor(q.SortBy); !ok {
				return nil, fmt.Errorf("sort %s by %q: %w", res.rt.Endpoint, q.SortBy, scim.ErrInvalidSort)
			}
		}
		if s.kind == scimKeyText && s.expr != "u.user_name_key" {
			s.expr = c.last(s.expr)
		}
		l.sort = &s
		l.sortExpr = s.expr
		switch {
		case s.kind == scimKeyTime && !l.pg:
			// SQLite holds RFC 3339 text, whose lexical order is not time
			// order; julianday() is.
			l.sortExpr = "julianday(" + s.expr + ")"
		case s.kind == scimKeyText && l.pg:
			l.sortExpr = s.expr + ` COLLATE "C"`
		}
	}
	return l, nil
}

// where returns the condition selecting the query's rows, without the
// keyset position.
func (l *scimListing) where() (string, []any, error) {
	cond := l.res.base
	if l.q.Filter == nil {
		return cond, nil, nil
	}
	c := scimCompiler{res: l.res, pg: l.pg}
	f, err := c.compile(l.q.Filter)
	if err != nil {
		return "", nil, err
	}
	return cond + " AND (" + f + ")", c.args, nil
}

// lookup tells whether the query reads at most one row through a unique
// index whatever else it asks: the filter's top-level conjunction holds
// id eq or userName eq, and there is no offset to skip.
func (l *scimListing) lookup() bool {
	if l.q.Offset > 0 {
		return false
	}
	c := scimCompiler{res: l.res, pg: l.pg}
	var walk func(e filter.Expr) bool
	walk = func(e filter.Expr) bool {
		switch e := e.(type) {
		case *filter.And:
			return walk(e.Left) || walk(e.Right)
		case *filter.Compare:
			if e.Op != filter.Eq || e.Value.Kind != filter.KindString || e.Attr.Sub != "" {
				return false
			}
			a, err := c.lookup(e.Attr)
			return err == nil && a.col != nil && (a.col.kind == scimKey || a.col.sql == l.res.alias+".id")
		}
		return false
	}
	return walk(l.q.Filter)
}

// after is the keyset condition of a cursor page.
func (l *scimListing) after() (string, []any, error) {
	p := l.q.After
	if !l.q.Cursor || p == nil {
		return "", nil, nil
	}
	id := l.res.alias + ".id"
	op := ">"
	if l.q.Descending {
		op = "<"
	}
	if l.sort == nil {
		return " AND " + id + " " + op + " ?", []any{p.ID}, nil
	}
	var key any = p.Key
	switch {
	case l.sort.kind == scimKeyTime && l.pg:
		t, err := time.Parse(time.RFC3339Nano, p.Key)
		if err != nil {
			return "", nil, fmt.Errorf("cursor key %q: %w", p.Key, scim.ErrInvalidCursor)
		}
		key = t
	case l.sort.kind == scimKeyTime || l.sort.kind == scimKeyNumber:
		f, err := strconv.ParseFloat(p.Key, 64)
		if err != nil {
			return "", nil, fmt.Errorf("cursor key %q: %w", p.Key, scim.ErrInvalidCursor)
		}
		key = f
	}
	return " AND (" + l.sortExpr + ", " + id + ") " + op + " (?, ?)", []any{key, p.ID}, nil
}

func (l *scimListing) orderBy() string {
	dir := ""
	if l.q.Descending {
		dir = " DESC"
	}
	id := l.res.alias + ".id" + dir
	if l.sort == nil {
		return " ORDER BY " + id
	}
	return " ORDER BY " + l.sortExpr + dir + ", " + id
}

// scimKeyString renders a scanned sort value as a cursor key.
func scimKeyString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		return string(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// ErrQueryTimeout is a SCIM query stopped at its deadline; the SCIM
// endpoint answers it with 503.
var ErrQueryTimeout = errors.New("the query ran out of time")

// read runs the queries whose cost the client's filter decides, on
// PostgreSQL in a read-only transaction whose statement_timeout is what
// is left of ctx's deadline, so that the server stops the statement
// itself: cancelling ctx only closes the client's connection, and a
// backend busy with a query notices that when it next writes, which
// can be minutes later (issue 16). JIT compilation is off there too:
// for the short, wide conditions of a filter it cost seconds and saved
// nothing. It is set per transaction rather than for the pool, so that
// the directory's other work keeps the operator's settings.
//
// A look-up (see scimListing.lookup) costs an index probe whatever else
// its filter asks, and skips the transaction: its three round trips
// doubled the look-up's time, and its context still cancels it.
func (d *scimDirectory) read(ctx context.Context, lookup bool, fn func(db *gorm.DB) error) error {
	db := d.s.db.WithContext(ctx)
	deadline, ok := ctx.Deadline()
	var err error
	if d.s.driver != Postgres || lookup {
		err = fn(db)
	} else {
		err = db.Transaction(func(tx *gorm.DB) error {
			set := "SELECT set_config('jit', 'off', true)"
			var args []any
			if ok {
				set += ", set_config('statement_timeout', ?, true)"
				args = append(args, strconv.FormatInt(max(time.Until(deadline).Milliseconds(), 1), 10))
			}
			if err := tx.Exec(set, args...).Error; err != nil {
				return fmt.Errorf("set the query's deadline: %w", err)
			}
			return fn(tx)
		}, &sql.TxOptions{ReadOnly: true})
	}
	if err != nil && scimTimedOut(ctx, err) {
		return fmt.Errorf("%w: %w", ErrQueryTimeout, err)
	}
	return err
}

// scimTimedOut tells whether err is a query stopped by its deadline:
// PostgreSQL's statement_timeout (SQLSTATE 57014, query_canceled),
// SQLite's interrupt, or the context's end.
func scimTimedOut(ctx context.Context, err error) bool {
	var pgErr *pgconn.PgError
	var liteErr interface{ Code() int }
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return true
	case errors.As(err, &pgErr):
		return pgErr.Code == "57014"
	case errors.As(err, &liteErr):
		return liteErr.Code()&0xff == sqlite3.SQLITE_INTERRUPT
	}
	return false
}

// run executes the page query of l, and the count query when the page
// does not tell the total. selectCols are the columns scan reads; the
// sort value follows them.
func (d *scimDirectory) run(ctx context.Context, l *scimListing, selectCols, joins string,
	scan func(rows *sql.Rows, key *any) (string, error)) (ids []string, total int, next *scim.Position, err error) {
	err = d.read(ctx, l.lookup(), func(db *gorm.DB) error {
		ids, total, next, err = d.runIn(db, l, selectCols, joins, scan)
		return err
	})
	return ids, total, next, err
}

func (d *scimDirectory) runIn(db *gorm.DB, l *scimListing, selectCols, joins string,
	scan func(rows *sql.Rows, key *any) (string, error)) (ids []string, total int, next *scim.Position, err error) {
	where, args, err := l.where()
	if err != nil {
		return nil, 0, nil, err
	}
	q := l.q
	if q.Count > 0 {
		after, afterArgs, err := l.after()
		if err != nil {
			return nil, 0, nil, err
		}
		cols := selectCols
		if l.sort != nil {
			cols += ", " + l.sortExpr
		}
		// One row more than the page tells whether more follow.
		stmt := "SELECT " + cols + " FROM " + l.res.table + joins + " WHERE " + where + after + l.orderBy() + " LIMIT ?"
		all := append(append(append([]any{}, args...), afterArgs...), q.Count+1)
		if !q.Cursor && q.Offset > 0 {
			stmt += " OFFSET ?"
			all = append(all, q.Offset)
		}
		rows, err := db.Raw(stmt, all...).Rows()
		if err != nil {
			return nil, 0, nil, fmt.Errorf("list %s: %w", l.res.rt.Endpoint, err)
		}
		var keys []any
		for rows.Next() {
			var key any
			id, err := scan(rows, &key)
			if err != nil {
				rows.Close()
				return nil, 0, nil, fmt.Errorf("list %s: %w", l.res.rt.Endpoint, err)
			}
			ids, keys = append(ids, id), append(keys, key)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, 0, nil, fmt.Errorf("list %s: %w", l.res.rt.Endpoint, err)
		}
		more := len(ids) > q.Count
		if more {
			ids, keys = ids[:q.Count], keys[:q.Count]
			if q.Cursor {
				next = &scim.Position{Key: scimKeyString(keys[q.Count-1]), ID: ids[q.Count-1]}
			}
		}
		// A page that is not full ends the list, so it tells the total,
		// unless it is empty past the start: only a count knows whether
		// the start lies beyond the end.
		switch {
		case more:
		case q.Cursor && q.After == nil:
			return ids, len(ids), next, nil
		case !q.Cursor && (q.Offset == 0 || len(ids) > 0):
			return ids, q.Offset + len(ids), next, nil
		}
	}
	var n int64
	if err := db.Raw("SELECT COUNT(*) FROM "+l.res.table+" WHERE "+where, args...).Row().Scan(&n); err != nil {
		return nil, 0, nil, fmt.Errorf("count %s: %w", l.res.rt.Endpoint, err)
	}
	return ids, int(n), next, nil
}

const scimUserCols = `u.id, u.external_id, u.user_name, u.given_name, u.family_name, u.display_name,
	u.employee_number, u.department, u.manager, COALESCE(mg.id, ''), COALESCE(NULLIF(mg.display_name, ''), mg.user_name, ''),
	u.active, u.version, u.created_at, u.updated_at, u.attrs`

// scimUserJoins resolves the manager, for manager.displayName.
const scimUserJoins = " LEFT JOIN users mg ON mg.id = u.manager AND mg.state <> 'deleted'"

// Users lists users (SPEC §6): tombstones never, inactive users too.
func (d *scimDirectory) Users(ctx context.Context, q scim.Query) (*scim.Page[scim.User], error) {
	l, err := d.newListing(d.users, q)
	if err != nil {
		return nil, err
	}
	page := &scim.Page[scim.User]{}
	byID := map[string]*scim.User{}
	ids, total, next, err := d.run(ctx, l, scimUserCols, scimUserJoins, func(rows *sql.Rows, key *any) (string, error) {
		var u scim.User
		var given, family, employee, department, manager, managerID, managerName string
		var active bool
		var version int64
		var created, modified time.Time
		var attrs []byte
		dest := []any{&u.ID, &u.ExternalID, &u.UserName, &given, &family, &u.DisplayName,
			&employee, &department, &manager, &managerID, &managerName, &active, &version, &created, &modified, &attrs}
		if l.sort != nil {
			dest = append(dest, key)
		}
		if err := rows.Scan(dest...); err != nil {
			return "", err
		}
		u.Active = &active
		if employee != "" || department != "" || manager != "" {
			u.Enterprise = &scim.EnterpriseUser{EmployeeNumber: employee, Department: department}
			if manager != "" {
				u.Enterprise.Manager = &scim.Manager{Value: manager}
				if managerID != "" {
					u.Enterprise.Manager.DisplayName = managerName
				}
			}
		}
		if err := decodeUserAttrs(attrs, &u, given, family); err != nil {
			return "", err
		}
		created, modified = created.UTC(), modified.UTC()
		u.Meta = &scim.Meta{Created: &created, LastModified: &modified, Version: scim.WeakVersion(version)}
		page.Resources = append(page.Resources, &u)
		byID[u.ID] = &u
		return u.ID, nil
	})
	if err != nil {
		return nil, err
	}
	page.Resources = page.Resources[:len(ids)] // drop the row that told whether more follow
	page.Total, page.Next = total, next
	if len(ids) == 0 {
		return page, nil
	}
	if err := d.loadUserValues(ctx, ids, byID, q.Include); err != nil {
		return nil, err
	}
	return page, nil
}

// loadUserValues loads the multi-valued attributes of a page of users:
// one query per attribute, never one per user.
func (d *scimDirectory) loadUserValues(ctx context.Context, ids []string, byID map[string]*scim.User, inc scim.Include) error {
	db := d.s.db.WithContext(ctx)
	load := func(table string, add func(u *scim.User, v scim.MultiValue)) error {
		rows, err := db.Raw(`SELECT user_id, value, display, type, "primary" FROM `+table+
			` WHERE user_id IN ? ORDER BY user_id, "primary" DESC, `+d.collate("value"), ids).Rows()
		if err != nil {
			return fmt.Errorf("load %s: %w", table, err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var v scim.MultiValue
			var primary bool
			if err := rows.Scan(&id, &v.Value, &v.Display, &v.Type, &primary); err != nil {
				return fmt.Errorf("load %s: %w", table, err)
			}
			v.Primary = &primary
			if u := byID[id]; u != nil {
				add(u, v)
			}
		}
		return rows.Err()
	}
	if inc.Emails {
		if err := load("user_emails", func(u *scim.User, v scim.MultiValue) { u.Emails = append(u.Emails, v) }); err != nil {
			return err
		}
	}
	if inc.PhoneNumbers {
		if err := load("user_phone_numbers", func(u *scim.User, v scim.MultiValue) { u.PhoneNumbers = append(u.PhoneNumbers, v) }); err != nil {
			return err
		}
	}
	if !inc.Groups {
		return nil
	}
	rows, err := db.Raw(`SELECT m.member_id, g.id, g.display_name FROM memberships m JOIN groups g ON g.id = m.group_id
		WHERE m.member_type = 'User' AND m.member_id IN ? ORDER BY m.member_id, g.id`, ids).Rows()
	if err != nil {
		return fmt.Errorf("load groups of users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var r scim.Reference
		if err := rows.Scan(&id, &r.Value, &r.Display); err != nil {
			return fmt.Errorf("load groups of users: %w", err)
		}
		r.Type = "direct"
		if u := byID[id]; u != nil {
			u.Groups = append(u.Groups, r)
		}
	}
	return rows.Err()
}

func (d *scimDirectory) collate(expr string) string {
	if d.s.driver == Postgres {
		return expr + ` COLLATE "C"`
	}
	return expr
}

// scimByID is the query of one resource: a filter on its id.
func scimByID(id string, inc scim.Include) scim.Query {
	return scim.Query{
		Filter:  &filter.Compare{Attr: filter.AttrPath{Name: "id"}, Op: filter.Eq, Value: filter.Value{Kind: filter.KindString, Str: id}},
		Count:   1,
		Include: inc,
	}
}

// User returns one user; tombstones are not found.
func (d *scimDirectory) User(ctx context.Context, id string, inc scim.Include) (*scim.User, error) {
	page, err := d.Users(ctx, scimByID(id, inc))
	if err != nil {
		return nil, err
	}
	if len(page.Resources) == 0 {
		return nil, fmt.Errorf("user %q: %w", id, scim.ErrNotFound)
	}
	return page.Resources[0], nil
}

const scimGroupCols = `g.id, g.external_id, g.display_name, g.version, g.created_at, g.updated_at`

// Groups lists groups.
func (d *scimDirectory) Groups(ctx context.Context, q scim.Query) (*scim.Page[scim.Group], error) {
	l, err := d.newListing(scimGroups, q)
	if err != nil {
		return nil, err
	}
	page := &scim.Page[scim.Group]{}
	byID := map[string]*scim.Group{}
	ids, total, next, err := d.run(ctx, l, scimGroupCols, "", func(rows *sql.Rows, key *any) (string, error) {
		var g scim.Group
		var version int64
		var created, modified time.Time
		dest := []any{&g.ID, &g.ExternalID, &g.DisplayName, &version, &created, &modified}
		if l.sort != nil {
			dest = append(dest, key)
		}
		if err := rows.Scan(dest...); err != nil {
			return "", err
		}
		created, modified = created.UTC(), modified.UTC()
		g.Meta = &scim.Meta{Created: &created, LastModified: &modified, Version: scim.WeakVersion(version)}
		page.Resources = append(page.Resources, &g)
		byID[g.ID] = &g
		return g.ID, nil
	})
	if err != nil {
		return nil, err
	}
	page.Resources = page.Resources[:len(ids)] // drop the row that told whether more follow
	page.Total, page.Next = total, next
	if len(ids) > 0 && q.Include.Owners {
		owners, err := d.s.GroupOwners(ctx, ids)
		if err != nil {
			return nil, err
		}
		for gid, os := range owners {
			g := byID[gid]
			if g == nil {
				continue
			}
			g.Roster = &scim.GroupExtension{}
			for _, o := range os {
				display := o.DisplayName
				if display == "" {
					display = o.UserName
				}
				g.Roster.Owners = append(g.Roster.Owners, scim.Reference{Value: o.UserID, Display: display})
			}
		}
	}
	if len(ids) == 0 || !q.Include.Members {
		return page, nil
	}
	// The page's members are read at most membersPerPage at a time, in
	// group id order: the groups read whole keep them, and the rest are
	// left pending, for the Handler to read in pieces through Members as
	// it writes them, so that no page holds more than that many members
	// whatever the size of its groups.
	rows, err := d.s.db.WithContext(ctx).Raw(scimMembersQuery+`
		WHERE m.group_id IN ? AND (m.member_type <> 'User' OR mu.state <> 'deleted')
		ORDER BY m.group_id, m.member_id LIMIT ?`, ids, membersPerPage+1).Rows()
	if err != nil {
		return nil, fmt.Errorf("load members: %w", err)
	}
	defer rows.Close()
	read, cut := 0, ""
	for rows.Next() {
		var gid string
		var r scim.Reference
		if err := rows.Scan(&gid, &r.Value, &r.Type, &r.Display); err != nil {
			return nil, fmt.Errorf("load members: %w", err)
		}
		if read++; read > membersPerPage {
			cut = gid
			break
		}
		if g := byID[gid]; g != nil {
			g.Members = append(g.Members, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load members: %w", err)
	}
	if cut != "" {
		// Ids compare byte by byte on both stores (COLLATE "C" on
		// PostgreSQL), as Go compares strings.
		for _, g := range page.Resources {
			if g.ID >= cut {
				g.Members, g.MembersPending = nil, true
			}
		}
	}
	return page, nil
}

// membersPerPage bounds the members one page of groups holds; the others
// are read MemberPiece at a time (see Groups).
var membersPerPage = 10 * scim.MemberPiece

// scimMembersQuery reads members with their display names.
var scimMembersQuery = `SELECT m.group_id, m.member_id, m.member_type,
			CASE WHEN m.member_type = 'User' THEN ` + scimDisplay("mu") + ` ELSE COALESCE(mg.display_name, '') END
		FROM memberships m
		LEFT JOIN users mu ON m.member_type = 'User' AND mu.id = m.member_id
		LEFT JOIN groups mg ON m.member_type = 'Group' AND mg.id = m.member_id`

var _ scim.MemberReader = (*scimDirectory)(nil)

// Members reads one piece of a group's members: a range of the primary
// key (group_id, member_id), so every piece costs the same however deep
// into the group it starts.
func (d *scimDirectory) Members(ctx context.Context, id, after string, limit int) ([]scim.Reference, error) {
	rows, err := d.s.db.WithContext(ctx).Raw(scimMembersQuery+`
		WHERE m.group_id = ? AND m.member_id > ? AND (m.member_type <> 'User' OR mu.state <> 'deleted')
		ORDER BY m.member_id LIMIT ?`, id, after, limit).Rows()
	if err != nil {
		return nil, fmt.Errorf("load members of group %q: %w", id, err)
	}
	defer rows.Close()
	var out []scim.Reference
	for rows.Next() {
		var gid string
		var r scim.Reference
		if err := rows.Scan(&gid, &r.Value, &r.Type, &r.Display); err != nil {
			return nil, fmt.Errorf("load members of group %q: %w", id, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load members of group %q: %w", id, err)
	}
	return out, nil
}

// Group returns one group.
func (d *scimDirectory) Group(ctx context.Context, id string, inc scim.Include) (*scim.Group, error) {
	page, err := d.Groups(ctx, scimByID(id, inc))
	if err != nil {
		return nil, err
	}
	if len(page.Resources) == 0 {
		return nil, fmt.Errorf("group %q: %w", id, scim.ErrNotFound)
	}
	return page.Resources[0], nil
}
