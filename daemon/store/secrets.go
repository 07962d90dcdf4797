package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// Secret returns the random secret called name, creating it when it does
// not exist yet. It is shared by every replica on the database and
// survives restarts; the admin page signs its sessions with one.
//
// Once the secret exists Secret only reads: on SQLite a write would wait
// for the single writer, which a large sync holds for as long as it
// applies its plan.
func (s *Store) Secret(ctx context.Context, name string) ([]byte, error) {
	v, ok, err := s.ReadSecret(ctx, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("make secret %s: %w", name, err)
		}
		// Another replica may create it at the same moment: the first
		// one wins and both read it back.
		err := s.db.WithContext(ctx).Exec(`INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			name, hex.EncodeToString(b)).Error
		if err != nil {
			return nil, fmt.Errorf("store secret %s: %w", name, err)
		}
		if v, ok, err = s.ReadSecret(ctx, name); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("read secret %s: it vanished after it was stored", name)
		}
	}
	key, err := hex.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("secret %s is damaged: %w", name, err)
	}
	return key, nil
}

// ReadSecret returns the stored value of the secret called name, and
// false when there is none. It never writes.
func (s *Store) ReadSecret(ctx context.Context, name string) (string, bool, error) {
	var v string
	err := s.db.WithContext(ctx).Raw(`SELECT value FROM secrets WHERE name = ?`, name).Row().Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read secret %s: %w", name, err)
	}
	return v, true, nil
}

// RenewSecret replaces the secret called name (creating it if needed) by
// a new random value and returns it as hex, the form ReadSecret returns.
func (s *Store) RenewSecret(ctx context.Context, name string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make secret %s: %w", name, err)
	}
	v := hex.EncodeToString(b)
	err := s.db.WithContext(ctx).Exec(`INSERT INTO secrets (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, v).Error
	if err != nil {
		return "", fmt.Errorf("renew secret %s: %w", name, err)
	}
	return v, nil
}
