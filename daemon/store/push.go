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
// (a new push), a retry passes the seq of the push it repeats.
func (s *Store) CreatePushTask(ctx context.Context, t *Task, body []byte, seq int64) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now().UTC()
	}
	t.Counts, t.Warnings, t.Errors = "{}", "[]", "[]"
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(t).Error; err != nil {
			return err
		}
		if seq == 0 {
			seq = t.ID
		}
		return tx.Exec(`INSERT INTO task_payloads (task_id, source, seq, body) VALUES (?, ?, ?, ?)`,
			t.ID, t.Source, seq, string(body)).Error
	})
	if err != nil {
		return fmt.Errorf("store the push: %w", err)
	}
	return nil
}

// PushPayload returns a push task's stored payload and its seq.
func (s *Store) PushPayload(ctx context.Context, taskID int64) ([]byte, int64, error) {
	var body string
	var seq int64
	err := s.db.WithContext(ctx).Raw(`SELECT body, seq FROM task_payloads WHERE task_id = ?`, taskID).Row().Scan(&body, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fmt.Errorf("the payload of task %d: %w", taskID, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read the payload of task %d: %w", taskID, err)
	}
	return []byte(body), seq, nil
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
}

// PushSnapshot reads what a push of source can touch (see
// reconcile.DeltaSnapshot): the users keys names, and every department and
// pending membership of the source. The revision is read first, as in
// Snapshot.
func (s *Store) PushSnapshot(ctx context.Context, source string, keys PushKeys) (*reconcile.DeltaSnapshot, error) {
	db := s.db.WithContext(ctx)
	snap := &reconcile.DeltaSnapshot{ParentPending: map[string]bool{}}
	if err := db.Raw(`SELECT revision FROM sources WHERE name = ?`, source).Row().Scan(&snap.Revision); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("source %s: %w", source, ErrNotFound)
		}
		return nil, fmt.Errorf("read source %s: %w", source, err)
	}
	if err := s.pushGroups(ctx, source, snap); err != nil {
		return nil, fmt.Errorf("read the departments of %s: %w", source, err)
	}
	ids, err := s.pushUserIDs(ctx, source, keys)
	if err != nil {
		return nil, fmt.Errorf("find the users of %s: %w", source, err)
	}
	if err := s.pushUsers(ctx, source, ids, snap); err != nil {
		return nil, fmt.Errorf("read the users of %s: %w", source, err)
	}
	var logins []string
	for _, u := range snap.Users {
		logins = append(logins, reconcile.Key(u.UserName))
	}
	if snap.Foreign, err = s.ForeignLogins(ctx, source, slices.Concat(keys.Logins, keys.Emails, logins)); err != nil {
		return nil, err
	}
	return snap, nil
}

func (s *Store) pushGroups(ctx context.Context, source string, snap *reconcile.DeltaSnapshot) error {
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
	rows, err = db.Raw(`SELECT dept_uid, member_id, member_type FROM pending_members WHERE source = ?`, source).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var pm reconcile.Pending
		if err := rows.Scan(&pm.DeptUID, &pm.MemberID, &pm.MemberType); err != nil {
			return err
		}
		if pm.MemberType == reconcile.MemberGroup {
			if i, ok := byID[pm.MemberID]; ok {
				snap.Groups[i].Parent = pm.DeptUID
				snap.ParentPending[snap.Groups[i].ExternalID] = true
			}
		} else {
			pm.MemberType = ""
		}
		snap.Pending = append(snap.Pending, pm)
	}
	return rows.Err()
}

// pushUserIDs finds the ids of the source's users that keys name.
func (s *Store) pushUserIDs(ctx context.Context, source string, keys PushKeys) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	lookups := []struct {
		sql  string
		vals []string
	}{
		{`SELECT id FROM users WHERE source = ? AND external_id IN ?`, keys.UIDs},
		{`SELECT id FROM users WHERE source = ? AND user_name_key IN ?`, keys.Logins},
		{`SELECT e.user_id FROM user_emails e JOIN users u ON u.id = e.user_id WHERE u.source = ? AND lower(e.value) IN ?`, keys.Emails},
		{`SELECT p.user_id FROM user_phone_numbers p JOIN users u ON u.id = p.user_id WHERE u.source = ? AND p.value IN ?`, keys.Phones},
	}
	batch := max(s.batchRows(), 100)
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

func (s *Store) pushUsers(ctx context.Context, source string, ids []string, snap *reconcile.DeltaSnapshot) error {
	db := s.db.WithContext(ctx)
	batch := max(s.batchRows(), 100)
	groups := map[string][]string{}
	for start := 0; start < len(ids); start += batch {
		chunk := ids[start:min(start+batch, len(ids))]
		rows, err := db.Raw(`SELECT m.member_id, g.external_id FROM memberships m JOIN groups g ON g.id = m.group_id
			WHERE m.member_id IN ? AND g.source = ?`, chunk, source).Rows()
		if err != nil {
			return err
		}
		for rows.Next() {
			var uid, dept string
			if err := rows.Scan(&uid, &dept); err != nil {
				rows.Close()
				return err
			}
			groups[uid] = append(groups[uid], dept)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = db.Raw(`SELECT u.id, u.external_id, u.user_name, u.given_name, u.family_name, u.display_name,
				u.employee_number, u.department, u.department_uid, u.active, u.state, u.state_reason, u.password_hash <> '',
				COALESCE(e.value, ''), COALESCE(p.value, '')
			FROM users u
			LEFT JOIN user_emails e ON e.user_id = u.id AND e."primary"
			LEFT JOIN user_phone_numbers p ON p.user_id = u.id AND p."primary"
			WHERE u.id IN ? AND u.source = ?`, chunk, source).Rows()
		if err != nil {
			return err
		}
		for rows.Next() {
			var u reconcile.User
			if err := rows.Scan(&u.ID, &u.ExternalID, &u.UserName, &u.GivenName, &u.FamilyName, &u.DisplayName,
				&u.EmployeeNumber, &u.Department, &u.DepartmentUID, &u.Active, &u.State, &u.StateReason, &u.HasPassword,
				&u.Email, &u.Phone); err != nil {
				rows.Close()
				return err
			}
			snap.Users = append(snap.Users, u)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
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
		u.Groups, u.PendingGroups = sorted(groups[u.ID]), sorted(pending[u.ID])
	}
	return nil
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
