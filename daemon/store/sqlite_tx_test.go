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
