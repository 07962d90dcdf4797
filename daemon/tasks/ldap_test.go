package tasks_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/ldap"
	"github.com/rosterd/roster/sources/ldap/ldaptest"

	goldap "github.com/go-ldap/ldap/v3"
)

// corpLDIF is a directory under ou=corp: four people, a manager among
// them, a group with more members than one page (page_size 2), a
// groupOfUniqueNames, and a group holding only a group.
const corpLDIF = `dn: ou=corp,dc=example,dc=com
objectClass: organizationalUnit
ou: corp

dn: ou=people,ou=corp,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,ou=corp,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=jdoe,ou=people,ou=corp,dc=example,dc=com
objectClass: inetOrgPerson
uid: jdoe
cn: Jane Doe
givenName: Jane
sn: Doe
mail: jane.doe@example.com
title: Head of Engineering
userPassword: jane-secret

dn: uid=bsmith,ou=people,ou=corp,dc=example,dc=com
objectClass: inetOrgPerson
uid: bsmith
cn: Bob Smith
givenName: Bob
sn: Smith
mail: bob.smith@example.com
manager: uid=jdoe,ou=people,ou=corp,dc=example,dc=com

dn: uid=cmueller,ou=people,ou=corp,dc=example,dc=com
objectClass: inetOrgPerson
uid: cmueller
cn: Clara Mueller
givenName: Clara
sn: Mueller
manager: uid=jdoe,ou=people,ou=corp,dc=example,dc=com

dn: uid=dlee,ou=people,ou=corp,dc=example,dc=com
objectClass: inetOrgPerson
uid: dlee
cn: Dan Lee
givenName: Dan
sn: Lee

dn: cn=engineering,ou=groups,ou=corp,dc=example,dc=com
objectClass: groupOfNames
cn: engineering
member: uid=jdoe,ou=people,ou=corp,dc=example,dc=com
member: uid=bsmith,ou=people,ou=corp,dc=example,dc=com
member: uid=cmueller,ou=people,ou=corp,dc=example,dc=com
member: uid=dlee,ou=people,ou=corp,dc=example,dc=com
member: cn=outsider,dc=example,dc=com

dn: cn=platform,ou=groups,ou=corp,dc=example,dc=com
objectClass: groupOfUniqueNames
cn: platform
uniqueMember: uid=bsmith,ou=people,ou=corp,dc=example,dc=com

dn: cn=everyone,ou=groups,ou=corp,dc=example,dc=com
objectClass: groupOfNames
cn: everyone
member: cn=engineering,ou=groups,ou=corp,dc=example,dc=com
`

func ldapRunner(t *testing.T, s *store.Store, srv *ldaptest.Server, extra string) *tasks.Runner {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("ROSTER_TEST_LDAP_PASSWORD", "reader-password")
	yaml := `log:
  dir: log
sources:
  - name: corp
    type: ldap
    url: ` + srv.URL + `
    bind_dn: cn=reader,dc=example,dc=com
    bind_password: ${ROSTER_TEST_LDAP_PASSWORD}
    base_dn: ou=corp,dc=example,dc=com
    page_size: 2
    retries: 0
` + extra
	path := filepath.Join(dir, "roster.yaml")
	writeFile(t, path, yaml)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SyncSources(t.Context(), []string{"corp"}, []string{"ldap"}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("ROSTER_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return &tasks.Runner{Store: s, Config: cfg, Log: log}
}

// ldapUser is a user of source corp as the store holds it.
type ldapUser struct {
	ID, ExternalID, UserName, State, Manager, Title, Email string
	Active                                                 bool
}

func ldapUsers(t *testing.T, s *store.Store) map[string]ldapUser {
	t.Helper()
	var rows []ldapUser
	err := s.DB().Raw(`SELECT u.id, u.external_id, u.user_name, u.state, u.manager, u.active,
		COALESCE((SELECT e.value FROM user_emails e WHERE e.user_id = u.id), '') AS email
		FROM users u WHERE u.source = 'corp'`).Scan(&rows).Error
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ldapUser{}
	for _, r := range rows {
		var doc string
		if err := s.DB().Raw(`SELECT attrs FROM users WHERE id = ?`, r.ID).Row().Scan(&doc); err != nil {
			t.Fatal(err)
		}
		if i := strings.Index(doc, `"title"`); i >= 0 {
			rest := doc[i+len(`"title"`):]
			rest = strings.TrimLeft(rest, ": ")
			r.Title = strings.Trim(rest[:strings.IndexAny(rest[1:], `"`)+2], `"`)
		}
		out[r.UserName] = r
	}
	return out
}

// ldapGroups lists each group of corp with its members' names (users by
// login, groups as "group:NAME"), sorted.
func ldapGroups(t *testing.T, s *store.Store) map[string][]string {
	t.Helper()
	var rows []struct{ Name, Member string }
	err := s.DB().Raw(`SELECT g.display_name AS name, COALESCE(u.user_name, 'group:' || mg.display_name, '') AS member
		FROM groups g LEFT JOIN memberships m ON m.group_id = g.id
		LEFT JOIN users u ON u.id = m.member_id AND m.member_type = 'User'
		LEFT JOIN groups mg ON mg.id = m.member_id AND m.member_type = 'Group'
		WHERE g.source = 'corp'`).Scan(&rows).Error
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		if r.Member == "" {
			out[r.Name] = append(out[r.Name][:0:0], out[r.Name]...)
			continue
		}
		out[r.Name] = append(out[r.Name], r.Member)
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

func TestLDAPSourceSync(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := ldaptest.Start(t, ldaptest.WithLDIF(corpLDIF))
		r := ldapRunner(t, s, srv, "")
		sync := func(want string) *tasks.Result {
			t.Helper()
			res, err := r.Sync(t.Context(), "corp", tasks.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Task.Status != want {
				t.Fatalf("task %d is %s, want %s: %s %s", res.Task.ID, res.Task.Status, want, res.Task.Errors, res.Task.Warnings)
			}
			return res
		}
		res := sync(store.StatusSucceeded)
		if c := counts(t, res.Task); c.Created != 4 {
			t.Fatalf("first sync counts %+v", c)
		}
		users := ldapUsers(t, s)
		jane, bob := users["jdoe"], users["bsmith"]
		if len(jane.ExternalID) != 36 || jane.Email != "jane.doe@example.com" || jane.Title != "Head of Engineering" || !jane.Active {
			t.Errorf("jdoe stored as %+v", jane)
		}
		if bob.Manager != jane.ID || users["cmueller"].Manager != jane.ID || jane.Manager != "" {
			t.Errorf("managers: bob %q clara %q, want %q", bob.Manager, users["cmueller"].Manager, jane.ID)
		}
		wantGroups := map[string][]string{
			"engineering": {"bsmith", "cmueller", "dlee", "jdoe"},
			"platform":    {"bsmith"},
			"everyone":    {"group:engineering"},
		}
		if g := ldapGroups(t, s); !equalGroups(g, wantGroups) {
			t.Errorf("groups %v, want %v", g, wantGroups)
		}
		raw, err := os.ReadFile(filepath.Join(r.Config.Dir, res.Task.RawRecord))
		if err != nil || !strings.HasSuffix(res.Task.RawRecord, ".ldif") {
			t.Fatalf("raw record %s: %v", res.Task.RawRecord, err)
		}
		if strings.Contains(string(raw), "secret") || strings.Contains(strings.ToLower(string(raw)), "userpassword") {
			t.Fatalf("the raw record holds a password:\n%s", raw)
		}
		checkLDAPRaw(t, srv, raw)
		sync(store.StatusSkipped)

		// An entry changes, one moves out of the base DN (an orphan), a
		// group loses a member and the nesting changes.
		srv.Apply(`dn: uid=bsmith,ou=people,ou=corp,dc=example,dc=com
changetype: modify
replace: mail
mail: robert.smith@example.com
-
replace: title
title: Staff Engineer

dn: uid=cmueller,ou=people,ou=corp,dc=example,dc=com
changetype: moddn
newrdn: uid=cmueller
deleteoldrdn: 1
newsuperior: ou=gone,dc=example,dc=com

dn: cn=platform,ou=groups,ou=corp,dc=example,dc=com
changetype: modify
add: uniqueMember
uniqueMember: cn=everyone,ou=groups,ou=corp,dc=example,dc=com
`)
		dry, err := r.Sync(t.Context(), "corp", tasks.Options{DryRun: true})
		if err != nil || dry.Task != nil || dry.Plan.Counts.Updated != 1 || dry.Plan.Counts.Deactivated != 1 {
			t.Fatalf("dry run: %+v %v", dry, err)
		}
		if ldapUsers(t, s)["cmueller"].State != "active" {
			t.Fatal("a dry run wrote")
		}
		res = sync(store.StatusSucceeded)
		if c := counts(t, res.Task); c.Updated != 1 || c.Deactivated != 1 || c.Unchanged != 2 {
			t.Fatalf("second sync counts %+v", c)
		}
		users = ldapUsers(t, s)
		if users["bsmith"].Email != "robert.smith@example.com" || users["bsmith"].Title != "Staff Engineer" {
			t.Errorf("bsmith after the change: %+v", users["bsmith"])
		}
		if users["cmueller"].State != "inactive" {
			t.Errorf("cmueller moved out of the base DN is %s", users["cmueller"].State)
		}
		wantGroups["platform"] = []string{"bsmith", "group:everyone"}
		if g := ldapGroups(t, s); !slices.Equal(g["platform"], wantGroups["platform"]) {
			t.Errorf("platform %v", g["platform"])
		}

		// Clara comes back: restored with the same id.
		srv.Apply(`dn: uid=cmueller,ou=gone,dc=example,dc=com
changetype: moddn
newrdn: uid=cmueller
deleteoldrdn: 1
newsuperior: ou=people,ou=corp,dc=example,dc=com
`)
		res = sync(store.StatusSucceeded)
		if c := counts(t, res.Task); c.Restored != 1 {
			t.Fatalf("restore counts %+v", c)
		}
		if u := ldapUsers(t, s)["cmueller"]; u.State != "active" || u.ID != users["cmueller"].ID || u.Manager != jane.ID {
			t.Errorf("cmueller after coming back: %+v", u)
		}
		srv.Apply(`dn: cn=platform,ou=groups,ou=corp,dc=example,dc=com
changetype: modify
delete: uniqueMember
uniqueMember: cn=everyone,ou=groups,ou=corp,dc=example,dc=com
`)
		sync(store.StatusSucceeded)
		if g := ldapGroups(t, s); !slices.Equal(g["platform"], []string{"bsmith"}) {
			t.Errorf("platform after the nesting went: %v", g["platform"])
		}
	})
}

// checkLDAPRaw compares the raw record of a sync of corpLDIF, entry by
// entry and attribute by attribute, with what the test loaded into slapd:
// every person and group under the base DN, each with the DN and the
// values loaded for every attribute the reader asks for (all loaded ones
// but objectClass and, of people, cn and userPassword), and entryUUID and
// modifyTimestamp as slapd holds them. Nothing else, and no password.
func checkLDAPRaw(t *testing.T, srv *ldaptest.Server, raw []byte) {
	t.Helper()
	loaded := map[string]*ldap.Entry{}
	if err := ldap.ReadLDIF(strings.NewReader(corpLDIF), func(_ ldap.Kind, e *ldap.Entry) error {
		loaded[strings.ToLower(e.DN)] = e
		return nil
	}); err != nil {
		t.Fatalf("read corpLDIF: %v", err)
	}
	// The entries a sync reads: people as users, groups as groups.
	want := map[string]ldap.Kind{}
	for dn, e := range loaded {
		for _, oc := range e.Values("objectClass") {
			switch string(oc) {
			case "inetOrgPerson":
				want[dn] = ldap.KindUser
			case "groupOfNames", "groupOfUniqueNames":
				want[dn] = ldap.KindGroup
			}
		}
	}
	conn := srv.Conn()
	got := map[string]bool{}
	if err := ldap.ReadLDIF(bytes.NewReader(raw), func(kind ldap.Kind, e *ldap.Entry) error {
		dn := strings.ToLower(e.DN)
		in, ok := loaded[dn]
		switch {
		case !ok:
			t.Errorf("the raw record holds %s, which the test did not load", e.DN)
			return nil
		case want[dn] != kind:
			t.Errorf("the raw record holds %s in search %v, want %v", e.DN, kind, want[dn])
		case got[dn]:
			t.Errorf("the raw record holds %s twice", e.DN)
		}
		got[dn] = true
		if e.DN != in.DN {
			t.Errorf("the raw record's dn %q, loaded as %q", e.DN, in.DN)
		}
		// The attributes loaded that the reader asks for, and the
		// operational ones slapd keeps, as it holds them now.
		wantAttrs := map[string][]string{}
		for _, a := range in.Attrs {
			name := strings.ToLower(a.Name)
			if name == "objectclass" || kind == ldap.KindUser && (name == "cn" || name == "userpassword") {
				continue
			}
			wantAttrs[name] = texts(a.Values)
		}
		if kind == ldap.KindUser {
			sr, err := conn.Search(goldap.NewSearchRequest(e.DN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
				"(objectClass=*)", []string{"entryUUID", "modifyTimestamp"}, nil))
			if err != nil || len(sr.Entries) != 1 {
				t.Fatalf("read %s from slapd: %v", e.DN, err)
			}
			for _, a := range sr.Entries[0].Attributes {
				wantAttrs[strings.ToLower(a.Name)] = a.Values
			}
		}
		for _, a := range e.Attrs {
			name := strings.ToLower(a.Name)
			w, ok := wantAttrs[name]
			if !ok {
				t.Errorf("%s: the raw record holds %s %q, which is not loaded or not asked for", e.DN, a.Name, texts(a.Values))
				continue
			}
			if g := texts(a.Values); !slices.Equal(g, w) {
				t.Errorf("%s: %s is %q in the raw record, %q in slapd", e.DN, a.Name, g, w)
			}
			delete(wantAttrs, name)
		}
		for name, w := range wantAttrs {
			t.Errorf("%s: the raw record lacks %s %q", e.DN, name, w)
		}
		return nil
	}); err != nil {
		t.Fatalf("read the raw record: %v\n%s", err, raw)
	}
	for dn := range want {
		if !got[dn] {
			t.Errorf("the raw record lacks %s", loaded[dn].DN)
		}
	}
}

func texts(vs [][]byte) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func equalGroups(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestLDAPSourceFailures(t *testing.T) {
	srv := ldaptest.Start(t, ldaptest.WithLDIF(corpLDIF+`
dn: uid=jdoe2,ou=people,ou=corp,dc=example,dc=com
objectClass: inetOrgPerson
uid: JDoe
cn: Jane Again
sn: Doe
`))
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := ldapRunner(t, s, srv, "")
		res, err := r.Sync(t.Context(), "corp", tasks.Options{})
		if err != nil {
			t.Fatal(err)
		}
		v := tasks.ViewOf(res.Task, nil)
		want := `ldap source corp: entry "uid=jdoe2,ou=people,ou=corp,dc=example,dc=com" (userName): the login "JDoe" is already the login of entry "uid=jdoe,ou=people,ou=corp,dc=example,dc=com"`
		if res.Task.Status != store.StatusFailed || len(v.Errors) != 1 || !strings.HasPrefix(v.Errors[0].Message, want) {
			t.Fatalf("two entries with one login: %s %+v", res.Task.Status, v.Errors)
		}
		if res.Task.RawRecord == "" || len(ldapUsers(t, s)) != 0 {
			t.Fatalf("an invalid read keeps its raw record (%q) and writes nothing", res.Task.RawRecord)
		}

		// A refused bind fails the task, keeps no raw record, and is not
		// transient.
		r.Config.Sources[0].BindPassword = "wrong"
		res, err = r.Sync(t.Context(), "corp", tasks.Options{})
		if err != nil {
			t.Fatal(err)
		}
		v = tasks.ViewOf(res.Task, nil)
		if res.Task.Status != store.StatusFailed || res.Task.RawRecord != "" || res.Task.Transient ||
			!strings.Contains(v.Errors[0].Message, "invalid credentials") {
			t.Fatalf("bind failure: %s %q %v %+v", res.Task.Status, res.Task.RawRecord, res.Task.Transient, v.Errors)
		}
		// A server that is down is transient.
		r.Config.Sources[0].BindPassword = "reader-password"
		r.Config.Sources[0].URL = "ldap://127.0.0.1:1"
		res, err = r.Sync(t.Context(), "corp", tasks.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Task.Status != store.StatusFailed || !res.Task.Transient {
			t.Fatalf("unreachable server: %s transient %v", res.Task.Status, res.Task.Transient)
		}
	})
}

// adLDIF holds Active Directory shaped entries in slapd (the AD schema of
// ldaptest): binary objectGUIDs, sAMAccountName, userAccountControl with
// a disabled account (514 = NORMAL_ACCOUNT | ACCOUNTDISABLE).
const adLDIF = `dn: ou=staff,dc=example,dc=com
objectClass: organizationalUnit
ou: staff

dn: cn=Jane Doe,ou=staff,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: adUser
cn: Jane Doe
sn: Doe
givenName: Jane
objectGUID:: /xmWb4aLEdC0LQDAT8lk/w==
sAMAccountName: jdoe
userPrincipalName: jane.doe@example.com
userAccountControl: 512
department: Research

dn: cn=Bob Smith,ou=staff,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: adUser
cn: Bob Smith
sn: Smith
givenName: Bob
objectGUID:: AQIDBAUGBwgJCgsMDQ4PEA==
sAMAccountName: bsmith
userAccountControl: 514
manager: cn=Jane Doe,ou=staff,dc=example,dc=com

dn: cn=Research,ou=staff,dc=example,dc=com
objectClass: groupOfNames
objectClass: adGroup
cn: Research
member: cn=Jane Doe,ou=staff,dc=example,dc=com
member: cn=Bob Smith,ou=staff,dc=example,dc=com
`

func TestLDAPActiveDirectoryFlavor(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := ldaptest.Start(t, ldaptest.WithLDIF(adLDIF))
		r := ldapRunner(t, s, srv, `    flavor: active_directory
    user_filter: (objectClass=adUser)
    group_filter: (objectClass=adGroup)
`)
		r.Config.Sources[0].BaseDN = "ou=staff,dc=example,dc=com"
		res, err := r.Sync(t.Context(), "corp", tasks.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Task.Status != store.StatusSucceeded || counts(t, res.Task).Created != 2 {
			t.Fatalf("sync: %s %s %s", res.Task.Status, res.Task.Counts, res.Task.Errors)
		}
		users := ldapUsers(t, s)
		jane, bob := users["jdoe"], users["bsmith"]
		if jane.ExternalID != "6f9619ff-8b86-d011-b42d-00c04fc964ff" || jane.State != "active" {
			t.Errorf("jdoe: %+v", jane)
		}
		if bob.ExternalID != "04030201-0605-0807-090a-0b0c0d0e0f10" || bob.Active || bob.State != "inactive" || bob.Manager != jane.ID {
			t.Errorf("bsmith (disabled, managed by jdoe): %+v", bob)
		}
		var dept string
		if err := s.DB().Raw(`SELECT department FROM users WHERE id = ?`, jane.ID).Row().Scan(&dept); err != nil || dept != "Research" {
			t.Errorf("department %q %v", dept, err)
		}
		if g := ldapGroups(t, s); !slices.Equal(g["Research"], []string{"bsmith", "jdoe"}) {
			t.Errorf("groups %v", g)
		}

		// Enabling the account in the directory activates the user.
		srv.Apply(`dn: cn=Bob Smith,ou=staff,dc=example,dc=com
changetype: modify
replace: userAccountControl
userAccountControl: 512
`)
		res, err = r.Sync(t.Context(), "corp", tasks.Options{})
		if err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("second sync: %v %+v", err, res)
		}
		if u := ldapUsers(t, s)["bsmith"]; !u.Active || u.State != "active" {
			t.Errorf("bsmith enabled again: %+v", u)
		}

		// userPrincipalName as the login, by map.
		r.Config.Sources[0].Map = map[string]string{"userName": "userPrincipalName"}
		res, err = r.Sync(t.Context(), "corp", tasks.Options{})
		if err != nil || res.Task.Status != store.StatusFailed {
			t.Fatalf("bob has no userPrincipalName: %v %+v", err, res.Task)
		}
		if v := tasks.ViewOf(res.Task, nil); !strings.Contains(v.Errors[0].Message, `entry "cn=Bob Smith,ou=staff,dc=example,dc=com" (userName): the entry has no userPrincipalName`) {
			t.Errorf("missing login: %+v", v.Errors)
		}
	})
}

// TestLDAPChangedOnly: scheduled syncs read only the users changed since
// the last read (modifyTimestamp, from ldap.ChangeMargin before the last
// read began on), until full_every has passed since the last full read,
// which then finds the orphans the changed-only reads cannot see. The
// people are loaded as changed long ago, so that the margin does not
// read them again.
func TestLDAPChangedOnly(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := ldaptest.Start(t, ldaptest.WithLDIF(strings.ReplaceAll(corpLDIF,
			"objectClass: inetOrgPerson\n", "objectClass: inetOrgPerson\nmodifyTimestamp: 20200101000000Z\n")))
		r := ldapRunner(t, s, srv, "    full_every: 1h\n")
		sync := func(trigger string) *tasks.Result {
			t.Helper()
			res, err := r.Sync(t.Context(), "corp", tasks.Options{Trigger: trigger})
			if err != nil || res.Task.Status != store.StatusSucceeded {
				t.Fatalf("sync (%s): %v %+v", trigger, err, res)
			}
			return res
		}
		// A scheduled sync with nothing read before reads everything.
		if c := counts(t, sync(tasks.TriggerSchedule).Task); c.Created != 4 {
			t.Fatalf("first sync %+v", c)
		}
		jane := ldapUsers(t, s)["jdoe"]
		srv.Apply("dn: uid=dlee,ou=people,ou=corp,dc=example,dc=com\nchangetype: modify\nreplace: title\ntitle: Intern\n")
		if c := counts(t, sync(tasks.TriggerSchedule).Task); c.Updated != 1 || c.Unchanged != 0 {
			t.Fatalf("changed-only sync read dlee only: %+v", c)
		}
		srv.Apply(`dn: uid=bsmith,ou=people,ou=corp,dc=example,dc=com
changetype: modify
replace: title
title: Staff Engineer

dn: uid=cmueller,ou=people,ou=corp,dc=example,dc=com
changetype: moddn
newrdn: uid=cmueller
deleteoldrdn: 1
newsuperior: ou=gone,dc=example,dc=com
`)
		res := sync(tasks.TriggerSchedule)
		if c := counts(t, res.Task); c.Updated != 1 || c.Unchanged != 1 || c.Deactivated != 0 {
			t.Fatalf("changed-only sync read bsmith, and dlee again (changed within the margin), only: %+v", c)
		}
		raw, err := os.ReadFile(filepath.Join(r.Config.Dir, res.Task.RawRecord))
		if err != nil || !strings.Contains(string(raw), "# roster-read: changed since ") || strings.Contains(string(raw), "dn: uid=jdoe,") {
			t.Fatalf("raw record of a changed-only read:\n%s", raw)
		}
		users := ldapUsers(t, s)
		if users["bsmith"].Title != "Staff Engineer" || users["bsmith"].Manager != jane.ID || users["cmueller"].State != "active" {
			t.Errorf("after the changed-only read: bsmith %+v, cmueller %+v", users["bsmith"], users["cmueller"])
		}
		if g := ldapGroups(t, s); !slices.Equal(g["engineering"], []string{"bsmith", "cmueller", "dlee", "jdoe"}) {
			t.Errorf("a changed-only read changed the memberships of users it did not read: %v", g["engineering"])
		}
		// A manual sync reads everything and finds the orphan.
		if c := counts(t, sync(tasks.TriggerManual).Task); c.Deactivated != 1 {
			t.Fatalf("full read %+v", c)
		}
		// So does a scheduled one once full_every has passed.
		r.Config.Sources[0].FullEvery = config.Duration(time.Nanosecond)
		srv.Apply(`dn: uid=cmueller,ou=gone,dc=example,dc=com
changetype: moddn
newrdn: uid=cmueller
deleteoldrdn: 1
newsuperior: ou=people,ou=corp,dc=example,dc=com
`)
		res = sync(tasks.TriggerSchedule)
		raw, _ = os.ReadFile(filepath.Join(r.Config.Dir, res.Task.RawRecord))
		if c := counts(t, res.Task); c.Restored != 1 || strings.Contains(string(raw), "changed since") {
			t.Fatalf("full read after full_every: %+v", c)
		}
	})
}

// TestLDAPMultiValued: LDAP attributes with several values fill
// multi-valued attributes with all of them (roles, entitlements, a
// multi_valued custom attribute), sorted; a value removed in the
// directory goes at the next sync, and a user without the attribute has
// none.
func TestLDAPMultiValued(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := ldaptest.Start(t, ldaptest.WithLDIF(corpLDIF+`
dn: uid=emulti,ou=people,ou=corp,dc=example,dc=com
objectClass: inetOrgPerson
uid: emulti
cn: Eve Multi
givenName: Eve
sn: Multi
employeeType: lead
employeeType: on-call
businessCategory: vpn
businessCategory: payroll
ou: Berlin
ou: Remote
`))
		r := ldapRunner(t, s, srv, `    map:
      roles: employeeType
      entitlements.value: businessCategory
      sites: ou
attributes:
  custom:
    - name: sites
      type: string
      multi_valued: true
`)
		doc := func(login string) string {
			t.Helper()
			var raw string
			if err := s.DB().Raw(`SELECT attrs FROM users WHERE source = 'corp' AND user_name = ?`, login).Row().Scan(&raw); err != nil {
				t.Fatal(err)
			}
			d, err := attrs.Decode([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			d.Title = ""
			out, _ := d.Encode()
			return out
		}
		res, err := r.Sync(t.Context(), "corp", tasks.Options{})
		if err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("sync: %v %+v", err, res)
		}
		want := `{"entitlements":[{"value":"payroll"},{"value":"vpn"}],"roles":[{"value":"lead"},{"value":"on-call"}],"custom":{"sites":["Berlin","Remote"]}}`
		if got := doc("emulti"); got != want {
			t.Errorf("emulti: %s\nwant %s", got, want)
		}
		if got := doc("jdoe"); got != "" {
			t.Errorf("jdoe has none of the attributes: %s", got)
		}
		srv.Apply(`dn: uid=emulti,ou=people,ou=corp,dc=example,dc=com
changetype: modify
delete: employeeType
employeeType: lead
-
delete: businessCategory
-
add: ou
ou: Paris
`)
		res, err = r.Sync(t.Context(), "corp", tasks.Options{})
		if err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("second sync: %v %+v", err, res)
		}
		if c := counts(t, res.Task); c.Updated != 1 {
			t.Errorf("second sync counts %+v", c)
		}
		want = `{"roles":[{"value":"on-call"}],"custom":{"sites":["Berlin","Paris","Remote"]}}`
		if got := doc("emulti"); got != want {
			t.Errorf("emulti after the change: %s\nwant %s", got, want)
		}
	})
}
