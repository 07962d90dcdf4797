package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/rosterd/roster/daemon/store/storetest"
)

// Transactions that read before they write, on several connections at
// once, wait for each other instead of failing with SQLITE_BUSY.
func TestConcurrentReadThenWriteTransactions(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				errs <- s.DB().Transaction(func(tx *gorm.DB) error {
					var n int64
					if err := tx.Raw(`SELECT COUNT(*) FROM secrets`).Scan(&n).Error; err != nil {
						return err
					}
					return tx.Exec(`INSERT INTO secrets (name, value) VALUES (?, ?)`, fmt.Sprintf("t-%d-%d", g, i), n).Error
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSQLitePageCacheBound: connections read with the small page cache
// and take the large one inside a write transaction; when it ends,
// committed or not, only one connection of the pool (the warm one, which
// the next sync usually gets) keeps it, so that the pool holds at most two
// large caches (issue 16: four of 64 MiB held 362 MiB).
func TestSQLitePageCacheBound(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	db, err := s.DB().DB()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cache := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int {
		t.Helper()
		var n int
		if err := q.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Four connections at once: the pool's every connection.
	var conns []*sql.Conn
	for range 4 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	for _, outcome := range []string{"commit", "rollback"} {
		for i, c := range conns {
			tx, err := c.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := cache(tx); got != -65536 {
				t.Errorf("inside a write transaction on connection %d cache_size is %d, want -65536 (64 MiB)", i, got)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES ('cache', 'x') ON CONFLICT (name) DO NOTHING`); err != nil {
				t.Fatal(err)
			}
			if outcome == "commit" {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		large := 0
		for i, c := range conns {
			switch got := cache(c); got {
			case -65536:
				large++
			case -8192:
			default:
				t.Errorf("after write transactions (%s) connection %d has cache_size %d, want -8192 or -65536", outcome, i, got)
			}
		}
		if large != 1 {
			t.Errorf("after a write transaction (%s) on each of 4 connections, %d keep the large cache, want 1 (the warm one)", outcome, large)
		}
	}
}
