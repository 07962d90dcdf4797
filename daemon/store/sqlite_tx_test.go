package store_test

import (
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

// TestSQLitePageCacheBound: a connection reads with the small page cache
// and takes the large one only inside a write transaction, giving it
// back when the transaction ends, committed or not, so that the pool
// holds at most one large cache (issue 16: four of 64 MiB held 362 MiB).
func TestSQLitePageCacheBound(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	cache := func(db *gorm.DB) int {
		t.Helper()
		var n int
		if err := db.Raw(`PRAGMA cache_size`).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	err := s.DB().Connection(func(conn *gorm.DB) error {
		if got := cache(conn); got != -8192 {
			t.Errorf("a reading connection's cache_size is %d, want -8192 (8 MiB)", got)
		}
		for _, outcome := range []error{nil, fmt.Errorf("roll back")} {
			err := conn.Transaction(func(tx *gorm.DB) error {
				if got := cache(tx); got != -65536 {
					t.Errorf("inside a write transaction cache_size is %d, want -65536 (64 MiB)", got)
				}
				if err := tx.Exec(`INSERT INTO secrets (name, value) VALUES ('cache', 'x') ON CONFLICT (name) DO NOTHING`).Error; err != nil {
					return err
				}
				return outcome
			})
			if err != outcome {
				t.Fatal(err)
			}
			if got := cache(conn); got != -8192 {
				t.Errorf("after a write transaction (%v) cache_size is %d, want -8192 again", outcome, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
