package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
)

// Exists reports whether a roster store is at dsn, creating nothing (Open
// creates a SQLite file that is not there): for SQLite, whether the
// database file exists; for PostgreSQL, whether a migration was applied to
// the schema the DSN names. An in-memory SQLite database never exists
// before it is opened. Read-only commands ask it first, so that a typo in
// a path or a command run in the wrong folder leaves no empty store behind.
func Exists(ctx context.Context, driver, dsn string) (bool, error) {
	if driver == SQLite || driver == "" {
		_, path, err := sqliteDSN(dsn)
		if err != nil || path == "" {
			return false, err
		}
		_, err = os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	s, err := Open(ctx, driver, dsn)
	if err != nil {
		return false, err
	}
	defer s.Close()
	v, err := s.SchemaVersion(ctx)
	return v > 0, err
}
