package store_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
)

// TestInitialPasswords checks, on both stores, that a SCIM-created user's
// password is kept encrypted only for the sinks that ask, opens for each
// of them until it is done, is wiped with the last one, with its user, or
// with its sink, that a changed key cannot open it, and that without a key
// nothing is kept.
func TestInitialPasswords(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.SyncSources(ctx, []string{"idp"}, []string{"scim"}); err != nil {
			t.Fatal(err)
		}
		w := s.SCIMWriter()
		create := func(login, pw string) string {
			t.Helper()
			u, err := w.CreateUser(ctx, "idp", &scim.UserWrite{User: scim.User{UserName: login}, Password: pw})
			if err != nil {
				t.Fatal(err)
			}
			return u.ID
		}
		kept := func() int64 {
			t.Helper()
			n, err := s.InitialPasswordsKept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		key := bytes.Repeat([]byte{7}, 32)

		// No key: hashes only.
		create("nokey", "Nokey-password-1")
		if n := kept(); n != 0 {
			t.Fatalf("without a key %d passwords are kept", n)
		}
		// A key but no sink asking: nothing either.
		if err := s.KeepInitialPasswords(key, nil); err != nil {
			t.Fatal(err)
		}
		create("nosink", "Nosink-password-1")
		if n := kept(); n != 0 || s.KeepsInitialPasswords() {
			t.Fatalf("with no sink asking %d passwords are kept", n)
		}

		if err := s.KeepInitialPasswords(key, []string{"a", "b"}); err != nil {
			t.Fatal(err)
		}
		anna := create("anna", "Anna-password-1")
		bob := create("bob", "Bob-password-12")
		carl := create("carl", "Carl-password-1")
		if n := kept(); n != 3 {
			t.Fatalf("%d passwords kept, want 3", n)
		}
		var sealed string
		if err := s.DB().Raw(`SELECT sealed FROM initial_passwords WHERE user_id = ?`, anna).Row().Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(sealed, "Anna-password-1") {
			t.Fatal("the kept password is in clear text")
		}
		// A ciphertext moved to another user does not open.
		if err := s.DB().Exec(`UPDATE initial_passwords SET sealed = ? WHERE user_id = ?`, sealed, carl).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := s.InitialPassword(ctx, "a", carl); !errors.Is(err, store.ErrPasswordUnreadable) {
			t.Fatalf("a moved ciphertext: %v", err)
		}
		for _, sink := range []string{"a", "b"} {
			if pw, err := s.InitialPassword(ctx, sink, anna); err != nil || pw != "Anna-password-1" {
				t.Fatalf("sink %s reads %q, %v", sink, pw, err)
			}
		}
		if pw, err := s.InitialPassword(ctx, "c", anna); err != nil || pw != "" {
			t.Fatalf("a sink that did not ask reads %q, %v", pw, err)
		}
		// Done for a, then for b: wiped with the last.
		if err := s.InitialPasswordDone(ctx, "a", anna); err != nil {
			t.Fatal(err)
		}
		if pw, _ := s.InitialPassword(ctx, "a", anna); pw != "" || kept() != 3 {
			t.Fatalf("after a is done: a reads %q, %d kept", pw, kept())
		}
		if err := s.InitialPasswordDone(ctx, "b", anna); err != nil {
			t.Fatal(err)
		}
		if n := kept(); n != 2 {
			t.Fatalf("after both sinks are done %d passwords are kept, want 2", n)
		}

		// A new key cannot open the old ciphertexts.
		if err := s.KeepInitialPasswords(bytes.Repeat([]byte{8}, 32), []string{"a", "b"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.InitialPassword(ctx, "a", bob); !errors.Is(err, store.ErrPasswordUnreadable) {
			t.Fatalf("after a key change: %v", err)
		}
		if strings.Contains(store.ErrPasswordUnreadable.Error(), "Bob-password-12") {
			t.Fatal("the error holds the password")
		}

		// A removed user's password goes; a sink that stops asking gives
		// up its share.
		if err := w.DeleteUser(ctx, "idp", carl, ""); err != nil {
			t.Fatal(err)
		}
		if n, err := s.WipeInitialPasswords(ctx, []string{"a", "b"}); err != nil || n != 1 || kept() != 1 {
			t.Fatalf("wipe after a removal: %d, %v; %d kept", n, err, kept())
		}
		if n, err := s.WipeInitialPasswords(ctx, []string{"a"}); err != nil || n != 0 || kept() != 1 {
			t.Fatalf("wipe after b stopped asking: %d, %v; %d kept", n, err, kept())
		}
		// Sink a's service holds bob already (its done was lost).
		if err := s.RegisterSinks(ctx, []string{"a"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetServiceID(ctx, "a", store.KindUser, bob, "svc-bob"); err != nil {
			t.Fatal(err)
		}
		if n, err := s.WipeInitialPasswords(ctx, []string{"a"}); err != nil || n != 1 || kept() != 0 {
			t.Fatalf("wipe once the service holds the user: %d, %v; %d kept", n, err, kept())
		}
		var pending int64
		if err := s.DB().Raw(`SELECT COUNT(*) FROM initial_password_sinks`).Row().Scan(&pending); err != nil || pending != 0 {
			t.Fatalf("%d sinks still wait, %v", pending, err)
		}
	})
}
