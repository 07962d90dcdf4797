package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/rosterd/roster/daemon/reconcile"
)

// SetActiveByAdmin sets a user's active flag as an operator asked (SPEC
// §4.4), whatever source owns the user: false makes the user inactive,
// true active, both with the reason "admin", which later syncs keep (see
// reconcile.ReasonAdmin). The user's version and updated_at and the owning
// source's revision grow, all in one transaction, so that a plan computed
// before (a held task) is no longer applied. A user already in that state
// with that reason is returned unchanged. Tombstones and unknown ids are
// ErrNotFound.
func (s *Store) SetActiveByAdmin(ctx context.Context, id string, active bool) (*User, error) {
	state := reconcile.StateInactive
	if active {
		state = reconcile.StateActive
	}
	var u User
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := takeLiveUser(tx, id, &u); err != nil {
			return err
		}
		if u.Active == active && u.State == state && u.StateReason == reconcile.ReasonAdmin {
			return nil
		}
		now := time.Now().UTC()
		res := tx.Exec(`UPDATE users SET active = ?, state = ?, state_reason = ?, version = version + 1, updated_at = ?
			WHERE id = ? AND state <> 'deleted'`, active, state, reconcile.ReasonAdmin, now, id)
		if res.Error != nil {
			return fmt.Errorf("set user %s active=%t: %w", id, active, res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("user %s: %w", id, ErrNotFound)
		}
		if err := tx.Exec(`UPDATE sources SET revision = revision + 1 WHERE name = ?`, u.Source).Error; err != nil {
			return fmt.Errorf("record the change in source %s: %w", u.Source, err)
		}
		return takeLiveUser(tx, id, &u)
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// takeLiveUser reads a user that is not a tombstone.
func takeLiveUser(tx *gorm.DB, id string, u *User) error {
	err := tx.Where("id = ? AND state <> ?", id, reconcile.StateDeleted).Take(u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read user %s: %w", id, err)
	}
	return nil
}
