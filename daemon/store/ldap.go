package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// LDAPRead is where an ldap source's next changed-only read begins.
type LDAPRead struct {
	// Watermark is the highest change marker (uSNChanged, modifyTimestamp)
	// of the users the last applied read saw; "" before any.
	Watermark string
	// FullAt is when the last full read was applied; zero before any.
	FullAt time.Time
}

// GetLDAPRead returns the source's read state (zero when it has none).
func (s *Store) GetLDAPRead(ctx context.Context, source string) (LDAPRead, error) {
	var r LDAPRead
	var full sql.NullTime
	err := s.db.WithContext(ctx).Raw(`SELECT watermark, full_at FROM ldap_reads WHERE source = ?`, source).Row().Scan(&r.Watermark, &full)
	if errors.Is(err, sql.ErrNoRows) {
		return LDAPRead{}, nil
	}
	if err != nil {
		return r, fmt.Errorf("read the ldap state of %s: %w", source, err)
	}
	if full.Valid {
		r.FullAt = full.Time
	}
	return r, nil
}

// SaveLDAPRead records an applied read: its watermark, and now as the
// last full read when full. It runs after the read's plan was applied: a
// crash in between leaves the older watermark, and the next read reads a
// little more than it needs to, never less.
func (s *Store) SaveLDAPRead(ctx context.Context, source, watermark string, full bool) error {
	db := s.db.WithContext(ctx)
	now := time.Now().UTC()
	var err error
	if full {
		err = db.Exec(`INSERT INTO ldap_reads (source, watermark, full_at) VALUES (?, ?, ?)
			ON CONFLICT (source) DO UPDATE SET watermark = excluded.watermark, full_at = excluded.full_at`, source, watermark, now).Error
	} else {
		err = db.Exec(`INSERT INTO ldap_reads (source, watermark) VALUES (?, ?)
			ON CONFLICT (source) DO UPDATE SET watermark = excluded.watermark`, source, watermark).Error
	}
	if err != nil {
		return fmt.Errorf("record the ldap read of %s: %w", source, err)
	}
	return nil
}
