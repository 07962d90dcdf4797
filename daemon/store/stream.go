package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/daemon/reconcile"
)

// StreamTx is one transaction that applies a plan made of parts (see
// reconcile.Stream): it reads what each part needs and writes it, all of
// it or, on any error, nothing.
type StreamTx struct {
	a       applier
	sqlite  bool
	written int64
	// readOnly: ReadStream's, which reads outside any transaction and
	// writes nothing.
	readOnly bool
	// groupKey holds the source's groups as Groups read them: id → key.
	groupKey map[string]string
	// rebuild builds again the index that Expect dropped, before commit.
	rebuild string
}

// ApplyStream runs fn in one transaction on source and records the task
// t's final state and the source's fingerprint with it. The transaction
// holds the source's row from its first statement, so SCIM writes to the
// source's users wait for it instead of racing the parts.
func (s *Store) ApplyStream(ctx context.Context, source, fingerprint string, t *Task, fn func(*StreamTx) error) error {
	return s.applyStream(ctx, source, fingerprint, -1, t, fn)
}

// ApplyAt is ApplyStream for parts planned against the source's revision
// before the transaction began (a push's, see reconcile.PushParts): it
// refuses with ErrConflict, writing nothing, when the source changed
// since, as ApplyTask does. The source's fingerprint is cleared, as
// ApplyTask does for a push.
func (s *Store) ApplyAt(ctx context.Context, source string, revision int64, t *Task, fn func(*StreamTx) error) error {
	return s.applyStream(ctx, source, "", revision, t, fn)
}

// applyStream is ApplyStream, and ApplyAt when revision is not negative.
func (s *Store) applyStream(ctx context.Context, source, fingerprint string, revision int64, t *Task, fn func(*StreamTx) error) error {
	now := time.Now().UTC()
	var written int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		update, args := `UPDATE sources SET revision = revision + 1, last_fingerprint = ?, last_success_at = ? WHERE name = ?`,
			[]any{fingerprint, now, source}
		if revision >= 0 {
			update, args = update+` AND revision = ?`, append(args, revision)
		}
		res := tx.Exec(update, args...)
		if res.Error != nil {
			return fmt.Errorf("apply the plan: %w", res.Error)
		}
		switch {
		case res.RowsAffected == 1:
		case revision >= 0:
			return ErrConflict
		default:
			return fmt.Errorf("source %s: %w", source, ErrNotFound)
		}
		if s.driver == SQLite {
			tx = preparedTx(tx)
		}
		st := &StreamTx{a: applier{ctx: ctx, tx: tx, source: source, now: now, batch: s.batchRows(), postgres: s.driver == Postgres, keeper: s.keeper.Load()},
			sqlite: s.driver == SQLite}
		if err := fn(st); err != nil {
			return err
		}
		if err := buildIndex(tx, st.rebuild); err != nil {
			return err
		}
		written = st.written
		return finishTask(tx, t)
	})
	if err != nil {
		return err
	}
	s.analyzeAfterWrites(ctx, written)
	return nil
}

// ReadStream returns a StreamTx that reads source as a streamed plan does
// and writes nothing (Apply refuses): a dry run plans a large input with
// it, a part at a time, as the sync would. Its reads are not one
// transaction (which on SQLite would take the write lock for the whole
// dry run), so a change racing the dry run may show in some parts only;
// the sync itself plans again.
func (s *Store) ReadStream(ctx context.Context, source string) *StreamTx {
	return &StreamTx{a: applier{ctx: ctx, tx: s.db.WithContext(ctx), source: source, batch: s.batchRows(), postgres: s.driver == Postgres},
		sqlite: s.driver == SQLite, readOnly: true}
}

// errReadOnly refuses a write through ReadStream's StreamTx.
var errReadOnly = errors.New("a read-only stream (a dry run) writes nothing")

// Apply writes one part of the plan.
func (st *StreamTx) Apply(p *reconcile.Plan) error {
	if st.readOnly {
		return errReadOnly
	}
	st.written += int64(len(p.Changes) + len(p.MembershipAdds))
	return st.a.apply(p)
}

// Expect tells the transaction that its parts will create about n users
// (at least n, adoptions aside). On SQLite an initial import (see
// deferIndex) then builds users' displayName index once before its
// commit instead of row by row. A read-only stream ignores it.
func (st *StreamTx) Expect(n int) error {
	if st.readOnly || !st.sqlite || st.rebuild != "" {
		return nil
	}
	var err error
	st.rebuild, err = deferIndex(st.a.tx, n)
	return err
}

// Users reads the source's users with the given external ids, tombstones
// included, with their e-mail, phone and the keys of their groups among
// those Groups read, by external id.
func (st *StreamTx) Users(ids []string) (map[string]*reconcile.User, error) {
	out := make(map[string]*reconcile.User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list := st.in()
	rows, err := st.a.tx.Raw(snapshotUsers+` AND u.keyed AND u.external_id `+list, st.a.source, st.arg(ids)).Rows()
	if err != nil {
		return nil, fmt.Errorf("read users of %s: %w", st.a.source, err)
	}
	byID := make(map[string]*reconcile.User, len(ids))
	err = scanUsers(rows, func(u *reconcile.User) error {
		c := *u
		out[c.ExternalID], byID[c.ID] = &c, &c
		return nil
	})
	if err != nil || len(byID) == 0 {
		return out, err
	}
	uids := make([]string, 0, len(byID))
	for id := range byID {
		uids = append(uids, id)
	}
	// Memberships are found by member, and kept when their group is one of
	// the source's: a join with the groups would let the database walk each
	// group's members instead (thousands of groups times the chunk).
	rows, err = st.a.tx.Raw(`SELECT member_id, group_id FROM memberships WHERE member_type = 'User' AND member_id `+list,
		st.arg(uids)).Rows()
	if err != nil {
		return nil, fmt.Errorf("read memberships of %s: %w", st.a.source, err)
	}
	defer rows.Close()
	for rows.Next() {
		var uid, gid string
		if err := rows.Scan(&uid, &gid); err != nil {
			return nil, fmt.Errorf("read memberships of %s: %w", st.a.source, err)
		}
		if u, key := byID[uid], st.groupKey[gid]; u != nil && key != "" {
			u.Groups = append(u.Groups, key)
		}
	}
	for _, u := range byID {
		slices.Sort(u.Groups)
	}
	return out, rows.Err()
}

// Holders returns, of the given login keys, those that a user (not
// deleted) holds, with the holder's source and external id.
func (st *StreamTx) Holders(keys []string) (map[string][2]string, error) {
	out := map[string][2]string{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := st.a.tx.Raw(`SELECT user_name_key, source, external_id FROM users
		WHERE state <> 'deleted' AND user_name_key `+st.in(), st.arg(keys)).Rows()
	if err != nil {
		return nil, fmt.Errorf("look up logins: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, src, ext string
		if err := rows.Scan(&key, &src, &ext); err != nil {
			return nil, fmt.Errorf("look up logins: %w", err)
		}
		out[key] = [2]string{src, ext}
	}
	return out, rows.Err()
}

// EachUser calls fn with every user of the source, tombstones included,
// one row at a time, with their e-mail, phone and the keys of their groups
// among those Groups read (call Groups first). The groups come as one list
// of ids per user: aggregated by PostgreSQL in one pass over the
// memberships, and read by SQLite from the covering index per user.
func (st *StreamTx) EachUser(fn func(*reconcile.User) error) error {
	groups := `COALESCE((SELECT group_concat(m.group_id, ',') FROM memberships m
		WHERE m.member_id = u.id AND m.member_type = 'User'), '')`
	join := ""
	if !st.sqlite {
		groups = `COALESCE(mg.ids, '')`
		join = ` LEFT JOIN (SELECT member_id, string_agg(group_id, ',') AS ids FROM memberships
			WHERE member_type = 'User' GROUP BY member_id) mg ON mg.member_id = u.id`
	}
	rows, err := st.a.tx.Raw(`SELECT `+snapshotColumns+`, `+groups+snapshotJoins+join+` WHERE u.source = ?`, st.a.source).Rows()
	if err != nil {
		return fmt.Errorf("read users of %s: %w", st.a.source, err)
	}
	defer rows.Close()
	var u reconcile.User
	var ids string
	var doc []byte
	for rows.Next() {
		u = reconcile.User{}
		if err := rows.Scan(&u.ID, &u.ExternalID, &u.UserName, &u.GivenName, &u.FamilyName, &u.DisplayName,
			&u.EmployeeNumber, &u.Department, &doc, &u.Active, &u.State, &u.StateReason, &u.HasPassword, &u.Email, &u.Phone, &u.Manager, &ids); err != nil {
			return fmt.Errorf("read users of %s: %w", st.a.source, err)
		}
		if u.Attrs, err = canonicalAttrs(doc); err != nil {
			return fmt.Errorf("read user %s of %s: %w", u.ID, st.a.source, err)
		}
		for id := range strings.SplitSeq(ids, ",") {
			if key := st.groupKey[id]; key != "" {
				u.Groups = append(u.Groups, key)
			}
		}
		slices.Sort(u.Groups)
		if err := fn(&u); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read users of %s: %w", st.a.source, err)
	}
	return nil
}

// Groups reads the source's groups; Users reports memberships in them.
func (st *StreamTx) Groups() ([]reconcile.Group, error) {
	var out []reconcile.Group
	st.groupKey = map[string]string{}
	rows, err := st.a.tx.Raw(`SELECT id, display_name FROM groups WHERE source = ?`, st.a.source).Rows()
	if err != nil {
		return nil, fmt.Errorf("read groups of %s: %w", st.a.source, err)
	}
	defer rows.Close()
	for rows.Next() {
		var g reconcile.Group
		if err := rows.Scan(&g.ID, &g.DisplayName); err != nil {
			return nil, fmt.Errorf("read groups of %s: %w", st.a.source, err)
		}
		out = append(out, g)
		st.groupKey[g.ID] = reconcile.Key(g.DisplayName)
	}
	return out, rows.Err()
}

// Nested reads the memberships of groups in the source's groups (an ldap
// source's nested groups): MemberType MemberGroup, UserID the member
// group's id.
func (st *StreamTx) Nested() ([]reconcile.Membership, error) {
	rows, err := st.a.tx.Raw(`SELECT m.group_id, m.member_id FROM memberships m JOIN groups g ON g.id = m.group_id
		WHERE g.source = ? AND m.member_type = 'Group'`, st.a.source).Rows()
	if err != nil {
		return nil, fmt.Errorf("read nested groups of %s: %w", st.a.source, err)
	}
	defer rows.Close()
	var out []reconcile.Membership
	for rows.Next() {
		m := reconcile.Membership{MemberType: reconcile.MemberGroup}
		if err := rows.Scan(&m.GroupID, &m.UserID); err != nil {
			return nil, fmt.Errorf("read nested groups of %s: %w", st.a.source, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// list is an IN list that takes its values from one JSON parameter: one
// statement for thousands of values, parsed once.
//
// On PostgreSQL the values travel as one text[] instead, which the planner
// sizes correctly and looks up by index (a JSON function's rows it
// guesses, and then may scan the table for each chunk).
func (st *StreamTx) in() string {
	if st.sqlite {
		return `IN (SELECT value FROM json_each(?))`
	}
	return `= ANY(CAST(? AS text[]))`
}

func (st *StreamTx) arg(values []string) any {
	if st.sqlite {
		doc, _ := json.Marshal(values) // strings always marshal
		return string(doc)
	}
	return textArray(values)
}

// textArray is a PostgreSQL text[] literal; as a driver.Valuer it is one
// parameter, where GORM would spread a plain slice into a list.
type textArray []string

func (a textArray) Value() (driver.Value, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, r := range v {
			if r == '"' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}

// snapshotUsers selects a source's users as the reconcile engine sees them.
const (
	snapshotColumns = `u.id, u.external_id, u.user_name, u.given_name, u.family_name, u.display_name,
		u.employee_number, u.department, NULLIF(u.attrs, '{}'), u.active, u.state, u.state_reason, u.password_hash <> '',
		COALESCE(e.value, ''), COALESCE(p.value, ''), u.manager`
	snapshotJoins = ` FROM users u
		LEFT JOIN user_emails e ON e.user_id = u.id AND e."primary"
		LEFT JOIN user_phone_numbers p ON p.user_id = u.id AND p."primary"`
	snapshotUsers = `SELECT ` + snapshotColumns + snapshotJoins + ` WHERE u.source = ?`
)

// scanUsers calls fn with each row of a snapshotUsers query and closes rows.
func scanUsers(rows *sql.Rows, fn func(*reconcile.User) error) error {
	defer rows.Close()
	var u reconcile.User
	var doc []byte
	var err error
	for rows.Next() {
		u = reconcile.User{}
		if err := rows.Scan(&u.ID, &u.ExternalID, &u.UserName, &u.GivenName, &u.FamilyName, &u.DisplayName,
			&u.EmployeeNumber, &u.Department, &doc, &u.Active, &u.State, &u.StateReason, &u.HasPassword, &u.Email, &u.Phone, &u.Manager); err != nil {
			return fmt.Errorf("read users: %w", err)
		}
		if u.Attrs, err = canonicalAttrs(doc); err != nil {
			return fmt.Errorf("read user %s: %w", u.ID, err)
		}
		if err := fn(&u); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	return nil
}

// canonicalAttrs reads a stored attribute document in the encoding the
// reconcile engine compares: PostgreSQL gives JSONB back in an order of
// its own, and the column's "{}" is the engine's "".
func canonicalAttrs(raw []byte) (string, error) {
	if len(raw) <= 2 {
		return "", nil
	}
	d, err := attrs.Decode(raw)
	if err != nil {
		return "", err
	}
	return d.Encode()
}
