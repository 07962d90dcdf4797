package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
)

// Initial passwords for sinks (SPEC §12, docs/sinks.md): when secrets.key
// is set and sinks ask for passwords, the clear initial password of a user
// created by a sync, a push or a SCIM POST is also kept, encrypted with
// AES-256-GCM (a random nonce, the user's id as additional data, so that
// a ciphertext moved to another user does not open), in the transaction
// that creates the user. Each sink that asked has a row in
// initial_password_sinks; the password row goes with the last of them.

// ErrPasswordUnreadable is returned for a kept password the key no
// longer opens (secrets.key changed since it was kept).
var ErrPasswordUnreadable = errors.New("the kept initial password cannot be decrypted with the current secrets.key")

type passwordKeeper struct {
	aead  cipher.AEAD
	sinks []string
}

// KeepInitialPasswords makes the store keep the initial passwords of the
// users it creates from now on, for sinks, encrypted with key (32 bytes).
// With a nil key or no sink, none is kept (hashes only); a key is still
// needed to read what was kept, so a nil key with sinks keeps nothing and
// reads nothing.
func (s *Store) KeepInitialPasswords(key []byte, sinks []string) error {
	if key == nil {
		s.keeper.Store(nil)
		return nil
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("secrets.key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("secrets.key: %w", err)
	}
	s.keeper.Store(&passwordKeeper{aead: aead, sinks: slices.Clone(sinks)})
	return nil
}

// KeepsInitialPasswords reports whether the store keeps the initial
// passwords of new users, so that callers keep the clear text until the
// user is written.
func (s *Store) KeepsInitialPasswords() bool {
	k := s.keeper.Load()
	return k != nil && len(k.sinks) > 0
}

// keep records the passwords (user id → clear text) of users created in
// tx, for every sink that asks for them.
func (k *passwordKeeper) keep(tx *gorm.DB, passwords map[string]string) error {
	if k == nil || len(k.sinks) == 0 || len(passwords) == 0 {
		return nil
	}
	now := time.Now().UTC()
	for id, pw := range passwords {
		if pw == "" {
			continue
		}
		nonce := make([]byte, k.aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return fmt.Errorf("keep the initial password of user %s: %w", id, err)
		}
		sealed := base64.StdEncoding.EncodeToString(k.aead.Seal(nonce, nonce, []byte(pw), []byte(id)))
		err := tx.Exec(`INSERT INTO initial_passwords (user_id, sealed, created_at) VALUES (?, ?, ?)
			ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at`, id, sealed, now).Error
		if err != nil {
			return fmt.Errorf("keep the initial password of user %s: %w", id, err)
		}
		for _, sink := range k.sinks {
			err := tx.Exec(`INSERT INTO initial_password_sinks (user_id, sink) VALUES (?, ?) ON CONFLICT DO NOTHING`, id, sink).Error
			if err != nil {
				return fmt.Errorf("keep the initial password of user %s: %w", id, err)
			}
		}
	}
	return nil
}

// InitialPassword returns the clear initial password kept for the sink
// to send when it creates the user, "" when there is none for it.
// ErrPasswordUnreadable says the key changed since it was kept.
func (s *Store) InitialPassword(ctx context.Context, sink, userID string) (string, error) {
	var sealed string
	err := s.db.WithContext(ctx).Raw(`SELECT p.sealed FROM initial_passwords p
		JOIN initial_password_sinks k ON k.user_id = p.user_id
		WHERE p.user_id = ? AND k.sink = ?`, userID, sink).Row().Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the initial password of user %s: %w", userID, err)
	}
	k := s.keeper.Load()
	if k == nil {
		return "", ErrPasswordUnreadable
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < k.aead.NonceSize() {
		return "", ErrPasswordUnreadable
	}
	n := k.aead.NonceSize()
	clear, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(userID))
	if err != nil {
		return "", ErrPasswordUnreadable
	}
	return string(clear), nil
}

// InitialPasswordDone records that the sink has no more use for the
// user's initial password (it sent it, or the user was there already);
// the password is wiped once no sink waits for it.
func (s *Store) InitialPasswordDone(ctx context.Context, sink, userID string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`DELETE FROM initial_password_sinks WHERE user_id = ? AND sink = ?`, userID, sink)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		return tx.Exec(`DELETE FROM initial_passwords WHERE user_id = ?
			AND NOT EXISTS (SELECT 1 FROM initial_password_sinks k WHERE k.user_id = initial_passwords.user_id)`, userID).Error
	})
	if err != nil {
		return fmt.Errorf("wipe the initial password of user %s: %w", userID, err)
	}
	return nil
}

// WipeInitialPasswords forgets the sinks not in wanting (removed,
// disabled, or no longer asking), the users removed meanwhile and those
// a sink's service holds already, and
// wipes every password no sink waits for any more; it returns how many
// passwords it wiped.
func (s *Store) WipeInitialPasswords(ctx context.Context, wanting []string) (int64, error) {
	var wiped int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		q := `DELETE FROM initial_password_sinks WHERE sink NOT IN ?`
		args := []any{wanting}
		if len(wanting) == 0 {
			q, args = `DELETE FROM initial_password_sinks`, nil
		}
		if err := tx.Exec(q, args...).Error; err != nil {
			return err
		}
		err := tx.Exec(`DELETE FROM initial_password_sinks WHERE NOT EXISTS
			(SELECT 1 FROM users u WHERE u.id = initial_password_sinks.user_id AND u.state <> 'deleted')`).Error
		if err != nil {
			return err
		}
		// A sink whose service holds the user has no use for the
		// password (its InitialPasswordDone may have been lost).
		err = tx.Exec(`DELETE FROM initial_password_sinks WHERE EXISTS (SELECT 1 FROM sink_ids i
			WHERE i.sink = initial_password_sinks.sink AND i.kind = ? AND i.resource_id = initial_password_sinks.user_id)`, KindUser).Error
		if err != nil {
			return err
		}
		res := tx.Exec(`DELETE FROM initial_passwords WHERE NOT EXISTS
			(SELECT 1 FROM initial_password_sinks k WHERE k.user_id = initial_passwords.user_id)`)
		wiped = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, fmt.Errorf("wipe the initial passwords no sink waits for: %w", err)
	}
	return wiped, nil
}

// InitialPasswordsKept counts the initial passwords kept, for tests and
// operators.
func (s *Store) InitialPasswordsKept(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Raw(`SELECT COUNT(*) FROM initial_passwords`).Row().Scan(&n); err != nil {
		return 0, fmt.Errorf("count the initial passwords kept: %w", err)
	}
	return n, nil
}
