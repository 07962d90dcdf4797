package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/daemon/password"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/sources"
)

// SCIMWriter returns the store as the UserWriter of the SCIM endpoint
// (SPEC §3.4). Every write is one transaction that also grows the owning
// source's revision, so that a plan computed before it is not applied.
func (s *Store) SCIMWriter() scim.UserWriter { return &scimWriter{s: s} }

type scimWriter struct{ s *Store }

var _ scim.UserWriter = (*scimWriter)(nil)

// scimWriteRow is what a write needs to know of the user it changes.
type scimWriteRow struct {
	id, source, state string
	version           int64
}

// scimUserRow is everything stored of a user that a SCIM write sets: the
// columns, the attribute document and the e-mails and phone numbers. Two
// rows are equal when the user they describe is the same, which is how a
// write that changes nothing is told apart (RFC 7644 §3.5.2).
type scimUserRow struct {
	externalID, userName, given, family, display, employee, department, manager string
	active                                                                      bool
	state, reason                                                               string
	attrs                                                                       attrs.Doc
	emails, phones                                                              []scimValue
}

// scimValue is one stored e-mail or phone number.
type scimValue struct {
	value, display, typ string
	primary             bool
}

// userRow is the row a write of u leaves; cur is the stored row of the
// user it replaces, nil on create.
func userRow(u *scim.UserWrite, cur *scimUserRow) scimUserRow {
	r := scimUserRow{externalID: u.ExternalID, userName: u.UserName, display: u.DisplayName, attrs: attrsOf(&u.User)}
	if n := u.Name; n != nil {
		r.given, r.family = n.GivenName, n.FamilyName
	}
	if r.display == "" {
		r.display = scim.FormattedName(r.given, r.family)
	}
	if e := u.Enterprise; e != nil {
		r.employee, r.department = e.EmployeeNumber, e.Department
		if e.Manager != nil {
			r.manager = e.Manager.Value
		}
	}
	switch {
	case u.Active != nil:
		r.active, r.state, r.reason = activeState(*u.Active)
	case cur != nil:
		// A write that does not name active leaves the state alone.
		r.active, r.state, r.reason = cur.active, cur.state, cur.reason
	default:
		r.active, r.state, r.reason = activeState(true)
	}
	r.emails, r.phones = scimValues(u.Emails), scimValues(u.PhoneNumbers)
	return r
}

func scimValues(vs []scim.MultiValue) []scimValue {
	out := make([]scimValue, 0, len(vs))
	for _, v := range vs {
		out = append(out, scimValue{value: v.Value, display: v.Display, typ: v.Type, primary: v.Primary != nil && *v.Primary})
	}
	slices.SortFunc(out, func(a, b scimValue) int { return strings.Compare(a.value, b.value) })
	return out
}

// CreateUser creates a user of source. It never brings a tombstone back
// (RFC 7644 §3.6): a deleted user's userName and externalId are free, and
// the new user gets a new id.
func (w *scimWriter) CreateUser(ctx context.Context, source string, u *scim.UserWrite) (*scim.User, error) {
	u = nfcUserName(u)
	hash, err := hashPassword(u.Password)
	if err != nil {
		return nil, err
	}
	v7, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new user id: %w", err)
	}
	id := v7.String()
	row := userRow(u, nil)
	doc, err := encodeAttrs(&row.attrs)
	if err != nil {
		return nil, err
	}
	err = w.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := time.Now().UTC()
		if err := checkUserName(tx, id, u.UserName); err != nil {
			return err
		}
		err = tx.Exec(`INSERT INTO users (`+userColumns+`, manager, attrs, keyed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, 1, ?, ?, ?, ?, FALSE)`,
			id, source, row.externalID, row.userName, reconcile.Key(row.userName), row.given, row.family, row.display,
			row.employee, row.department, row.active, row.state, row.reason, hash, now, now, row.manager, doc).Error
		if err != nil {
			return uniqueError(fmt.Errorf("create user %q: %w", u.UserName, err), u)
		}
		if err := writeValues(tx, id, row); err != nil {
			return err
		}
		if u.Password != "" {
			if err := w.s.keeper.Load().keep(tx, map[string]string{id: u.Password}); err != nil {
				return err
			}
		}
		return bumpRevision(tx, source)
	})
	if err != nil {
		return nil, err
	}
	return w.s.SCIM().User(ctx, id, scim.All)
}

// ReplaceUser replaces a user of source. A replacement that changes
// nothing writes nothing: version and lastModified stay.
func (w *scimWriter) ReplaceUser(ctx context.Context, source, id string, u *scim.UserWrite, ifMatch string) (*scim.User, error) {
	u = nfcUserName(u)
	hash, err := hashPassword(u.Password)
	if err != nil {
		return nil, err
	}
	err = w.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row, err := liveRow(tx, source, id, ifMatch)
		if err != nil {
			return err
		}
		cur, err := storedUserRow(tx, id)
		if err != nil {
			return err
		}
		next := userRow(u, cur)
		if hash == "" && reflect.DeepEqual(*cur, next) {
			return nil
		}
		if err := checkUserName(tx, id, u.UserName); err != nil {
			return err
		}
		if err := updateUser(tx, id, &next, hash, time.Now().UTC(), row.version); err != nil {
			return uniqueError(err, u)
		}
		if !slices.Equal(cur.emails, next.emails) || !slices.Equal(cur.phones, next.phones) {
			if err := writeValues(tx, id, next); err != nil {
				return err
			}
		}
		return bumpRevision(tx, source)
	})
	if err != nil {
		return nil, err
	}
	return w.s.SCIM().User(ctx, id, scim.All)
}

// storedUserRow reads what a SCIM write compares with.
func storedUserRow(tx *gorm.DB, id string) (*scimUserRow, error) {
	var r scimUserRow
	var doc []byte
	err := tx.Raw(`SELECT external_id, user_name, given_name, family_name, display_name, employee_number, department,
		manager, active, state, state_reason, attrs FROM users WHERE id = ?`, id).Row().
		Scan(&r.externalID, &r.userName, &r.given, &r.family, &r.display, &r.employee, &r.department,
			&r.manager, &r.active, &r.state, &r.reason, &doc)
	if err != nil {
		return nil, fmt.Errorf("read user %s: %w", id, err)
	}
	if r.attrs, err = attrs.Decode(doc); err != nil {
		return nil, fmt.Errorf("user %s: %w", id, err)
	}
	for _, t := range []struct {
		table string
		into  *[]scimValue
	}{{"user_emails", &r.emails}, {"user_phone_numbers", &r.phones}} {
		rows, err := tx.Raw(`SELECT value, display, type, "primary" FROM `+t.table+` WHERE user_id = ?`, id).Rows()
		if err != nil {
			return nil, fmt.Errorf("read %s of user %s: %w", t.table, id, err)
		}
		*t.into = []scimValue{}
		for rows.Next() {
			var v scimValue
			if err := rows.Scan(&v.value, &v.display, &v.typ, &v.primary); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read %s of user %s: %w", t.table, id, err)
			}
			*t.into = append(*t.into, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read %s of user %s: %w", t.table, id, err)
		}
		slices.SortFunc(*t.into, func(a, b scimValue) int { return strings.Compare(a.value, b.value) })
	}
	return &r, nil
}

// DeleteUser makes a user of source a tombstone, as an orphan delete
// does, and removes its memberships.
func (w *scimWriter) DeleteUser(ctx context.Context, source, id string, ifMatch string) error {
	return w.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row, err := liveRow(tx, source, id, ifMatch)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		res := tx.Exec(`UPDATE users SET active = FALSE, state = ?, state_reason = ?, version = version + 1,
			updated_at = ?, deleted_at = ? WHERE id = ? AND version = ?`,
			reconcile.StateDeleted, reconcile.ReasonSource, now, now, id, row.version)
		if res.Error != nil {
			return fmt.Errorf("delete user %s: %w", id, res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("user %s: %w", id, scim.ErrPreconditionFailed)
		}
		// The groups the user leaves change: their members do.
		if err := tx.Exec(`UPDATE groups SET version = version + 1, updated_at = ?
			WHERE id IN (SELECT group_id FROM memberships WHERE member_id = ?)`, now, id).Error; err != nil {
			return fmt.Errorf("record the change in the groups of user %s: %w", id, err)
		}
		if err := tx.Exec(`DELETE FROM memberships WHERE member_id = ?`, id).Error; err != nil {
			return fmt.Errorf("remove the memberships of user %s: %w", id, err)
		}
		return bumpRevision(tx, source)
	})
}

// SetUserActive is SetActiveByAdmin in SCIM terms.
func (w *scimWriter) SetUserActive(ctx context.Context, id string, active bool) (*scim.User, error) {
	if _, err := w.s.SetActiveByAdmin(ctx, id, active); err != nil {
		return nil, scimNotFound(err)
	}
	return w.s.SCIM().User(ctx, id, scim.All)
}

// UserOwner returns the source of a live user.
func (w *scimWriter) UserOwner(ctx context.Context, id string) (string, error) {
	var owner string
	err := w.s.db.WithContext(ctx).Raw(`SELECT source FROM users WHERE id = ? AND state <> ?`, id, reconcile.StateDeleted).
		Row().Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("user %q: %w", id, scim.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read user %s: %w", id, err)
	}
	return owner, nil
}

// scimNotFound makes the store's ErrNotFound the SCIM layer's.
func scimNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w (%w)", scim.ErrNotFound, err)
	}
	return err
}

func hashPassword(pw string) (string, error) {
	if pw == "" {
		return "", nil
	}
	h, err := password.Hash(pw)
	if err != nil {
		return "", fmt.Errorf("hash the password: %w", err)
	}
	return h, nil
}

func activeState(active bool) (bool, string, string) {
	if active {
		return true, reconcile.StateActive, ""
	}
	return false, reconcile.StateInactive, reconcile.ReasonSource
}

// liveRow reads a live user of source for a write, checking ifMatch.
func liveRow(tx *gorm.DB, source, id, ifMatch string) (*scimWriteRow, error) {
	row := &scimWriteRow{id: id}
	err := tx.Raw(`SELECT source, state, version FROM users WHERE id = ? AND state <> ?`, id, reconcile.StateDeleted).
		Row().Scan(&row.source, &row.state, &row.version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %q: %w", id, scim.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read user %s: %w", id, err)
	}
	if row.source != source {
		return nil, &scim.OwnerError{Resource: "user", ID: id, Owner: row.source}
	}
	if ifMatch != "" && !scim.IfMatch(ifMatch, scim.WeakVersion(row.version)) {
		return nil, fmt.Errorf("user %q: %w", id, scim.ErrPreconditionFailed)
	}
	return row, nil
}

// nfcUserName returns u with its userName in normalization form C, as
// every source stores logins (sources.NormalizeLogin), leaving the
// caller's value alone.
func nfcUserName(u *scim.UserWrite) *scim.UserWrite {
	if n := sources.NormalizeLogin(u.UserName); n != u.UserName {
		c := *u
		c.UserName = n
		return &c
	}
	return u
}

// checkUserName applies the identifier profile of every source's logins
// (sources.LoginProblem) and finds a live user other than id holding the
// login, whatever its source.
func checkUserName(tx *gorm.DB, id, userName string) error {
	if why := sources.LoginProblem(userName); why != "" {
		return &scim.ValueError{Detail: fmt.Sprintf("userName %s %s", sources.QuoteValue(userName), why)}
	}
	var other, src string
	err := tx.Raw(`SELECT id, source FROM users WHERE user_name_key = ? AND state <> ? AND id <> ?`,
		reconcile.Key(userName), reconcile.StateDeleted, id).Row().Scan(&other, &src)
	if err == nil {
		return &scim.UniquenessError{Detail: fmt.Sprintf("userName %q is already in use by user %q of source %q", userName, other, src)}
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("look up userName %q: %w", userName, err)
	}
	return nil
}

// updateUser writes row over the live user id at version.
func updateUser(tx *gorm.DB, id string, row *scimUserRow, hash string, now time.Time, version int64) error {
	doc, err := encodeAttrs(&row.attrs)
	if err != nil {
		return err
	}
	sets := `external_id = ?, user_name = ?, user_name_key = ?, given_name = ?, family_name = ?, display_name = ?,
		employee_number = ?, department = ?, manager = ?, active = ?, state = ?, state_reason = ?, attrs = ?,
		version = version + 1, updated_at = ?`
	args := []any{row.externalID, row.userName, reconcile.Key(row.userName), row.given, row.family, row.display,
		row.employee, row.department, row.manager, row.active, row.state, row.reason, doc, now}
	if hash != "" {
		sets += `, password_hash = ?`
		args = append(args, hash)
	}
	res := tx.Exec(`UPDATE users SET `+sets+` WHERE id = ? AND version = ? AND state <> 'deleted'`, append(args, id, version)...)
	if res.Error != nil {
		return fmt.Errorf("update user %q: %w", row.userName, res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("user %q: %w", id, scim.ErrPreconditionFailed)
	}
	return nil
}

// writeValues replaces the user's e-mails and phone numbers.
func writeValues(tx *gorm.DB, id string, row scimUserRow) error {
	for _, t := range []struct {
		table  string
		values []scimValue
	}{{"user_emails", row.emails}, {"user_phone_numbers", row.phones}} {
		if err := tx.Exec(`DELETE FROM `+t.table+` WHERE user_id = ?`, id).Error; err != nil {
			return fmt.Errorf("replace %s of user %s: %w", t.table, id, err)
		}
		for _, v := range t.values {
			if err := tx.Exec(`INSERT INTO `+t.table+` (user_id, value, display, type, "primary") VALUES (?, ?, ?, ?, ?)`,
				id, v.value, v.display, v.typ, v.primary).Error; err != nil {
				return fmt.Errorf("store %s of user %s: %w", t.table, id, err)
			}
		}
	}
	return nil
}

func bumpRevision(tx *gorm.DB, source string) error {
	res := tx.Exec(`UPDATE sources SET revision = revision + 1 WHERE name = ?`, source)
	if res.Error != nil {
		return fmt.Errorf("record the change in source %s: %w", source, res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("source %s: %w", source, ErrNotFound)
	}
	return nil
}

// uniqueError turns a unique-index violation, a writer racing this one,
// into the 409 the client should see.
func uniqueError(err error, u *scim.UserWrite) error {
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, "unique") || strings.Contains(msg, "duplicate key") {
		return &scim.UniquenessError{Detail: fmt.Sprintf("userName %q is already in use", u.UserName)}
	}
	return err
}
