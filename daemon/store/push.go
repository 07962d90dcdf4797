package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/rosterd/roster/daemon/reconcile"
)

// CreatePushTask records a queued push task and its payload in one
// transaction: once it returns, the push survives a crash and any replica
// can run it. seq orders the source's pushes; 0 gives the task its own id
// (a new push), a retry passes the seq of the push it repeats. limit, when
// above zero, bounds the records of the source's pushes accepted and not
// applied yet: a push that would take them beyond it is refused with a
// *QueueFullError, unless none wait (a push larger than the limit must
// get in some time). keep, when set, runs inside the transaction once the
// task has its id: it writes the raw record and sets t.RawRecord, so that
// no process can run the push before its raw record exists; its error
// stores nothing.
func (s *Store) CreatePushTask(ctx context.Context, t *Task, body []byte, records int, seq int64, limit int, keep func(*Task) error) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now().UTC()
	}
	t.Counts, t.Warnings, t.Errors = "{}", "[]", "[]"
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if limit > 0 {
			if err := s.reserve(tx, t.Source, records, limit); err != nil {
				return err
			}
		}
		if err := tx.Create(t).Error; err != nil {
			return err
		}
		if seq == 0 {
			seq = t.ID
		}
		if err := tx.Exec(`INSERT INTO task_payloads (task_id, source, seq, records, body) VALUES (?, ?, ?, ?, ?)`,
			t.ID, t.Source, seq, records, string(body)).Error; err != nil {
			return err
		}
		if keep == nil {
			return nil
		}
		if err := keep(t); err != nil {
			return errKeep{err}
		}
		return tx.Exec(`UPDATE tasks SET raw_record = ? WHERE id = ?`, t.RawRecord, t.ID).Error
	})
	var ke errKeep
	var full *QueueFullError
	switch {
	case errors.As(err, &ke):
		return ke.error
	case errors.As(err, &full):
		return full
	}
	if err != nil {
		return fmt.Errorf("store the push: %w", err)
	}
	return nil
}

// errKeep carries the error of CreatePushTask's keep unchanged.
type errKeep struct{ error }

func (e errKeep) Unwrap() error { return e.error }

// QueueFullError refuses a push that would take the records of the
// source's pushes waiting to be applied beyond the limit.
type QueueFullError struct {
	Waiting int
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("%d pushed records are waiting to be applied", e.Waiting)
}

// reserve admits records more records into the source's queue, inside the
// transaction that stores them, or refuses them with a *QueueFullError.
// The count and the insert that follows are one step for every process on
// the database: SQLite's write transactions begin with the write lock
// (BEGIN IMMEDIATE), and on PostgreSQL a transaction-scoped advisory lock
// per source orders the pushes that count; a row lock on the source would
// also wait for every apply, which updates that row.
func (s *Store) reserve(tx *gorm.DB, source string, records, limit int) error {
	if s.driver == Postgres {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended('roster/' || current_database() || '/' || current_schema() || '/push-queue/' || ?, 0))`,
			source).Error; err != nil {
			return fmt.Errorf("take the push queue lock of %s: %w", source, err)
		}
	}
	waiting, err := waitingPushRecords(tx, source)
	if err != nil {
		return err
	}
	if waiting > 0 && waiting+records > limit {
		return &QueueFullError{Waiting: waiting}
	}
	return nil
}

// WaitingPushRecords counts the records of the source's pushes that are
// accepted and not applied yet.
func (s *Store) WaitingPushRecords(ctx context.Context, source string) (int, error) {
	return waitingPushRecords(s.db.WithContext(ctx), source)
}

func waitingPushRecords(db *gorm.DB, source string) (int, error) {
	var n int
	err := db.Raw(`SELECT COALESCE(SUM(p.records), 0) FROM task_payloads p JOIN tasks t ON t.id = p.task_id
		WHERE p.source = ? AND t.status IN (?, ?)`, source, StatusQueued, StatusRunning).Row().Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the waiting pushes of %s: %w", source, err)
	}
	return n, nil
}

// PushesWaiting reports whether the source has a task queued or running:
// a push accepted and not applied yet, or one a process was applying when
// it died. One look through the tasks' (source, status) index.
func (s *Store) PushesWaiting(ctx context.Context, source string) (bool, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Raw(`SELECT id FROM tasks WHERE source = ? AND status IN (?, ?) LIMIT 1`,
		source, StatusQueued, StatusRunning).Scan(&ids).Error
	if err != nil {
		return false, fmt.Errorf("look for waiting pushes of %s: %w", source, err)
	}
	return len(ids) > 0, nil
}

// StoredPush is a push as the store keeps it until it is applied.
type StoredPush struct {
	Body    []byte
	Seq     int64 // its place in the source's order
	Records int
}

// PushPayload returns a push task's stored payload.
func (s *Store) PushPayload(ctx context.Context, taskID int64) (*StoredPush, error) {
	var body string
	p := &StoredPush{}
	err := s.db.WithContext(ctx).Raw(`SELECT body, seq, records FROM task_payloads WHERE task_id = ?`, taskID).Row().
		Scan(&body, &p.Seq, &p.Records)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("the payload of task %d: %w", taskID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read the payload of task %d: %w", taskID, err)
	}
	p.Body = []byte(body)
	return p, nil
}

// NextPushTask returns the source's queued push that comes first, or nil.
func (s *Store) NextPushTask(ctx context.Context, source string) (*Task, error) {
	var t Task
	err := s.db.WithContext(ctx).Raw(`SELECT t.* FROM tasks t JOIN task_payloads p ON p.task_id = t.id
		WHERE p.source = ? AND t.status = ? ORDER BY p.seq, t.id LIMIT 1`, source, StatusQueued).Scan(&t).Error
	if err != nil {
		return nil, fmt.Errorf("find queued pushes of %s: %w", source, err)
	}
	if t.ID == 0 {
		return nil, nil
	}
	return &t, nil
}

// PushKeys are the values a pushed payload finds its users by.
type PushKeys struct {
	UIDs   []string
	Logins []string // lower-cased
	Emails []string // lower-cased
	Phones []string
	// Depts are the uids of the departments a department payload names.
	Depts []string
	// MatchKey is the payload's matchKey: its values (Logins, Emails or
	// Phones) also find users of other sources (DeltaSnapshot.Others).
	MatchKey string
}

// PushSnapshot reads what a push of source can touch (see
// reconcile.DeltaSnapshot): the users keys names with their pending
// memberships, every department of the source, and the pending
// memberships of departments (children waiting for a parent) and in the
// departments keys names. Its cost follows the payload, not the
// directory. The revision is read first, as in Snapshot.
func (s *Store) PushSnapshot(ctx context.Context, source string, keys PushKeys) (*reconcile.DeltaSnapshot, error) {
	db := s.db.WithContext(ctx)
	snap := &reconcile.DeltaSnapshot{ParentPending: map[string]bool{}}
	if err := db.Raw(`SELECT revision FROM sources WHERE name = ?`, source).Row().Scan(&snap.Revision); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("source %s: %w", source, ErrNotFound)
		}
		return nil, fmt.Errorf("read source %s: %w", source, err)
	}
	if err := s.pushGroups(ctx, source, keys.Depts, snap); err != nil {
		return nil, fmt.Errorf("read the departments of %s: %w", source, err)
	}
	ids, err := s.pushUserIDs(ctx, source, keys)
	if err != nil {
		return nil, fmt.Errorf("find the users of %s: %w", source, err)
	}
	if err := s.pushUsers(ctx, source, ids, snap); err != nil {
		return nil, fmt.Errorf("read the users of %s: %w", source, err)
	}
	if snap.Others, err = s.pushOthers(ctx, source, keys); err != nil {
		return nil, fmt.Errorf("find the users of other sources that the push's matchKey names: %w", err)
	}
	// The logins the payload may give its users: usernames, e-mails (the
	// login of a user created without one) and the users' own. Looked up
	// by index: a push costs what its payload holds, not the directory.
	logins := slices.Concat(keys.Logins, keys.Emails)
	for _, u := range snap.Users {
		logins = append(logins, reconcile.Key(u.UserName))
	}
	slices.Sort(logins)
	if snap.Foreign, err = s.foreignLoginsByIndex(ctx, source, slices.Compact(logins)); err != nil {
		return nil, err
	}
	return snap, nil
}

func (s *Store) pushGroups(ctx context.Context, source string, depts []string, snap *reconcile.DeltaSnapshot) error {
	db := s.db.WithContext(ctx)
	rows, err := db.Raw(`SELECT id, external_id, display_name FROM groups WHERE source = ?`, source).Rows()
	if err != nil {
		return err
	}
	byID := map[string]int{}
	for rows.Next() {
		var g reconcile.Group
		if err := rows.Scan(&g.ID, &g.ExternalID, &g.DisplayName); err != nil {
			rows.Close()
			return err
		}
		byID[g.ID] = len(snap.Groups)
		snap.Groups = append(snap.Groups, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = db.Raw(`SELECT m.member_id, p.external_id FROM memberships m JOIN groups p ON p.id = m.group_id
		WHERE p.source = ? AND m.member_type = 'Group'`, source).Rows()
	if err != nil {
		return err
	}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			rows.Close()
			return err
		}
		if i, ok := byID[child]; ok {
			snap.Groups[i].Parent = parent
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if err := s.pendingRows(ctx, snap, `source = ? AND member_type = 'Group'`, source); err != nil {
		return err
	}
	for _, pm := range snap.Pending {
		if i, ok := byID[pm.MemberID]; ok {
			snap.Groups[i].Parent = pm.DeptUID
			snap.ParentPending[snap.Groups[i].ExternalID] = true
		}
	}
	batch := max(s.batchRows(), 500)
	for start := 0; start < len(depts); start += batch {
		chunk := depts[start:min(start+batch, len(depts))]
		if err := s.pendingRows(ctx, snap, `source = ? AND dept_uid IN ? AND member_type <> 'Group'`, source, chunk); err != nil {
			return err
		}
	}
	return nil
}

// pendingRows adds the pending memberships that where selects. The three
// selections never overlap: children's rows (member_type Group), rows in
// the departments a department payload names (not Group), rows of the
// users a user payload names (a payload is one or the other).
func (s *Store) pendingRows(ctx context.Context, snap *reconcile.DeltaSnapshot, where string, args ...any) error {
	rows, err := s.db.WithContext(ctx).Raw(`SELECT dept_uid, member_id, member_type FROM pending_members WHERE `+where, args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var pm reconcile.Pending
		if err := rows.Scan(&pm.DeptUID, &pm.MemberID, &pm.MemberType); err != nil {
			return err
		}
		if pm.MemberType != reconcile.MemberGroup {
			pm.MemberType = ""
		}
		snap.Pending = append(snap.Pending, pm)
	}
	return rows.Err()
}

// pushOthers reads the users of other sources (not deleted) that the
// payload's matchKey values find, as NocoBase's matchKey searches its one
// users table (SPEC §3.3): by login, e-mail or phone number, on their
// indexes.
func (s *Store) pushOthers(ctx context.Context, source string, keys PushKeys) ([]reconcile.User, error) {
	var where string
	var vals []string
	switch keys.MatchKey {
	case "username":
		where, vals = `u.user_name_key IN ?`, keys.Logins
	case "email":
		where, vals = `u.id IN (SELECT user_id FROM user_emails WHERE lower(value) IN ?)`, keys.Emails
	case "phone":
		where, vals = `u.id IN (SELECT user_id FROM user_phone_numbers WHERE value IN ?)`, keys.Phones
	default:
		return nil, nil
	}
	var out []reconcile.User
	batch := max(s.batchRows(), 500)
	for start := 0; start < len(vals); start += batch {
		rows, err := s.db.WithContext(ctx).Raw(othersColumns+` WHERE `+where+` AND u.source <> ? AND u.state <> 'deleted'`,
			vals[start:min(start+batch, len(vals))], source).Rows()
		if err == nil {
			err = scanOthers(rows, func(u *reconcile.User) { out = append(out, *u) })
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pushUserIDs finds the ids of the source's users that keys name.
func (s *Store) pushUserIDs(ctx context.Context, source string, keys PushKeys) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	lookups := []struct {
		sql  string
		vals []string
	}{
		{`SELECT id FROM users WHERE source = ? AND keyed AND external_id IN ?`, keys.UIDs},
		// Live users only, on the partial unique index; tombstones are
		// found by their uid.
		{`SELECT id FROM users WHERE source = ? AND user_name_key IN ? AND state <> 'deleted'`, keys.Logins},
		// By value alone, on its index; pushUsers drops other sources' users.
		{`SELECT user_id FROM user_emails WHERE ? <> '' AND lower(value) IN ?`, keys.Emails},
		{`SELECT user_id FROM user_phone_numbers WHERE ? <> '' AND value IN ?`, keys.Phones},
	}
	batch := max(s.batchRows(), 500)
	for _, l := range lookups {
		for start := 0; start < len(l.vals); start += batch {
			rows, err := s.db.WithContext(ctx).Raw(l.sql, source, l.vals[start:min(start+batch, len(l.vals))]).Rows()
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return nil, err
				}
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
	}
	return ids, nil
}

// groupPairs adds the rows of q, pairs of a user id and a department
// uid, to into by user.
func groupPairs(q *gorm.DB, into map[string][]string) error {
	rows, err := q.Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var uid, dept string
		if err := rows.Scan(&uid, &dept); err != nil {
			return err
		}
		into[uid] = append(into[uid], dept)
	}
	return rows.Err()
}

func (s *Store) pushUsers(ctx context.Context, source string, ids []string, snap *reconcile.DeltaSnapshot) error {
	db := s.db.WithContext(ctx)
	batch := max(s.batchRows(), 500)
	groups, owns := map[string][]string{}, map[string][]string{}
	for start := 0; start < len(ids); start += batch {
		chunk := ids[start:min(start+batch, len(ids))]
		if err := groupPairs(db.Raw(`SELECT user_id, dept_uid FROM department_owners WHERE user_id IN ? AND source = ?`, chunk, source), owns); err != nil {
			return err
		}
		if err := groupPairs(db.Raw(`SELECT m.member_id, g.external_id FROM memberships m JOIN groups g ON g.id = m.group_id
			WHERE m.member_id IN ? AND g.source = ?`, chunk, source), groups); err != nil {
			return err
		}
		rows, err := db.Raw(`SELECT u.id, u.external_id, u.user_name, u.given_name, u.family_name, u.display_name,
				u.employee_number, u.department, u.department_uid, u.active, u.state, u.state_reason, u.password_hash <> '',
				COALESCE(e.value, ''), COALESCE(p.value, ''), NULLIF(u.attrs, '{}')
			FROM users u
			LEFT JOIN user_emails e ON e.user_id = u.id AND e."primary"
			LEFT JOIN user_phone_numbers p ON p.user_id = u.id AND p."primary"
			WHERE u.id IN ? AND u.source = ?`, chunk, source).Rows()
		if err != nil {
			return err
		}
		for rows.Next() {
			var u reconcile.User
			var doc []byte
			if err := rows.Scan(&u.ID, &u.ExternalID, &u.UserName, &u.GivenName, &u.FamilyName, &u.DisplayName,
				&u.EmployeeNumber, &u.Department, &u.DepartmentUID, &u.Active, &u.State, &u.StateReason, &u.HasPassword,
				&u.Email, &u.Phone, &doc); err != nil {
				rows.Close()
				return err
			}
			if u.Attrs, err = canonicalAttrs(doc); err != nil {
				rows.Close()
				return fmt.Errorf("user %s: %w", u.ID, err)
			}
			snap.Users = append(snap.Users, u)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := s.pendingRows(ctx, snap, `source = ? AND member_id IN ?`, source, chunk); err != nil {
			return err
		}
	}
	pending := map[string][]string{}
	for _, pm := range snap.Pending {
		if pm.MemberType == "" {
			pending[pm.MemberID] = append(pending[pm.MemberID], pm.DeptUID)
		}
	}
	for i := range snap.Users {
		u := &snap.Users[i]
		u.Groups, u.PendingGroups, u.Owns = sorted(groups[u.ID]), sorted(pending[u.ID]), sorted(owns[u.ID])
	}
	return nil
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
