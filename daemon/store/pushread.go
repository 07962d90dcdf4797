package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/rosterd/roster/daemon/reconcile"
)

// A push is planned and applied in parts (reconcile.PushParts): the
// source's departments are read once, before the apply's transaction
// (PushDepartments); each part's users, and the pending memberships in a
// part's departments, are read inside it (PushUsers, PendingIn), after the
// parts before were written, so that what those parts did is what the
// next one finds. Each read is one statement per look-up, whose values
// travel as one parameter (StreamTx.in): its cost follows the part, not
// the directory.

// PushDepartments reads what every part of a push of source plans
// against: the source's revision (first, as in Snapshot), every department
// of the source with its parent, and the pending memberships of
// departments (children waiting for a parent).
func (s *Store) PushDepartments(ctx context.Context, source string) (*reconcile.DeltaSnapshot, error) {
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
	rows, err = db.Raw(`SELECT dept_uid, member_id, member_type FROM pending_members WHERE source = ? AND member_type = 'Group'`, source).Rows()
	if err != nil {
		return err
	}
	if snap.Pending, err = scanPending(rows, snap.Pending); err != nil {
		return err
	}
	for _, pm := range snap.Pending {
		if i, ok := byID[pm.MemberID]; ok {
			snap.Groups[i].Parent = pm.DeptUID
			snap.ParentPending[snap.Groups[i].ExternalID] = true
		}
	}
	return nil
}

// scanPending adds the rows of a pending_members query (dept_uid,
// member_id, member_type) to into and closes rows.
func scanPending(rows *sql.Rows, into []reconcile.Pending) ([]reconcile.Pending, error) {
	defer rows.Close()
	for rows.Next() {
		var pm reconcile.Pending
		if err := rows.Scan(&pm.DeptUID, &pm.MemberID, &pm.MemberType); err != nil {
			return into, err
		}
		if pm.MemberType != reconcile.MemberGroup {
			pm.MemberType = ""
		}
		into = append(into, pm)
	}
	return into, rows.Err()
}

// PendingIn reads the pending memberships of users (not departments) in
// the departments depts names: those a department of a push's part lets
// in when it is created.
func (st *StreamTx) PendingIn(depts []string) ([]reconcile.Pending, error) {
	if len(depts) == 0 {
		return nil, nil
	}
	rows, err := st.a.tx.Raw(`SELECT dept_uid, member_id, member_type FROM pending_members
		WHERE source = ? AND member_type <> 'Group' AND dept_uid `+st.in(), st.a.source, st.arg(depts)).Rows()
	if err != nil {
		return nil, fmt.Errorf("read the pending memberships of %s: %w", st.a.source, err)
	}
	out, err := scanPending(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("read the pending memberships of %s: %w", st.a.source, err)
	}
	return out, nil
}

// PushKeys are the values a part of a pushed payload finds its users by.
type PushKeys struct {
	UIDs   []string
	Logins []string // lower-cased
	Emails []string // lower-cased
	Phones []string
	// MatchKey is the payload's matchKey: its values (Logins, Emails or
	// Phones) also find users of other sources (DeltaSnapshot.Others).
	MatchKey string
}

// PushUsers reads what the records keys names can touch, as the parts
// written before left it (see reconcile.DeltaSnapshot): the source's users
// found by uid, login, e-mail or phone number, tombstones included, with
// their departments, pending memberships and owned departments; the users
// of other sources the matchKey values find; and the logins that users of
// other sources hold among those the records and their users may take.
func (st *StreamTx) PushUsers(keys PushKeys) (*reconcile.DeltaSnapshot, error) {
	snap := &reconcile.DeltaSnapshot{}
	ids, err := st.pushUserIDs(keys)
	if err != nil {
		return nil, fmt.Errorf("find the users of %s: %w", st.a.source, err)
	}
	if err := st.pushUsers(ids, snap); err != nil {
		return nil, fmt.Errorf("read the users of %s: %w", st.a.source, err)
	}
	if snap.Others, err = st.pushOthers(keys); err != nil {
		return nil, fmt.Errorf("find the users of other sources that the push's matchKey names: %w", err)
	}
	// The logins the records may give their users: usernames, e-mails (the
	// login of a user created without one) and the users' own.
	logins := slices.Concat(keys.Logins, keys.Emails)
	for _, u := range snap.Users {
		logins = append(logins, reconcile.Key(u.UserName))
	}
	slices.Sort(logins)
	logins = slices.Compact(logins)
	snap.Foreign = map[string]string{}
	if len(logins) > 0 {
		rows, err := st.a.tx.Raw(foreignLoginsQuery+` AND user_name_key `+st.in(), st.a.source, st.arg(logins)).Rows()
		if err == nil {
			err = collectForeign(rows, nil, snap.Foreign)
		}
		if err != nil {
			return nil, fmt.Errorf("look up logins: %w", err)
		}
	}
	return snap, nil
}

// pushOthers reads the users of other sources (not deleted) that the
// matchKey values find, as NocoBase's matchKey searches its one users
// table (SPEC §3.3): by login, e-mail or phone number, on their indexes.
func (st *StreamTx) pushOthers(keys PushKeys) ([]reconcile.User, error) {
	var where string
	var vals []string
	switch keys.MatchKey {
	case "username":
		where, vals = `u.user_name_key `+st.in(), keys.Logins
	case "email":
		where, vals = `u.id IN (SELECT user_id FROM user_emails WHERE lower(value) `+st.in()+`)`, keys.Emails
	case "phone":
		where, vals = `u.id IN (SELECT user_id FROM user_phone_numbers WHERE value `+st.in()+`)`, keys.Phones
	}
	if len(vals) == 0 {
		return nil, nil
	}
	var out []reconcile.User
	rows, err := st.a.tx.Raw(othersColumns+` WHERE `+where+` AND u.source <> ? AND u.state <> 'deleted'`, st.arg(vals), st.a.source).Rows()
	if err == nil {
		err = scanOthers(rows, func(u *reconcile.User) { out = append(out, *u) })
	}
	return out, err
}

// pushUserIDs finds the ids of the source's users that keys name.
func (st *StreamTx) pushUserIDs(keys PushKeys) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	lookups := []struct {
		sql  string
		vals []string
	}{
		{`SELECT id FROM users WHERE source = ? AND keyed AND external_id ` + st.in(), keys.UIDs},
		// Live users only, on the partial unique index; tombstones are
		// found by their uid.
		{`SELECT id FROM users WHERE source = ? AND state <> 'deleted' AND user_name_key ` + st.in(), keys.Logins},
		// By value alone, on its index; pushUsers drops other sources' users.
		{`SELECT user_id FROM user_emails WHERE ? <> '' AND lower(value) ` + st.in(), keys.Emails},
		{`SELECT user_id FROM user_phone_numbers WHERE ? <> '' AND value ` + st.in(), keys.Phones},
	}
	for _, l := range lookups {
		if len(l.vals) == 0 {
			continue
		}
		rows, err := st.a.tx.Raw(l.sql, st.a.source, st.arg(l.vals)).Rows()
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
	return ids, nil
}

// pairs adds the rows of query, pairs of a user id and a department uid,
// to into by user.
func (st *StreamTx) pairs(into map[string][]string, query string, args ...any) error {
	rows, err := st.a.tx.Raw(query, args...).Rows()
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

func (st *StreamTx) pushUsers(ids []string, snap *reconcile.DeltaSnapshot) error {
	if len(ids) == 0 {
		return nil
	}
	source, list, arg := st.a.source, st.in(), st.arg(ids)
	groups, owns, pending := map[string][]string{}, map[string][]string{}, map[string][]string{}
	if err := st.pairs(owns, `SELECT user_id, dept_uid FROM department_owners WHERE source = ? AND user_id `+list, source, arg); err != nil {
		return err
	}
	if err := st.pairs(groups, `SELECT m.member_id, g.external_id FROM memberships m JOIN groups g ON g.id = m.group_id
		WHERE g.source = ? AND m.member_id `+list, source, arg); err != nil {
		return err
	}
	if err := st.pairs(pending, `SELECT member_id, dept_uid FROM pending_members
		WHERE source = ? AND member_type <> 'Group' AND member_id `+list, source, arg); err != nil {
		return err
	}
	rows, err := st.a.tx.Raw(`SELECT u.id, u.external_id, u.user_name, u.given_name, u.family_name, u.display_name,
			u.employee_number, u.department, u.department_uid, u.active, u.state, u.state_reason, u.password_hash <> '',
			COALESCE(e.value, ''), COALESCE(p.value, ''), NULLIF(u.attrs, '{}')
		FROM users u
		LEFT JOIN user_emails e ON e.user_id = u.id AND e."primary"
		LEFT JOIN user_phone_numbers p ON p.user_id = u.id AND p."primary"
		WHERE u.source = ? AND u.id `+list, source, arg).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var u reconcile.User
		var doc []byte
		if err := rows.Scan(&u.ID, &u.ExternalID, &u.UserName, &u.GivenName, &u.FamilyName, &u.DisplayName,
			&u.EmployeeNumber, &u.Department, &u.DepartmentUID, &u.Active, &u.State, &u.StateReason, &u.HasPassword,
			&u.Email, &u.Phone, &doc); err != nil {
			return err
		}
		if u.Attrs, err = canonicalAttrs(doc); err != nil {
			return fmt.Errorf("user %s: %w", u.ID, err)
		}
		u.Groups, u.PendingGroups, u.Owns = sorted(groups[u.ID]), sorted(pending[u.ID]), sorted(owns[u.ID])
		snap.Users = append(snap.Users, u)
	}
	return rows.Err()
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
