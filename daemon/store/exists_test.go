package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestExists: an empty SQLite folder or PostgreSQL schema holds no store,
// and asking creates none; a migrated one does.
func TestExists(t *testing.T) {
	ctx := context.Background()
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			dsn := storetest.DSN(t, driver)
			for range 2 { // the first answer must not have made a store
				ok, err := store.Exists(ctx, driver, dsn)
				if err != nil || ok {
					t.Fatalf("Exists on an empty %s store = %v, %v; want false", driver, ok, err)
				}
			}
			if driver == store.SQLite {
				if entries, _ := os.ReadDir(filepath.Dir(dsn)); len(entries) != 0 {
					t.Fatalf("Exists left %d files in the SQLite folder", len(entries))
				}
			}
			s, err := store.Open(ctx, driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if ok, err := store.Exists(ctx, driver, dsn); err != nil || !ok {
				t.Fatalf("Exists on a migrated %s store = %v, %v; want true", driver, ok, err)
			}
		})
	}
	if ok, err := store.Exists(ctx, store.SQLite, ":memory:"); err != nil || ok {
		t.Errorf("Exists(:memory:) = %v, %v; want false", ok, err)
	}
	if _, err := store.Exists(ctx, store.SQLite, filepath.Join(t.TempDir(), "nosuch", "roster.db")); err == nil {
		t.Errorf("Exists in a folder that does not exist gave no error")
	}
}
