package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/rosterd/roster/daemon/reconcile"
)

// ErrConflict is returned when a plan no longer fits the directory: the
// source changed after the plan was computed.
var ErrConflict = errors.New("the directory changed since the plan was computed")

// batchRows is how many rows one multi-row statement carries. PostgreSQL
// takes large statements well; the pure-Go SQLite driver matches each
// parameter against every argument (quadratic), so there many small
// statements are much faster than a few large ones.
func (s *Store) batchRows() int {
	if s.driver == Postgres {
		return 500
	}
	return 16
}

// Snapshot reads everything a source owns, tombstones included, with the
// source's revision read first so that a change racing the read makes the
// later Apply fail instead of applying a stale plan.
func (s *Store) Snapshot(ctx context.Context, source string) (*reconcile.Snapshot, error) {
	db := s.db.WithContext(ctx)
	snap := &reconcile.Snapshot{}
	if err := db.Raw(`SELECT revision FROM sources WHERE name = ?`, source).Row().Scan(&snap.Revision); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("source %s: %w", source, ErrNotFound)
		}
		return nil, fmt.Errorf("read source %s: %w", source, err)
	}

	rows, err := db.Raw(`SELECT g.id, g.display_name FROM groups g WHERE g.source = ?`, source).Rows()
	if err != nil {
		return nil, fmt.Errorf("read groups of %s: %w", source, err)
	}
	groupKey := map[string]string{}
	for rows.Next() {
		var g reconcile.Group
		if err := rows.Scan(&g.ID, &g.DisplayName); err != nil {
			rows.Close()
			return nil, err
		}
		snap.Groups = append(snap.Groups, g)
		groupKey[g.ID] = reconcile.Key(g.DisplayName)
	}
	rows.Close()

	// Sized once: a million users appended one by one would be copied
	// again at every doubling, holding the old and the new array at once.
	var n int
	if err := db.Raw(`SELECT COUNT(*) FROM users WHERE source = ?`, source).Row().Scan(&n); err != nil {
		return nil, fmt.Errorf("count users of %s: %w", source, err)
	}
	snap.Users = make([]reconcile.User, 0, n)
	memberOf := make(map[string][]string, n)
	rows, err = db.Raw(`SELECT m.group_id, m.member_id FROM memberships m JOIN groups g ON g.id = m.group_id
		WHERE g.source = ? AND m.member_type = 'User'`, source).Rows()
	if err != nil {
		return nil, fmt.Errorf("read memberships of %s: %w", source, err)
	}
	for rows.Next() {
		var gid, uid string
		if err := rows.Scan(&gid, &uid); err != nil {
			rows.Close()
			return nil, err
		}
		memberOf[uid] = append(memberOf[uid], groupKey[gid])
	}
	rows.Close()

	// Groups nested in the source's groups (an ldap source's).
	rows, err = db.Raw(`SELECT m.group_id, m.member_id FROM memberships m JOIN groups g ON g.id = m.group_id
		WHERE g.source = ? AND m.member_type = 'Group'`, source).Rows()
	if err != nil {
		return nil, fmt.Errorf("read nested groups of %s: %w", source, err)
	}
	for rows.Next() {
		var m reconcile.Membership
		if err := rows.Scan(&m.GroupID, &m.UserID); err != nil {
			rows.Close()
			return nil, err
		}
		m.MemberType = reconcile.MemberGroup
		snap.Nested = append(snap.Nested, m)
	}
	rows.Close()

	rows, err = db.Raw(snapshotUsers, source).Rows()
	if err != nil {
		return nil, fmt.Errorf("read users of %s: %w", source, err)
	}
	err = scanUsers(rows, func(u *reconcile.User) error {
		if g := memberOf[u.ID]; len(g) > 0 {
			slices.Sort(g)
			u.Groups = g
		}
		snap.Users = append(snap.Users, *u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read users of %s: %w", source, err)
	}
	return snap, nil
}

// ForeignLogins finds which of the login keys users of other sources hold
// (tombstones do not hold a login) and describes each holder. Few keys are
// looked up by index; many are matched in one scan of the other sources'
// logins, which costs one query instead of thousands.
func (s *Store) ForeignLogins(ctx context.Context, source string, keys []string) (map[string]string, error) {
	if len(keys) <= 1000 {
		return s.foreignLoginsByIndex(ctx, source, keys)
	}
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	rows, err := s.db.WithContext(ctx).Raw(foreignLoginsQuery, source).Rows()
	if err != nil {
		return nil, fmt.Errorf("look up logins: %w", err)
	}
	found := map[string]string{}
	if err := collectForeign(rows, want, found); err != nil {
		return nil, fmt.Errorf("look up logins: %w", err)
	}
	return found, nil
}

const foreignLoginsQuery = `SELECT user_name_key, source, external_id FROM users WHERE state <> 'deleted' AND source <> ?`

// foreignLoginsByIndex is ForeignLogins by index look-ups in batches: its
// cost follows the number of keys, not the size of the directory.
func (s *Store) foreignLoginsByIndex(ctx context.Context, source string, keys []string) (map[string]string, error) {
	found := map[string]string{}
	batch := s.batchRows()
	for start := 0; start < len(keys); start += batch {
		chunk := keys[start:min(start+batch, len(keys))]
		rows, err := s.db.WithContext(ctx).Raw(foreignLoginsQuery+` AND user_name_key IN ?`, source, chunk).Rows()
		if err == nil {
			err = collectForeign(rows, nil, found)
		}
		if err != nil {
			return nil, fmt.Errorf("look up logins: %w", err)
		}
	}
	return found, nil
}

// collectForeign adds the holders rows name (of the keys in want, or all)
// to found.
func collectForeign(rows *sql.Rows, want map[string]bool, found map[string]string) error {
	defer rows.Close()
	for rows.Next() {
		var key, src, ext string
		if err := rows.Scan(&key, &src, &ext); err != nil {
			return err
		}
		if want == nil || want[key] {
			found[key] = fmt.Sprintf("a user of source %q (id %q)", src, ext)
		}
	}
	return rows.Err()
}

// Apply writes a plan in one transaction: all of it or, on any error,
// nothing. It fails with ErrConflict when the source's revision is no longer
// the plan's. A successful apply records fingerprint as the source's last
// successfully synced input.
func (s *Store) Apply(ctx context.Context, source string, plan *reconcile.Plan, fingerprint string) error {
	return s.ApplyTask(ctx, source, plan, fingerprint, nil)
}

// ApplyTask is Apply that also saves the task's final state in the same
// transaction, so that a crash right after the commit cannot leave an
// applied plan behind a task that says nothing was applied.
func (s *Store) ApplyTask(ctx context.Context, source string, plan *reconcile.Plan, fingerprint string, t *Task) error {
	if err := s.applyTask(ctx, source, plan, fingerprint, t); err != nil {
		return err
	}
	s.analyzeAfterWrites(ctx, int64(len(plan.Changes)+len(plan.MembershipAdds)))
	return nil
}

// analyzeAfterWrites counts rows written and refreshes PostgreSQL's
// statistics after many.
func (s *Store) analyzeAfterWrites(ctx context.Context, written int64) {
	if s.driver == Postgres && s.unanalyzed.Add(written) > analyzeAfter {
		// Autovacuum analyses new rows only after a while; until then the
		// planner believes the tables empty and picks sequential scans or
		// nested loops over a hundred thousand rows: for one large sync,
		// or for many pushes that add up.
		s.unanalyzed.Store(0)
		logErr("analyze the directory after a large change",
			s.db.WithContext(ctx).Exec(`ANALYZE users, user_emails, user_phone_numbers, groups, memberships, pending_members`).Error)
	}
}

// analyzeAfter is the size of a change after which PostgreSQL's
// statistics are refreshed at once.
const analyzeAfter = 10000

func (s *Store) applyTask(ctx context.Context, source string, plan *reconcile.Plan, fingerprint string, t *Task) error {
	now := time.Now().UTC()
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE sources SET revision = revision + 1, last_fingerprint = ?, last_success_at = ?
			WHERE name = ? AND revision = ?`, fingerprint, now, source, plan.Revision)
		if res.Error != nil {
			return fmt.Errorf("apply the plan: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return ErrConflict
		}
		if s.driver == SQLite {
			// The same few statement shapes run thousands of times.
			tx = preparedTx(tx)
		}
		a := applier{ctx: ctx, tx: tx, source: source, now: now, batch: s.batchRows(), postgres: s.driver == Postgres, keeper: s.keeper.Load()}
		var rebuild string
		if s.driver == SQLite {
			creates := 0
			for i := range plan.Changes {
				if plan.Changes[i].Action == reconcile.Create {
					creates++
				}
			}
			var err error
			if rebuild, err = deferIndex(tx, creates); err != nil {
				return err
			}
		}
		if err := a.apply(plan); err != nil {
			return err
		}
		if err := buildIndex(tx, rebuild); err != nil {
			return err
		}
		return finishTask(tx, t)
	})
}

// bulkFrom is how many users an apply must be about to create, at least,
// for SQLite to build users' displayName index once at the apply's end
// instead of row by row (deferIndex). Below it the index costs an apply
// a few tens of milliseconds at most, less than the drop's schema change
// costs the apply's prepared statements (SQLite prepares each again). A
// variable for tests.
var bulkFrom = 10000

// deferIndex drops users' displayName index in tx, a SQLite transaction,
// when tx is about to create more than bulkFrom users and more users than
// the directory holds: an initial import. It returns the statement that
// builds the index again, which the apply runs before it commits (see
// buildIndex), or "" when it dropped nothing. The pure-Go engine
// maintains that expression index row by row for about a fifth of an
// import's time; building it once sorts every user, which for an import
// larger than the directory is fewer than twice the rows it inserts
// (docs/performance.md has the figures). SQLite's DDL is transactional:
// an apply that fails or is killed before its commit leaves the index as
// it was.
func deferIndex(tx *gorm.DB, creates int) (string, error) {
	if creates <= bulkFrom {
		return "", nil
	}
	// Only whether the directory holds fewer matters: counting stops there.
	var stored int
	if err := tx.Raw(`SELECT COUNT(*) FROM (SELECT 1 FROM users LIMIT ?)`, creates).Scan(&stored).Error; err != nil {
		return "", fmt.Errorf("count the directory's users before a bulk import: %w", err)
	}
	if stored >= creates {
		return "", nil
	}
	var ddl string
	if err := tx.Raw(`SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'users_display_name'`).Scan(&ddl).Error; err != nil {
		return "", fmt.Errorf("read users' displayName index before a bulk import: %w", err)
	}
	if ddl == "" {
		return "", nil
	}
	if err := tx.Exec(`DROP INDEX users_display_name`).Error; err != nil {
		return "", fmt.Errorf("defer users' displayName index during a bulk import: %w", err)
	}
	return ddl, nil
}

// buildIndex runs the statement deferIndex returned, if any.
func buildIndex(tx *gorm.DB, ddl string) error {
	if ddl == "" {
		return nil
	}
	if err := tx.Exec(ddl).Error; err != nil {
		return fmt.Errorf("build users' displayName index after a bulk import: %w", err)
	}
	return nil
}

// finishTask saves a task's final state in the transaction that applied
// its plan (nothing when t is nil).
func finishTask(tx *gorm.DB, t *Task) error {
	if t == nil {
		return nil
	}
	if err := tx.Save(t).Error; err != nil {
		return fmt.Errorf("record task %d: %w", t.ID, err)
	}
	if t.Status == StatusSucceeded {
		// A push's payload is kept only until it is applied.
		if err := tx.Exec(`DELETE FROM task_payloads WHERE task_id = ?`, t.ID).Error; err != nil {
			return fmt.Errorf("record task %d: %w", t.ID, err)
		}
	}
	return nil
}

type applier struct {
	ctx      context.Context
	postgres bool
	tx       *gorm.DB
	source   string
	now      time.Time
	batch    int
	// keeper keeps the initial passwords of created users for sinks;
	// nil keeps none.
	keeper *passwordKeeper
}

func (a *applier) apply(p *reconcile.Plan) error {
	for _, g := range p.GroupCreates {
		if err := a.exec(`INSERT INTO groups (id, source, external_id, display_name, display_name_key, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 1, ?, ?)`, g.ID, a.source, g.ExternalID, g.DisplayName, reconcile.Key(g.DisplayName), a.now, a.now); err != nil {
			return fmt.Errorf("create group %q: %w", g.DisplayName, err)
		}
	}
	for _, g := range p.GroupRenames {
		if err := a.exec(`UPDATE groups SET display_name = ?, version = version + 1, updated_at = ? WHERE id = ?`,
			g.DisplayName, a.now, g.ID); err != nil {
			return fmt.Errorf("rename group %q: %w", g.DisplayName, err)
		}
	}

	var deleted, loginMoves []string
	removals := map[[2]string][]string{} // by state and reason
	var creates []*reconcile.User
	var writes []reconcile.Change
	adopted := map[string][]string{} // user ids by the source they were adopted from
	for i := range p.Changes {
		c := &p.Changes[i]
		switch c.Action {
		case reconcile.Delete:
			deleted = append(deleted, c.After.ID)
			fallthrough
		case reconcile.Deactivate:
			k := [2]string{c.After.State, c.After.StateReason}
			removals[k] = append(removals[k], c.After.ID)
		case reconcile.Create:
			creates = append(creates, &c.After)
		case reconcile.Update, reconcile.Restore, reconcile.Adopt:
			if c.Before.State != reconcile.StateDeleted && reconcile.Key(c.Before.UserName) != reconcile.Key(c.After.UserName) {
				loginMoves = append(loginMoves, c.After.ID)
			}
			writes = append(writes, *c)
		}
	}

	// Removals first: they free logins that records of this plan take.
	for k, ids := range removals {
		var deletedAt any
		if k[0] == reconcile.StateDeleted {
			deletedAt = a.now
		}
		if err := a.inBatches(ids, `UPDATE users SET active = FALSE, state = ?, state_reason = ?,
			version = version + 1, updated_at = ?, deleted_at = ? WHERE id IN ?`, k[0], k[1], a.now, deletedAt); err != nil {
			return fmt.Errorf("remove users (%s, %s): %w", k[0], k[1], err)
		}
	}
	if err := a.inBatches(deleted, `DELETE FROM memberships WHERE member_id IN ?`); err != nil {
		return fmt.Errorf("remove the memberships of deleted users: %w", err)
	}
	if err := a.inBatches(deleted, `DELETE FROM pending_members WHERE member_id IN ?`); err != nil {
		return fmt.Errorf("remove the pending memberships of deleted users: %w", err)
	}
	// Logins that move between users of this plan (a swap) are parked on a
	// unique placeholder first, so that no step breaks the unique index.
	if err := a.inBatches(loginMoves, `UPDATE users SET user_name_key = '~moving~' || id WHERE id IN ?`); err != nil {
		return fmt.Errorf("move logins: %w", err)
	}
	for _, c := range writes {
		if err := a.writeUser(c); err != nil {
			return err
		}
		if c.Action == reconcile.Adopt {
			adopted[c.Before.Source] = append(adopted[c.Before.Source], c.After.ID)
		}
	}
	if err := a.adopted(adopted); err != nil {
		return err
	}
	if err := a.createUsers(creates); err != nil {
		return err
	}
	if err := a.managers(creates); err != nil {
		return err
	}

	for _, m := range p.MembershipRemoves {
		if err := a.exec(`DELETE FROM memberships WHERE group_id = ? AND member_id = ?`, m.GroupID, m.UserID); err != nil {
			return fmt.Errorf("remove membership: %w", err)
		}
	}
	if err := a.addMemberships(p.MembershipAdds); err != nil {
		return err
	}
	if err := a.pending(p); err != nil {
		return err
	}
	var groupIDs []string
	for _, g := range p.GroupDeletes {
		groupIDs = append(groupIDs, g.ID)
		if g.ExternalID == "" {
			continue
		}
		// A deleted department's members and children wait for it again,
		// as they would had it never come.
		if err := a.exec(`INSERT INTO pending_members (source, dept_uid, member_id, member_type)
			SELECT ?, ?, member_id, member_type FROM memberships WHERE group_id = ? ON CONFLICT DO NOTHING`,
			a.source, g.ExternalID, g.ID); err != nil {
			return fmt.Errorf("keep the members of department %q: %w", g.ExternalID, err)
		}
	}
	if err := a.inBatches(groupIDs, `DELETE FROM pending_members WHERE member_id IN ?`); err != nil {
		return fmt.Errorf("delete groups: %w", err)
	}
	if err := a.inBatches(groupIDs, `DELETE FROM memberships WHERE member_id IN ? OR group_id IN ?`, inTwice); err != nil {
		return fmt.Errorf("delete groups: %w", err)
	}
	if err := a.inBatches(groupIDs, `DELETE FROM groups WHERE id IN ?`); err != nil {
		return fmt.Errorf("delete groups: %w", err)
	}
	return a.departmentTitles(p)
}

// pending records and resolves memberships in departments that have not
// arrived yet.
func (a *applier) pending(p *reconcile.Plan) error {
	for _, pm := range p.PendingAdds {
		if err := a.exec(`INSERT INTO pending_members (source, dept_uid, member_id, member_type) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, a.source, pm.DeptUID, pm.MemberID, memberType(pm.MemberType)); err != nil {
			return fmt.Errorf("record a membership in department %q: %w", pm.DeptUID, err)
		}
	}
	for _, pm := range p.PendingRemoves {
		if err := a.exec(`DELETE FROM pending_members WHERE source = ? AND dept_uid = ? AND member_id = ?`,
			a.source, pm.DeptUID, pm.MemberID); err != nil {
			return fmt.Errorf("remove a membership in department %q: %w", pm.DeptUID, err)
		}
	}
	// Owners are kept by the department's uid, so that they need no
	// pending state: the department may come later, or go and come back.
	for _, o := range p.OwnerRemoves {
		if err := a.exec(`DELETE FROM department_owners WHERE source = ? AND dept_uid = ? AND user_id = ?`,
			a.source, o.DeptUID, o.MemberID); err != nil {
			return fmt.Errorf("remove an owner of department %q: %w", o.DeptUID, err)
		}
	}
	for _, o := range p.OwnerAdds {
		if err := a.exec(`INSERT INTO department_owners (source, dept_uid, user_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			a.source, o.DeptUID, o.MemberID); err != nil {
			return fmt.Errorf("record an owner of department %q: %w", o.DeptUID, err)
		}
	}
	return nil
}

// departmentTitles gives every user whose main department a plan created,
// renamed or deleted that department's new name, also users the plan does
// not otherwise touch.
func (a *applier) departmentTitles(p *reconcile.Plan) error {
	set := func(uid, title string) error {
		if uid == "" {
			return nil
		}
		if err := a.exec(`UPDATE users SET department = ?, version = version + 1, updated_at = ?
			WHERE source = ? AND department_uid = ? AND department <> ?`, title, a.now, a.source, uid, title); err != nil {
			return fmt.Errorf("update the department of users in %q: %w", uid, err)
		}
		return nil
	}
	for _, g := range slices.Concat(p.GroupCreates, p.GroupRenames) {
		if err := set(g.ExternalID, g.DisplayName); err != nil {
			return err
		}
	}
	for _, g := range p.GroupDeletes {
		if err := set(g.ExternalID, ""); err != nil {
			return err
		}
	}
	return nil
}

func memberType(t string) string {
	if t == "" {
		return "User"
	}
	return t
}

// inTwice marks a statement that takes the batch for two IN lists.
var inTwice = struct{}{}

func (a *applier) exec(sql string, args ...any) error { return a.tx.Exec(sql, args...).Error }

// inBatches runs sql once per batch of ids; the batch is the last
// argument (or the last two, after inTwice).
func (a *applier) inBatches(ids []string, sql string, args ...any) error {
	twice := len(args) > 0 && args[len(args)-1] == inTwice
	if twice {
		args = args[:len(args)-1]
	}
	for start := 0; start < len(ids); start += a.batch {
		chunk := ids[start:min(start+a.batch, len(ids))]
		all := append(slices.Clone(args), chunk)
		if twice {
			all = append(all, chunk)
		}
		if err := a.exec(sql, all...); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) writeUser(c reconcile.Change) error {
	u := &c.After
	sets := `external_id = ?, user_name = ?, user_name_key = ?, given_name = ?, family_name = ?, display_name = ?,
		employee_number = ?, department = ?, department_uid = ?, attrs = ?,
		active = ?, state = ?, state_reason = ?, deleted_at = NULL, version = version + 1, updated_at = ?`
	args := []any{u.ExternalID, u.UserName, reconcile.Key(u.UserName), u.GivenName, u.FamilyName, u.DisplayName,
		u.EmployeeNumber, u.Department, u.DepartmentUID, cmp.Or(u.Attrs, "{}"), u.Active, u.State, u.StateReason, a.now}
	if u.PasswordHash != "" {
		sets += `, password_hash = ?`
		args = append(args, u.PasswordHash)
	}
	if c.Before.Manager != u.Manager {
		sets += `, manager = ?`
		args = append(args, u.Manager)
	}
	where := ` WHERE id = ?`
	args = append(args, u.ID)
	if c.Action == reconcile.Adopt {
		// The user must still be its old owner's, as the plan read it.
		sets += `, source = ?, keyed = TRUE`
		args = append(args[:len(args)-1], a.source, u.ID, c.Before.Source)
		where += ` AND source = ? AND state <> 'deleted'`
	}
	res := a.tx.Exec(`UPDATE users SET `+sets+where, args...)
	if res.Error != nil {
		return fmt.Errorf("update user %q (line %d): %w", u.UserName, c.Line, describeUnique(res.Error, u.UserName))
	}
	if c.Action == reconcile.Adopt && res.RowsAffected != 1 {
		return fmt.Errorf("adopt user %q (line %d) from source %s: the user changed since the plan was computed: %w", u.UserName, c.Line, c.Before.Source, ErrConflict)
	}
	if c.Before.Email != u.Email {
		if err := a.exec(`DELETE FROM user_emails WHERE user_id = ?`, u.ID); err != nil {
			return err
		}
		if err := a.insertContacts("user_emails", []*reconcile.User{u}, func(u *reconcile.User) string { return u.Email }); err != nil {
			return err
		}
	}
	if c.Before.Phone != u.Phone {
		if err := a.exec(`DELETE FROM user_phone_numbers WHERE user_id = ?`, u.ID); err != nil {
			return err
		}
		if err := a.insertContacts("user_phone_numbers", []*reconcile.User{u}, func(u *reconcile.User) string { return u.Phone }); err != nil {
			return err
		}
	}
	return nil
}

const userColumns = `id, source, external_id, user_name, user_name_key, given_name, family_name, display_name,
	employee_number, department, department_uid, active, state, state_reason, password_hash, version, created_at, updated_at`

func (a *applier) createUsers(users []*reconcile.User) error {
	var err error
	if a.postgres {
		err = a.createUsersPG(users)
	} else {
		err = a.jsonRows(len(users), func(i int) []any {
			u := users[i]
			return []any{u.ID, u.ExternalID, u.UserName, reconcile.Key(u.UserName), u.GivenName, u.FamilyName, u.DisplayName,
				u.EmployeeNumber, u.Department, u.DepartmentUID, u.Active, u.State, u.StateReason, u.PasswordHash, cmp.Or(u.Attrs, "{}")}
		}, func(doc string) error {
			return a.exec(`INSERT INTO users (`+userColumns+`, attrs)
				SELECT value->>0, ?, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8,
					value->>9, value->>10, value->>11, value->>12, value->>13, 1, ?, ?, value->>14 FROM json_each(?)`, a.source, a.now, a.now, doc)
		})
	}
	if err != nil {
		return fmt.Errorf("create users: %w", describeUnique(err, ""))
	}
	if err := a.insertContacts("user_emails", users, func(u *reconcile.User) string { return u.Email }); err != nil {
		return err
	}
	if a.keeper != nil {
		passwords := map[string]string{}
		for _, u := range users {
			if u.InitialPassword != "" {
				passwords[u.ID] = u.InitialPassword
			}
		}
		if err := a.keeper.keep(a.tx, passwords); err != nil {
			return err
		}
	}
	return a.insertContacts("user_phone_numbers", users, func(u *reconcile.User) string { return u.Phone })
}

// managers sets the manager of created users that have one (an ldap
// source's), one statement per manager: a manager has many reports, and
// the bulk inserts of every source stay as they are.
func (a *applier) managers(users []*reconcile.User) error {
	reports := map[string][]string{}
	for _, u := range users {
		if u.Manager != "" {
			reports[u.Manager] = append(reports[u.Manager], u.ID)
		}
	}
	for _, m := range slices.Sorted(maps.Keys(reports)) {
		if err := a.inBatches(reports[m], `UPDATE users SET manager = ? WHERE id IN ?`, m); err != nil {
			return fmt.Errorf("set managers: %w", err)
		}
	}
	return nil
}

// jsonChunk is how many rows one SQLite json_each insert carries.
const jsonChunk = 5000

// jsonRows hands insert the rows as JSON arrays of arrays, jsonChunk at a
// time. The pure-Go SQLite driver parses a statement again on every
// execution and binds each parameter in time linear in their number, so
// one statement that reads thousands of rows from a single JSON parameter
// costs a fraction of many multi-row VALUES statements.
func (a *applier) jsonRows(n int, row func(i int) []any, insert func(doc string) error) error {
	for start := 0; start < n; start += jsonChunk {
		end := min(start+jsonChunk, n)
		rows := make([][]any, 0, end-start)
		for i := start; i < end; i++ {
			rows = append(rows, row(i))
		}
		doc, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		if err := insert(string(doc)); err != nil {
			return err
		}
	}
	return nil
}

// pgChunk is how many rows one PostgreSQL unnest insert carries: the
// columns travel as arrays, one parameter each, so chunks can be large.
const pgChunk = 10000

// createUsersPG inserts users column-wise through unnest, which costs
// PostgreSQL about what COPY costs.
func (a *applier) createUsersPG(users []*reconcile.User) error {
	for start := 0; start < len(users); start += pgChunk {
		chunk := users[start:min(start+pgChunk, len(users))]
		n := len(chunk)
		var id, ext, un, unk, gn, fn, dn, en, dep, dui, st, sr, ph = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		act := make([]bool, n)
		doc := make([]string, n)
		for i, u := range chunk {
			id[i], ext[i], un[i], unk[i] = u.ID, u.ExternalID, u.UserName, reconcile.Key(u.UserName)
			gn[i], fn[i], dn[i], en[i] = u.GivenName, u.FamilyName, u.DisplayName, u.EmployeeNumber
			dep[i], dui[i] = u.Department, u.DepartmentUID
			act[i], st[i], sr[i], ph[i] = u.Active, u.State, u.StateReason, u.PasswordHash
			doc[i] = cmp.Or(u.Attrs, "{}")
		}
		err := a.rawExec(`INSERT INTO users (`+userColumns+`, attrs)
			SELECT t.id, $15, t.ext, t.un, t.unk, t.gn, t.fn, t.dn, t.en, t.dep, t.dui, t.act, t.st, t.sr, t.ph, 1, $16, $16, t.doc::jsonb
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
				$9::text[], $10::text[], $11::boolean[], $12::text[], $13::text[], $14::text[], $17::text[])
				AS t(id, ext, un, unk, gn, fn, dn, en, dep, dui, act, st, sr, ph, doc)`,
			id, ext, un, unk, gn, fn, dn, en, dep, dui, act, st, sr, ph, a.source, a.now, doc)
		if err != nil {
			return err
		}
	}
	return nil
}

// rawExec runs a statement with PostgreSQL placeholders on the
// transaction's connection, bypassing GORM, which would expand slice
// arguments into lists.
func (a *applier) rawExec(sql string, args ...any) error {
	_, err := a.tx.Statement.ConnPool.ExecContext(a.ctx, sql, args...)
	return err
}

// insertPairs inserts n rows of two columns (pair gives row i) plus
// constant columns into table, thousands per statement: PostgreSQL takes
// a chunk's columns as two arrays (unnest), SQLite as one JSON document.
// Rows are built a chunk at a time, so a million of them never sit in
// memory twice.
func (a *applier) insertPairs(table, cols, constants string, n int, pair func(i int) (string, string)) error {
	if !a.postgres {
		return a.jsonRows(n, func(i int) []any {
			x, y := pair(i)
			return []any{x, y}
		}, func(doc string) error {
			return a.exec(`INSERT INTO `+table+` (`+cols+`) SELECT value->>0, value->>1, `+constants+` FROM json_each(?)`, doc)
		})
	}
	stmt := `INSERT INTO ` + table + ` (` + cols + `) SELECT t.x, t.y, ` + constants + ` FROM unnest($1::text[], $2::text[]) AS t(x, y)`
	for start := 0; start < n; start += pgChunk {
		end := min(start+pgChunk, n)
		xs, ys := make([]string, 0, end-start), make([]string, 0, end-start)
		for i := start; i < end; i++ {
			x, y := pair(i)
			xs, ys = append(xs, x), append(ys, y)
		}
		if err := a.rawExec(stmt, xs, ys); err != nil {
			return err
		}
	}
	return nil
}

// insertContacts stores each user's value as its primary work e-mail or
// phone number.
func (a *applier) insertContacts(table string, users []*reconcile.User, value func(*reconcile.User) string) error {
	var with []*reconcile.User
	for _, u := range users {
		if value(u) != "" {
			with = append(with, u)
		}
	}
	err := a.insertPairs(table, `user_id, value, type, "primary"`, "'work', TRUE", len(with), func(i int) (string, string) {
		return with[i].ID, value(with[i])
	})
	if err != nil {
		return fmt.Errorf("store %s: %w", table, err)
	}
	return nil
}

// addMemberships adds users' memberships and, for nested departments,
// groups'.
func (a *applier) addMemberships(ms []reconcile.Membership) error {
	if err := a.addMembers(ms, ""); err != nil {
		return err
	}
	return a.addMembers(ms, reconcile.MemberGroup)
}

// addMembers adds the memberships of ms whose MemberType is typ.
func (a *applier) addMembers(ms []reconcile.Membership, typ string) error {
	var order []int32
	for i := range ms {
		if (ms[i].MemberType == reconcile.MemberGroup) == (typ == reconcile.MemberGroup) {
			order = append(order, int32(i))
		}
	}
	// In key order the index inserts touch each page once.
	slices.SortFunc(order, func(x, y int32) int {
		return cmp.Or(strings.Compare(ms[x].GroupID, ms[y].GroupID), strings.Compare(ms[x].UserID, ms[y].UserID))
	})
	err := a.insertPairs("memberships", "group_id, member_id, member_type", "'"+memberType(typ)+"'", len(order),
		func(i int) (string, string) { return ms[order[i]].GroupID, ms[order[i]].UserID })
	if err != nil {
		return fmt.Errorf("add memberships: %w", err)
	}
	return nil
}

// describeUnique turns a violation of the login index into words: two
// writers raced for one login between planning and applying. Other
// unique violations keep the database's own words.
func describeUnique(err error, login string) error {
	if !strings.Contains(err.Error(), "user_name_key") {
		return err
	}
	if login != "" {
		return fmt.Errorf("the login %q is already in use in the directory: %w", login, err)
	}
	return fmt.Errorf("a login is already in use in the directory: %w", err)
}
