package tasks_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/ldap/ldaptest"
)

// The guarantees every snapshot source gives (SPEC §4, §5), for an ldap
// source: the safety valve, the zero-record guard, retries and
// on_conflict.

// morePeople is LDIF for n more people, u1..un, under ou=corp.
func morePeople(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "\ndn: uid=u%d,ou=people,ou=corp,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: u%d\ncn: User %d\nsn: User\n", i, i, i)
	}
	return b.String()
}

func mustSync(t *testing.T, r *tasks.Runner, opt tasks.Options, want string) *tasks.Result {
	t.Helper()
	res, err := r.Sync(t.Context(), "corp", opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Task.Status != want {
		t.Fatalf("task %d is %s, want %s: %s %s", res.Task.ID, res.Task.Status, want, res.Task.Errors, res.Task.Warnings)
	}
	return res
}

// TestLDAPMaxRemovalsHeldAndApproved: a read that would deactivate more
// than max_removals allows is held, writing nothing; its approval applies
// the plan mapped again from the held task's LDIF, not from a new read of
// the server (which changed since).
func TestLDAPMaxRemovalsHeldAndApproved(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := ldaptest.Start(t, ldaptest.WithLDIF(corpLDIF+morePeople(8)))
		r := ldapRunner(t, s, srv, "")
		if c := counts(t, mustSync(t, r, tasks.Options{}, store.StatusSucceeded).Task); c.Created != 12 {
			t.Fatalf("first sync %+v", c)
		}
		var del strings.Builder
		for i := 1; i <= 7; i++ {
			fmt.Fprintf(&del, "dn: uid=u%d,ou=people,ou=corp,dc=example,dc=com\nchangetype: delete\n\n", i)
		}
		srv.Apply(del.String())
		held := mustSync(t, r, tasks.Options{}, store.StatusHeld)
		hp, err := s.GetHeldPlan(t.Context(), held.Task.ID)
		if err != nil {
			t.Fatal(err)
		}
		v := tasks.ViewOf(held.Task, hp)
		if len(v.Removals) != 7 || !strings.Contains(v.Hold, "would deactivate 7") {
			t.Fatalf("held: %q, %d removals", v.Hold, len(v.Removals))
		}
		if u := ldapUsers(t, s); u["u1"].State != "active" || u["u7"].State != "active" {
			t.Fatal("a held task wrote")
		}
		if !strings.HasSuffix(held.Task.RawRecord, ".ldif") {
			t.Fatalf("the held task keeps no LDIF: %q", held.Task.RawRecord)
		}

		// The server changes after the hold; the approval applies what
		// was held.
		srv.Apply("dn: uid=jdoe,ou=people,ou=corp,dc=example,dc=com\nchangetype: modify\nreplace: title\ntitle: Changed After The Hold\n")
		res, err := r.Approve(t.Context(), held.Task.ID)
		if err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("approve: %v %+v", err, res)
		}
		if c := counts(t, res.Task); c.Deactivated != 7 || c.Updated != 0 {
			t.Errorf("approved counts %+v", c)
		}
		users := ldapUsers(t, s)
		for i := 1; i <= 8; i++ {
			want := "inactive"
			if i == 8 {
				want = "active"
			}
			if st := users[fmt.Sprintf("u%d", i)].State; st != want {
				t.Errorf("u%d is %s, want %s", i, st, want)
			}
		}
		if users["jdoe"].Title != "Head of Engineering" {
			t.Errorf("the approval read the server again: jdoe's title is %q", users["jdoe"].Title)
		}
	})
}

// TestLDAPEmptyReadHeld: a read of no users (every person deleted) is held
// by the zero-record guard, whatever max_removals says, and changes
// nothing.
func TestLDAPEmptyReadHeld(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := ldaptest.Start(t, ldaptest.WithLDIF(corpLDIF))
		r := ldapRunner(t, s, srv, "    max_removals: 100%\n")
		mustSync(t, r, tasks.Options{}, store.StatusSucceeded)
		var del strings.Builder
		for _, u := range []string{"jdoe", "bsmith", "cmueller", "dlee"} {
			fmt.Fprintf(&del, "dn: uid=%s,ou=people,ou=corp,dc=example,dc=com\nchangetype: delete\n\n", u)
		}
		srv.Apply(del.String())
		held := mustSync(t, r, tasks.Options{}, store.StatusHeld)
		hp, err := s.GetHeldPlan(t.Context(), held.Task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v := tasks.ViewOf(held.Task, hp); !strings.Contains(v.Hold, "the snapshot has no records") {
			t.Errorf("hold %q, want the zero-record guard's", v.Hold)
		}
		users := ldapUsers(t, s)
		if len(users) != 4 {
			t.Fatalf("%d users", len(users))
		}
		for login, u := range users {
			if u.State != "active" {
				t.Errorf("%s is %s after a held empty read", login, u.State)
			}
		}
	})
}

// TestLDAPRetry: a task that failed after its read (a login another
// source holds, on_conflict: fail) kept its LDIF, and its retry maps that
// LDIF again, not the server as it is now; a task that failed before it
// read anything (a refused bind) kept none, and its retry reads the
// server. With on_conflict: skip the retry skips the other source's
// login; with adopt a sync takes that user over.
func TestLDAPRetry(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := ldaptest.Start(t, ldaptest.WithLDIF(corpLDIF))
		r := ldapRunner(t, s, srv, "  - name: hr\n    type: csv\n    path: hr.csv\n")
		if err := s.SyncSources(t.Context(), []string{"hr"}, []string{"csv"}); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(r.Config.Dir, "hr.csv"), "hr-1,Dan,Lee,dlee,,,\n")
		if res, err := r.Sync(t.Context(), "hr", tasks.Options{}); err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("sync hr: %v %+v", err, res)
		}
		hrDan := ownerOf(t, s, "dlee")

		failed := mustSync(t, r, tasks.Options{}, store.StatusFailed)
		v := tasks.ViewOf(failed.Task, nil)
		if len(v.Errors) != 1 || !strings.Contains(v.Errors[0].Message, "dlee") || failed.Task.RawRecord == "" {
			t.Fatalf("conflict: %+v, raw record %q", v.Errors, failed.Task.RawRecord)
		}
		if len(ldapUsers(t, s)) != 0 {
			t.Fatal("a failed task wrote")
		}

		// The server changes; the retry, with on_conflict: skip now, maps
		// the failed task's LDIF.
		srv.Apply("dn: uid=jdoe,ou=people,ou=corp,dc=example,dc=com\nchangetype: modify\nreplace: title\ntitle: Changed After The Failure\n")
		r.Config.Sources[0].OnConflict = "skip"
		res, err := r.Retry(t.Context(), failed.Task.ID, "")
		if err != nil || res.Task.Status != store.StatusSucceeded || res.Task.RetryOf == nil || *res.Task.RetryOf != failed.Task.ID {
			t.Fatalf("retry: %v %+v", err, res)
		}
		if c := counts(t, res.Task); c.Created != 3 || c.Skipped != 1 {
			t.Errorf("retry counts %+v", c)
		}
		if title := ldapUsers(t, s)["jdoe"].Title; title != "Head of Engineering" {
			t.Errorf("the retry read the server, not the stored LDIF: jdoe's title %q", title)
		}
		if o := ownerOf(t, s, "dlee"); o.Source != "hr" {
			t.Errorf("skip: dlee is owned by %s", o.Source)
		}
		kept, err := os.ReadFile(filepath.Join(r.Config.Dir, res.Task.RawRecord))
		if err != nil || strings.Contains(string(kept), "Changed After The Failure") {
			t.Errorf("the retry's raw record: %v\n%s", err, kept)
		}

		// A refused bind keeps no LDIF; its retry reads the server.
		r.Config.Sources[0].BindPassword = "wrong"
		bind := mustSync(t, r, tasks.Options{}, store.StatusFailed)
		if bind.Task.RawRecord != "" {
			t.Fatalf("a refused bind kept %q", bind.Task.RawRecord)
		}
		r.Config.Sources[0].BindPassword = "reader-password"
		res, err = r.Retry(t.Context(), bind.Task.ID, "")
		if err != nil || res.Task.Status != store.StatusSucceeded || res.Task.RawRecord == "" {
			t.Fatalf("retry of the refused bind: %v %+v", err, res)
		}
		if title := ldapUsers(t, s)["jdoe"].Title; title != "Changed After The Failure" {
			t.Errorf("the retry of a task without LDIF did not read the server: jdoe's title %q", title)
		}

		// on_conflict: adopt takes hr's dlee over, keeping the user's id.
		r.Config.Sources[0].OnConflict = "adopt"
		res = mustSync(t, r, tasks.Options{}, store.StatusSucceeded)
		if c := counts(t, res.Task); c.Adopted != 1 {
			t.Errorf("adopt counts %+v", c)
		}
		if o := ownerOf(t, s, "dlee"); o.Source != "corp" || o.ID != hrDan.ID || len(o.ExternalID) != 36 {
			t.Errorf("adopted dlee: %+v, was %+v", o, hrDan)
		}
	})
}

// TestLDAPBadInputChangesNothing: an entry whose objectGUID is not 16
// bytes, and a base_dn the server does not have, each fail the task with
// an error naming the source and the DN, and change nothing: not the
// change read beside the bad entry, and no user becomes an orphan of the
// missing base DN.
func TestLDAPBadInputChangesNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := ldaptest.Start(t, ldaptest.WithLDIF(adLDIF))
		r := ldapRunner(t, s, srv, `    flavor: active_directory
    user_filter: (objectClass=adUser)
    group_filter: (objectClass=adGroup)
`)
		r.Config.Sources[0].BaseDN = "ou=staff,dc=example,dc=com"
		mustSync(t, r, tasks.Options{}, store.StatusSucceeded)
		before := ldapUsers(t, s)
		unchanged := func(what string) {
			t.Helper()
			after := ldapUsers(t, s)
			if len(after) != len(before) {
				t.Fatalf("%s: %d users, were %d", what, len(after), len(before))
			}
			for login, u := range before {
				if after[login] != u {
					t.Errorf("%s changed %s: %+v, was %+v", what, login, after[login], u)
				}
			}
		}

		srv.Apply(`dn: cn=Broken,ou=staff,dc=example,dc=com
changetype: add
objectClass: inetOrgPerson
objectClass: adUser
cn: Broken
sn: Broken
objectGUID:: AQID
sAMAccountName: broken

dn: cn=Jane Doe,ou=staff,dc=example,dc=com
changetype: modify
replace: mail
mail: jane@changed.example.com
`)
		res := mustSync(t, r, tasks.Options{}, store.StatusFailed)
		v := tasks.ViewOf(res.Task, nil)
		want := `ldap source corp: entry "cn=Broken,ou=staff,dc=example,dc=com" (externalId): the objectGUID is not readable: it holds 3 bytes, not 16`
		if len(v.Errors) != 1 || v.Errors[0].Message != want || res.Task.Transient {
			t.Errorf("3-byte objectGUID: %+v, want %q", v.Errors, want)
		}
		unchanged("a task with an unreadable objectGUID")

		r.Config.Sources[0].BaseDN = "ou=staf,dc=example,dc=com"
		res = mustSync(t, r, tasks.Options{}, store.StatusFailed)
		v = tasks.ViewOf(res.Task, nil)
		want = `ldap source corp: base_dn "ou=staf,dc=example,dc=com" does not exist on the server`
		if len(v.Errors) != 1 || !strings.HasPrefix(v.Errors[0].Message, want) || res.Task.Transient || res.Task.RawRecord != "" {
			t.Errorf("missing base DN: %+v (transient %v, raw record %q), want %q", v.Errors, res.Task.Transient, res.Task.RawRecord, want)
		}
		unchanged("a task with a missing base DN")
	})
}
