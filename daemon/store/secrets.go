package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Secret returns the random secret called name, creating it on first use.
// It is shared by every replica on the database and survives restarts;
// the admin page signs its sessions with one.
func (s *Store) Secret(ctx context.Context, name string) ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("make secret %s: %w", name, err)
	}
	db := s.db.WithContext(ctx)
	if err := db.Exec(`INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING`, name, hex.EncodeToString(b)).Error; err != nil {
		return nil, fmt.Errorf("store secret %s: %w", name, err)
	}
	var v string
	if err := db.Raw(`SELECT value FROM secrets WHERE name = ?`, name).Row().Scan(&v); err != nil {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	key, err := hex.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("secret %s is damaged: %w", name, err)
	}
	return key, nil
}
