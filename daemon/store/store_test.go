package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/sources"
)

// The conformance suite: every test here runs on SQLite and PostgreSQL.

func TestMigrateIsIdempotent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		applied, err := s.Migrate(ctx)
		if err != nil || len(applied) != 0 {
			t.Fatalf("second Migrate = %v, %v; want nothing applied", applied, err)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != store.Latest() {
			t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, store.Latest())
		}
	})
}

func seq() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("00000000-0000-0000-0000-%012d", n) }
}

func rec(line int, id, login string, groups ...string) sources.Record {
	return sources.Record{Line: line, ExternalID: id, GivenName: "G" + id, FamilyName: "F" + id,
		UserName: login, Email: login + "@example.com", Groups: groups}
}

func plan(t *testing.T, s *store.Store, source string, recs []sources.Record, set reconcile.Settings, ids func() string) *reconcile.Plan {
	t.Helper()
	ctx := context.Background()
	snap, err := s.Snapshot(ctx, source)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range recs {
		keys = append(keys, reconcile.Key(r.UserName))
	}
	snap.Foreign, err = s.ForeignLogins(ctx, source, keys)
	if err != nil {
		t.Fatal(err)
	}
	return reconcile.PlanSnapshot(recs, snap, set, ids)
}

func TestApplyRoundTrip(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.SyncSources(ctx, []string{"staff", "hr"}, []string{"csv", "http"}); err != nil {
			t.Fatal(err)
		}
		set := reconcile.Settings{Orphans: reconcile.OrphansDelete, ActivateNew: true, Restore: true, EmployeeNumberIsExternalID: true}
		ids := seq()
		recs := []sources.Record{rec(1, "1", "anna", "Sales", "Berlin"), rec(2, "2", "bob", "sales"), rec(3, "3", "carl")}
		recs[0].PasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
		p := plan(t, s, "staff", recs, set, ids)
		if p.Counts.Created != 3 || len(p.GroupCreates) != 2 || len(p.MembershipAdds) != 3 {
			t.Fatalf("first plan: %+v groups %v members %v", p.Counts, p.GroupCreates, p.MembershipAdds)
		}
		if err := s.Apply(ctx, "staff", p, "fp1"); err != nil {
			t.Fatal(err)
		}
		// The same input again changes nothing.
		p2 := plan(t, s, "staff", recs, set, ids)
		if !p2.Empty() || p2.Counts.Unchanged != 3 {
			t.Fatalf("unchanged plan: %+v %+v", p2.Counts, p2.Changes)
		}
		// A stale plan is refused.
		if err := s.Apply(ctx, "staff", p, "fp1"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale Apply = %v, want ErrConflict", err)
		}
		// Swap two logins, drop carl (deleted), drop the Berlin group.
		recs2 := []sources.Record{rec(1, "1", "bob", "Sales"), rec(2, "2", "anna", "Sales")}
		p3 := plan(t, s, "staff", recs2, set, ids)
		if p3.Counts.Updated != 2 || p3.Counts.Deleted != 1 || len(p3.GroupDeletes) != 1 {
			t.Fatalf("swap plan: %+v", p3.Counts)
		}
		if err := s.Apply(ctx, "staff", p3, "fp2"); err != nil {
			t.Fatal(err)
		}
		snap, err := s.Snapshot(ctx, "staff")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]reconcile.User{}
		for _, u := range snap.Users {
			got[u.ExternalID] = u
		}
		if got["1"].UserName != "bob" || got["2"].UserName != "anna" || got["3"].State != reconcile.StateDeleted {
			t.Fatalf("after swap: %+v", got)
		}
		if !got["1"].HasPassword || got["2"].HasPassword {
			t.Fatalf("passwords: %+v", got)
		}
		if len(snap.Groups) != 1 || snap.Groups[0].DisplayName != "Sales" {
			t.Fatalf("groups after delete: %+v", snap.Groups)
		}
		// carl comes back with the same id.
		p4 := plan(t, s, "staff", append(recs2, rec(3, "3", "carl")), set, ids)
		if p4.Counts.Restored != 1 {
			t.Fatalf("restore plan: %+v", p4.Counts)
		}
		if err := s.Apply(ctx, "staff", p4, "fp3"); err != nil {
			t.Fatal(err)
		}
		snap, _ = s.Snapshot(ctx, "staff")
		for _, u := range snap.Users {
			if u.ExternalID == "3" && (u.ID != got["3"].ID || u.State != reconcile.StateActive) {
				t.Fatalf("restored carl = %+v, want id %s active", u, got["3"].ID)
			}
		}
		// Another source may not take anna's login.
		hp := plan(t, s, "hr", []sources.Record{rec(1, "x", "ANNA")}, set, ids)
		if len(hp.Errors) != 1 || hp.Errors[0].Column != 4 {
			t.Fatalf("foreign login errors = %+v", hp.Errors)
		}
		src, err := s.GetSource(ctx, "staff")
		if err != nil || src.Revision != 3 || src.LastFingerprint != "fp3" {
			t.Fatalf("source = %+v, %v", src, err)
		}
	})
}

func TestSourceLockExcludes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		unlock, err := s.TryLockSource(ctx, "staff")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.TryLockSource(ctx, "staff"); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("second TryLockSource = %v, want ErrLocked", err)
		}
		other, err := s.TryLockSource(ctx, "hr")
		if err != nil {
			t.Fatalf("another source must not be blocked: %v", err)
		}
		other()
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := s.LockSource(wctx, "staff"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("LockSource while held = %v, want deadline", err)
		}
		unlock()
		again, err := s.TryLockSource(ctx, "staff")
		if err != nil {
			t.Fatalf("after unlock: %v", err)
		}
		again()
	})
}

// TestSecretReadsDoNotWaitForWriters: once a secret exists, Secret,
// ReadSecret (and the admin page's session check built on them) only read,
// so a sync holding the write lock (SQLite's only one) does not hold them
// up. Before, every call inserted and waited for the writer up to the
// busy timeout (30 s).
func TestSecretReadsDoNotWaitForWriters(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		if err := s.SyncSources(t.Context(), []string{"staff"}, []string{"csv"}); err != nil {
			t.Fatal(err)
		}
		want, err := s.Secret(t.Context(), "x")
		if err != nil {
			t.Fatal(err)
		}
		epoch, err := s.RenewSecret(t.Context(), "epoch")
		if err != nil {
			t.Fatal(err)
		}
		release := storetest.HoldWrite(t, s)
		defer release()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		got, err := s.Secret(ctx, "x")
		if err != nil || string(got) != string(want) {
			t.Fatalf("Secret during a write = %x, %v; want %x", got, err, want)
		}
		v, ok, err := s.ReadSecret(ctx, "epoch")
		if err != nil || !ok || v != epoch {
			t.Fatalf("ReadSecret during a write = %q, %v, %v; want %q", v, ok, err, epoch)
		}
		if _, ok, err := s.ReadSecret(ctx, "missing"); ok || err != nil {
			t.Fatalf("ReadSecret of a missing secret = %v, %v", ok, err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("reading secrets during a write took %s", d)
		}
		release()
		again, err := s.RenewSecret(t.Context(), "epoch")
		if err != nil || again == epoch || len(again) != 32 {
			t.Fatalf("RenewSecret = %q, %v; want a new value, not %q", again, err, epoch)
		}
		if v, _, _ := s.ReadSecret(t.Context(), "epoch"); v != again {
			t.Fatalf("after RenewSecret ReadSecret = %q, want %q", v, again)
		}
	})
}

func TestSecretIsStableAndShared(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		a, err := s.Secret(t.Context(), "x")
		if err != nil || len(a) != 32 {
			t.Fatalf("Secret = %x, %v", a, err)
		}
		b, _ := s.Secret(t.Context(), "x")
		c, _ := s.Secret(t.Context(), "y")
		if string(a) != string(b) || string(a) == string(c) {
			t.Fatalf("secrets: x %x then %x, y %x", a, b, c)
		}
	})
}

// TestSQLiteFilesArePrivate: the database file and its companions are
// 0600 and the lock folder 0700 whatever the umask, and an existing
// database that an older roster created 0644 is made private when opened.
// Before, roster.db was created 0644 under the usual umask 022: its
// secrets table with a token hash from the configuration forges an admin
// session.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0) // the worst case: nothing masked
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "roster.db")
	s, err := store.Open(t.Context(), store.SQLite, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	unlock, err := s.TryLockSource(t.Context(), "staff")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	want := map[string]os.FileMode{
		path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600,
		path + ".locks": 0o700, path + ".locks/source": 0o700, path + ".locks/source/staff": 0o600,
	}
	check := func() {
		t.Helper()
		for p, mode := range want {
			fi, err := os.Stat(p)
			if err != nil {
				t.Errorf("%s: %v", p, err)
			} else if fi.Mode().Perm() != mode {
				t.Errorf("%s is %o, want %o", filepath.Base(p), fi.Mode().Perm(), mode)
			}
		}
	}
	check()
	unlock()
	s.Close()

	// An older roster's files, readable by everybody, are made private
	// (the folder's own mode closes what is inside it).
	delete(want, path+".locks/source")
	delete(want, path+".locks/source/staff")
	for p, mode := range want {
		if err := os.Chmod(p, mode|0o044); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path+"-wal", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(t.Context(), store.SQLite, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	delete(want, path+".locks/source")
	delete(want, path+".locks/source/staff")
	check()
}
