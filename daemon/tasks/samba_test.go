package tasks_test

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/ldap"
	"github.com/rosterd/roster/sources/ldap/ldaptest"
)

// sambaStaff is how many disabled accounts the big group holds beside
// the two people: more than Active Directory's 1,500 values per range.
const sambaStaff = 1600

// TestLDAPSamba syncs from a real Active Directory (Samba's domain
// controller): objectGUID, sAMAccountName, userAccountControl, a manager,
// nested groups and a group whose members come in ranges.
func TestLDAPSamba(t *testing.T) {
	ad := ldaptest.StartSamba(t)
	c := ad.Conn()
	ou := "OU=Staff," + ad.BaseDN
	ad.Add(c, ou, map[string][]string{"objectClass": {"organizationalUnit"}})
	pwd := func(p string) string {
		u := utf16.Encode([]rune(`"` + p + `"`))
		b := make([]byte, 0, 2*len(u))
		for _, r := range u {
			b = append(b, byte(r), byte(r>>8))
		}
		return string(b)
	}
	jane, bob := ad.UserDN("Staff", "Jane Doe"), ad.UserDN("Staff", "Bob Smith")
	ad.Add(c, jane, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {"jdoe"}, "givenName": {"Jane"}, "sn": {"Doe"},
		"mail": {"jane.doe@example.test"}, "unicodePwd": {pwd("Jane-Passw0rd!x")}, "userAccountControl": {"512"}})
	ad.Add(c, bob, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {"bsmith"}, "givenName": {"Bob"}, "sn": {"Smith"},
		"manager": {jane}, "userAccountControl": {"514"}})
	members := []string{jane, bob}
	for i := range sambaStaff {
		members = append(members, ad.UserDN("Staff", fmt.Sprintf("Temp %04d", i)))
	}
	// Four connections at once: Samba's LDAP server has workers to spare.
	var wg sync.WaitGroup
	for w := range 4 {
		conn := ad.Conn()
		wg.Go(func() {
			for i := w; i < sambaStaff; i += 4 {
				ad.Add(conn, members[2+i], map[string][]string{"objectClass": {"user"},
					"sAMAccountName": {fmt.Sprintf("temp%04d", i)}, "userAccountControl": {"514"}})
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	eng := "CN=Engineering," + ou
	ad.Add(c, eng, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"engineering"}, "member": {jane, bob}})
	ad.Add(c, "CN=All Staff,"+ou, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"all-staff"},
		"member": append(members, eng)})

	res, err := c.Search(goldap.NewSearchRequest(jane, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectGUID"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read jane's objectGUID: %v", err)
	}
	janeGUID := ldap.FormatGUID(res.Entries[0].GetRawAttributeValue("objectGUID"))
	res, err = c.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"highestCommittedUSN"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read the root DSE: %v", err)
	}
	highestUSN, err := strconv.ParseUint(res.Entries[0].GetAttributeValue("highestCommittedUSN"), 10, 64)
	if err != nil {
		t.Fatalf("the root DSE's highestCommittedUSN: %v", err)
	}

	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		dir := t.TempDir()
		t.Setenv("ROSTER_TEST_AD_PASSWORD", ad.AdminPassword)
		path := filepath.Join(dir, "roster.yaml")
		writeFile(t, path, `log:
  dir: log
sources:
  - name: corp
    type: ldap
    flavor: active_directory
    url: `+ad.URL+`
    ca_file: `+ad.CAFile+`
    bind_dn: `+ad.AdminDN+`
    bind_password: ${ROSTER_TEST_AD_PASSWORD}
    base_dn: `+ou+`
`)
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SyncSources(t.Context(), []string{"corp"}, []string{"ldap"}); err != nil {
			t.Fatal(err)
		}
		r := &tasks.Runner{Store: s, Config: cfg, Log: slog.New(slog.DiscardHandler)}
		task, err := r.Sync(t.Context(), "corp", tasks.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if task.Task.Status != store.StatusSucceeded || counts(t, task.Task).Created != sambaStaff+2 {
			t.Fatalf("sync: %s %s %s", task.Task.Status, task.Task.Counts, task.Task.Errors)
		}
		users := ldapUsers(t, s)
		if u := users["jdoe"]; u.ExternalID != janeGUID || !u.Active || u.Email != "jane.doe@example.test" {
			t.Errorf("jdoe: %+v, objectGUID %s", u, janeGUID)
		}
		if u := users["bsmith"]; u.Active || u.State != "inactive" || u.Manager != users["jdoe"].ID {
			t.Errorf("bsmith (disabled, managed by jdoe): %+v", u)
		}
		groups := ldapGroups(t, s)
		if n := len(groups["All Staff"]); n != sambaStaff+3 || !slices.Contains(groups["All Staff"], "group:Engineering") {
			t.Errorf("All Staff has %d members, want %d with the group Engineering", n, sambaStaff+3)
		}
		if !slices.Equal(groups["Engineering"], []string{"bsmith", "jdoe"}) {
			t.Errorf("Engineering: %v", groups["Engineering"])
		}
		// The raw record holds no password: not the attribute, nor Jane's
		// password in any form.
		raw, err := os.ReadFile(filepath.Join(dir, task.Task.RawRecord))
		if err != nil || !strings.Contains(string(raw), "sAMAccountName: jdoe") {
			t.Fatalf("raw record %q: %v", task.Task.RawRecord, err)
		}
		lower := strings.ToLower(string(raw))
		for _, bad := range []string{"unicodepwd", "userpassword", "jane-passw0rd!x",
			strings.ToLower(base64.StdEncoding.EncodeToString([]byte(pwd("Jane-Passw0rd!x")))),
			strings.ToLower(base64.StdEncoding.EncodeToString([]byte("Jane-Passw0rd!x")))} {
			if strings.Contains(lower, bad) {
				t.Errorf("the raw record holds %q", bad)
			}
		}
		// The next changed-only read begins at the highestCommittedUSN
		// of the root DSE, read before the users.
		read, err := s.GetLDAPRead(t.Context(), "corp")
		if n, perr := strconv.ParseUint(read.Watermark, 10, 64); err != nil || perr != nil || n < highestUSN {
			t.Errorf("watermark %q (%v), want a USN from %d on", read.Watermark, err, highestUSN)
		}
	})
}
