// Package storetest opens real test databases for roster's tests: a
// temporary SQLite file always, and a private schema on the PostgreSQL
// server named by ROSTER_TEST_POSTGRES_DSN. Without a reachable PostgreSQL
// the PostgreSQL half skips loudly, or fails when CI=true.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the driver behind gorm's postgres dialector

	"github.com/rosterd/roster/daemon/store"
)

// DefaultPostgresDSN is used when ROSTER_TEST_POSTGRES_DSN is not set.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Drivers lists the stores every storage test runs on.
var Drivers = []string{store.SQLite, store.Postgres}

// ForEach runs fn as a subtest on a fresh, migrated store of each driver.
func ForEach(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, driver := range Drivers {
		t.Run(driver, func(t *testing.T) {
			fn(t, Open(t, driver))
		})
	}
}

// Open returns a fresh, migrated store, closed when the test ends.
func Open(t testing.TB, driver string) *store.Store {
	t.Helper()
	dsn := DSN(t, driver)
	s, err := store.Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatalf("open %s store: %v", driver, err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s store: %v", driver, err)
	}
	return s
}

// DSN returns the DSN of an empty database of the driver that lives as
// long as the test: a file in a temporary folder for SQLite, a private
// schema (dropped afterwards) for PostgreSQL.
func DSN(t testing.TB, driver string) string {
	t.Helper()
	if driver == store.SQLite {
		return filepath.Join(t.TempDir(), "roster.db")
	}
	base := os.Getenv("ROSTER_TEST_POSTGRES_DSN")
	if base == "" {
		base = DefaultPostgresDSN
	}
	admin, err := sql.Open("pgx", base)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = admin.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s is not reachable under CI=true: %v", redact(base), err)
		}
		t.Skipf("SKIPPING PostgreSQL tests: no server answers at %s (%v); set ROSTER_TEST_POSTGRES_DSN", redact(base), err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "roster_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("ROSTER_TEST_POSTGRES_DSN must be a postgres:// URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}

// HoldWrite opens a write transaction on s, writes in it as a sync's apply
// does (the sources' rows and a row of secrets) and keeps it open until the
// returned function is called or the test ends. On SQLite it holds the
// database's only write lock meanwhile, so that tests can check that
// reads do not wait for it.
func HoldWrite(t testing.TB, s *store.Store) (release func()) {
	t.Helper()
	tx := s.DB().Begin()
	if tx.Error != nil {
		t.Fatalf("begin the held write transaction: %v", tx.Error)
	}
	for _, stmt := range []string{
		`UPDATE sources SET revision = revision`,
		`INSERT INTO secrets (name, value) VALUES ('storetest-held-write', 'x')`,
	} {
		if err := tx.Exec(stmt).Error; err != nil {
			tx.Rollback()
			t.Fatalf("write in the held transaction: %v", err)
		}
	}
	done := false
	release = func() {
		if !done {
			done = true
			tx.Rollback()
		}
	}
	t.Cleanup(release)
	return release
}
