package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/rosterd/roster/daemon/password"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/scim"
)

// SCIMWriter returns the store as the UserWriter of the SCIM endpoint
// (SPEC §3.4). Every write is one transaction that also grows the owning
// source's revision, so that a plan computed before it is not applied.
func (s *Store) SCIMWriter() scim.UserWriter { return &scimWriter{s: s} }

type scimWriter struct{ s *Store }

var _ scim.UserWriter = (*scimWriter)(nil)

// scimWriteRow is what a write needs to know of the user it changes.
type scimWriteRow struct {
	id, source, externalID, state string
	version                       int64
}

// CreateUser creates a user of source, or restores the source's
// tombstone with the same externalId.
func (w *scimWriter) CreateUser(ctx context.Context, source string, u *scim.UserWrite) (*scim.User, error) {
	hash, err := hashPassword(u.Password)
	if err != nil {
		return nil, err
	}
	id := ""
	err = w.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := time.Now().UTC()
		if u.ExternalID != "" {
			var old scimWriteRow
			err := tx.Raw(`SELECT id, state FROM users WHERE source = ? AND external_id = ?`, source, u.ExternalID).
				Row().Scan(&old.id, &old.state)
			switch {
			case err == nil && old.state != reconcile.StateDeleted:
				return &scim.UniquenessError{Detail: fmt.Sprintf("externalId %q is already in use by user %q", u.ExternalID, old.id)}
			case err == nil:
				// A deleted user comes back with the same id (SPEC §2).
				id = old.id
				if err := checkUserName(tx, id, u.UserName); err != nil {
					return err
				}
				if err := updateUser(tx, id, u, hash, now, true, 0); err != nil {
					return err
				}
				return finishWrite(tx, source, id, u)
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("look up externalId %q: %w", u.ExternalID, err)
			}
		}
		v7, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("new user id: %w", err)
		}
		id = v7.String()
		if err := checkUserName(tx, id, u.UserName); err != nil {
			return err
		}
		ext := u.ExternalID
		if ext == "" {
			ext = id
		}
		active, state, reason := activeState(u.Active)
		err = tx.Exec(`INSERT INTO users (`+userColumns+`, manager) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, 1, ?, ?, ?)`,
			id, source, ext, u.UserName, reconcile.Key(u.UserName), u.GivenName, u.FamilyName, displayName(u),
			u.EmployeeNumber, u.Department, active, state, reason, hash, now, now, u.Manager).Error
		if err != nil {
			return uniqueError(fmt.Errorf("create user %q: %w", u.UserName, err), u)
		}
		return finishWrite(tx, source, id, u)
	})
	if err != nil {
		return nil, err
	}
	return w.s.SCIM().User(ctx, id, scim.All)
}

// ReplaceUser replaces a user of source.
func (w *scimWriter) ReplaceUser(ctx context.Context, source, id string, u *scim.UserWrite, ifMatch string) (*scim.User, error) {
	hash, err := hashPassword(u.Password)
	if err != nil {
		return nil, err
	}
	err = w.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row, err := liveRow(tx, source, id, ifMatch)
		if err != nil {
			return err
		}
		if u.ExternalID != "" && u.ExternalID != row.externalID {
			var other string
			err := tx.Raw(`SELECT id FROM users WHERE source = ? AND external_id = ? AND id <> ?`, source, u.ExternalID, id).
				Row().Scan(&other)
			if err == nil {
				return &scim.UniquenessError{Detail: fmt.Sprintf("externalId %q is already in use by user %q", u.ExternalID, other)}
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("look up externalId %q: %w", u.ExternalID, err)
			}
		}
		if err := checkUserName(tx, id, u.UserName); err != nil {
			return err
		}
		if err := updateUser(tx, id, u, hash, time.Now().UTC(), false, row.version); err != nil {
			return err
		}
		return finishWrite(tx, source, id, u)
	})
	if err != nil {
		return nil, err
	}
	return w.s.SCIM().User(ctx, id, scim.All)
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

func displayName(u *scim.UserWrite) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return scim.FormattedName(u.GivenName, u.FamilyName)
}

// liveRow reads a live user of source for a write, checking ifMatch.
func liveRow(tx *gorm.DB, source, id, ifMatch string) (*scimWriteRow, error) {
	row := &scimWriteRow{id: id}
	err := tx.Raw(`SELECT source, external_id, state, version FROM users WHERE id = ? AND state <> ?`, id, reconcile.StateDeleted).
		Row().Scan(&row.source, &row.externalID, &row.state, &row.version)
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

// checkUserName finds a live user other than id holding the login,
// whatever its source.
func checkUserName(tx *gorm.DB, id, userName string) error {
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

// updateUser writes every attribute of u over user id: a tombstone when
// restore is set, else the live user at version.
func updateUser(tx *gorm.DB, id string, u *scim.UserWrite, hash string, now time.Time, restore bool, version int64) error {
	active, state, reason := activeState(u.Active)
	sets := `user_name = ?, user_name_key = ?, given_name = ?, family_name = ?, display_name = ?, employee_number = ?,
		department = ?, manager = ?, active = ?, state = ?, state_reason = ?, version = version + 1, updated_at = ?`
	args := []any{u.UserName, reconcile.Key(u.UserName), u.GivenName, u.FamilyName, displayName(u), u.EmployeeNumber,
		u.Department, u.Manager, active, state, reason, now}
	if u.ExternalID != "" {
		sets += `, external_id = ?`
		args = append(args, u.ExternalID)
	}
	if hash != "" {
		sets += `, password_hash = ?`
		args = append(args, hash)
	}
	where := ` WHERE id = ? AND state = 'deleted'`
	args = append(args, id)
	if restore {
		sets += `, deleted_at = NULL`
	} else {
		where = ` WHERE id = ? AND version = ? AND state <> 'deleted'`
		args = append(args, version)
	}
	res := tx.Exec(`UPDATE users SET `+sets+where, args...)
	if res.Error != nil {
		return uniqueError(fmt.Errorf("update user %q: %w", u.UserName, res.Error), u)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("user %q: %w", id, scim.ErrPreconditionFailed)
	}
	return nil
}

// finishWrite replaces the user's e-mails and phone numbers and records
// the change in the source's revision.
func finishWrite(tx *gorm.DB, source, id string, u *scim.UserWrite) error {
	for _, t := range []struct {
		table  string
		values []scim.MultiValue
	}{{"user_emails", u.Emails}, {"user_phone_numbers", u.PhoneNumbers}} {
		if err := tx.Exec(`DELETE FROM `+t.table+` WHERE user_id = ?`, id).Error; err != nil {
			return fmt.Errorf("replace %s of user %s: %w", t.table, id, err)
		}
		for _, v := range t.values {
			primary := v.Primary != nil && *v.Primary
			if err := tx.Exec(`INSERT INTO `+t.table+` (user_id, value, type, "primary") VALUES (?, ?, ?, ?)`,
				id, v.Value, v.Type, primary).Error; err != nil {
				return fmt.Errorf("store %s of user %s: %w", t.table, id, err)
			}
		}
	}
	return bumpRevision(tx, source)
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
		return &scim.UniquenessError{Detail: fmt.Sprintf("userName %q or externalId %q is already in use", u.UserName, u.ExternalID)}
	}
	return err
}
