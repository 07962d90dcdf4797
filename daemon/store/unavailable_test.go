package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
)

// unavailable reports both ways of recognising an unreachable database:
// errors.Is for packages that import the store, the Unavailable method for
// those that must not (scim).
func unavailable(err error) (is, method bool) {
	var u interface{ Unavailable() bool }
	return errors.Is(err, store.ErrUnavailable), errors.As(err, &u) && u.Unavailable()
}

// TestUnavailableErrors: a statement that fails because the database is
// out of reach (a lock held past the request's deadline, a closed pool)
// returns an error marked ErrUnavailable, through the store's own methods
// and the SCIM directory alike; other errors are not marked (issue 16).
func TestUnavailableErrors(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.SyncSources(ctx, []string{"staff"}, []string{"csv"}); err != nil {
			t.Fatal(err)
		}
		_, err := s.GetSource(ctx, "nope")
		if is, method := unavailable(err); !errors.Is(err, store.ErrNotFound) || is || method {
			t.Errorf("an unknown source: %v, marked unavailable %v/%v", err, is, method)
		}

		// Another connection holds the sources table; a write waits for it
		// past its deadline. Not on SQLite: its busy wait ignores the
		// deadline and ends after busy_timeout (30 s), with the same mark.
		if s.Driver() != store.SQLite {
			tx := s.DB().Begin()
			if err := tx.Exec("UPDATE sources SET revision = revision + 1").Error; err != nil {
				t.Fatal(err)
			}
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			err = s.SyncSources(short, []string{"staff"}, []string{"csv"})
			cancel()
			tx.Rollback()
			if is, method := unavailable(err); err == nil || !is || !method {
				t.Errorf("a write past its deadline behind a lock: %v, marked unavailable %v/%v", err, is, method)
			}
		}

		s.Close()
		_, err = s.GetSource(ctx, "staff")
		if is, method := unavailable(err); err == nil || !is || !method {
			t.Errorf("a closed store: %v, marked unavailable %v/%v", err, is, method)
		}
		_, err = s.SCIM().Users(ctx, scim.Query{Count: 10})
		if _, method := unavailable(err); err == nil || !method {
			t.Errorf("SCIM Users on a closed store: %v, marked unavailable %v", err, method)
		}
		_, err = s.SCIM().User(ctx, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", scim.Include{Emails: true, Groups: true})
		if _, method := unavailable(err); err == nil || !method {
			t.Errorf("SCIM User on a closed store: %v, marked unavailable %v", err, method)
		}
	})
}
