package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/scimtest"
)

// scimEndless never ends in any time a test waits for, and writes
// nothing to the client until it does.
const scimEndless = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000000000)
	SELECT COUNT(*) FROM c /* scim-deadline-test */`

// TestSCIMReadDeadline: a SCIM query stops at its context's deadline on
// both stores, in the database and not only in the client: SQLite's
// connection is interrupted while the rows are read, PostgreSQL's
// backend stops on its statement_timeout (issue 16, defect 1: a
// filter kept a backend busy for minutes after the client left).
func TestSCIMReadDeadline(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		const deadline = 300 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		var jit string
		done := make(chan error, 1)
		go func() {
			done <- store.SCIMRead(s, ctx, func(db *gorm.DB) error {
				if s.Driver() == store.Postgres {
					if err := db.Raw("SHOW jit").Row().Scan(&jit); err != nil {
						return err
					}
				}
				var n int64
				return db.Raw(scimEndless).Row().Scan(&n)
			})
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(deadline + 10*time.Second):
			t.Fatalf("the query still runs %v after its deadline", 10*time.Second)
		}
		elapsed := time.Since(start)
		if !errors.Is(err, store.ErrQueryTimeout) {
			t.Fatalf("got %v, want ErrQueryTimeout", err)
		}
		// Generous for a loaded machine, yet far below the query's time.
		if elapsed > deadline+2*time.Second {
			t.Errorf("the query stopped after %v; the deadline was %v", elapsed, deadline)
		}
		t.Logf("stopped after %v (deadline %v)", elapsed, deadline)
		if s.Driver() != store.Postgres {
			// The connection is free again: the pool's next query answers.
			var one int
			if err := s.DB().Raw("SELECT 1").Row().Scan(&one); err != nil {
				t.Fatal(err)
			}
			return
		}
		if jit != "off" {
			t.Errorf("jit is %q in a SCIM read, want off", jit)
		}
		// No backend still runs the query.
		var running int
		for range 20 {
			err := s.DB().Raw(`SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active'
				AND query LIKE '%scim-deadline-test%' AND pid <> pg_backend_pid()`).Row().Scan(&running)
			if err != nil {
				t.Fatal(err)
			}
			if running == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if running != 0 {
			t.Errorf("%d PostgreSQL backends still run the query after its deadline", running)
		}
	})
}

// TestSCIMReadLookupSkipsTransaction: on PostgreSQL a look-up by userName
// or id runs without the read transaction (whose round trips doubled its
// time), any other filter with its deadline and jit off.
func TestSCIMReadLookupSkipsTransaction(t *testing.T) {
	s := storetest.Open(t, store.Postgres)
	scimtest.Seed(t, s)
	var stmts []string
	err := s.DB().Callback().Raw().After("gorm:raw").Register("test:capture", func(db *gorm.DB) {
		stmts = append(stmts, db.Statement.SQL.String())
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.SCIM()
	for _, tc := range []struct {
		filter string
		tx     bool
	}{
		{`userName eq "anna.berg"`, false},
		{`id eq "` + scimtest.Anna + `" and not (groups pr)`, false},
		{`userName eq "anna.berg" or userName eq "eve"`, true},
		{`not (groups.value pr)`, true},
		{`displayName eq "eve"`, true},
	} {
		stmts = nil
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := dir.Users(ctx, scim.Query{Filter: scimParse(t, tc.filter), Count: 10})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		set := slices.ContainsFunc(stmts, func(s string) bool { return strings.Contains(s, "set_config('statement_timeout'") })
		if set != tc.tx {
			t.Errorf("%s: statement_timeout set %v, want %v (%q)", tc.filter, set, tc.tx, stmts)
		}
	}
}
