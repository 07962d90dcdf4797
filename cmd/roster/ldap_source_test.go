package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/sources/ldap/ldaptest"
)

const ldapPeople = `dn: uid=jdoe,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: jdoe
cn: Jane Doe
givenName: Jane
sn: Doe
userPassword: jane-secret

dn: uid=bsmith,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bsmith
cn: Bob Smith
givenName: Bob
sn: Smith

dn: cn=engineering,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: engineering
member: uid=jdoe,ou=people,dc=example,dc=com
`

// TestLDAPSourceCLI checks an ldap source with roster check --source,
// which writes nothing (no store is created or migrated), then syncs it.
func TestLDAPSourceCLI(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			srv := ldaptest.Start(t, ldaptest.WithLDIF(ldapPeople))
			w := newWorkdir(t, driver)
			w.write(t, "ldap-password", "reader-password\n")
			w.write(t, "roster.yaml", fmt.Sprintf(`log:
  dir: log
store:
  driver: %s
  dsn: %s
sources:
  - name: corp
    type: ldap
    url: %s
    bind_dn: cn=reader,dc=example,dc=com
    bind_password: ${file:ldap-password}
    base_dn: dc=example,dc=com
`, driver, yamlQuote(w.dsn), srv.URL))
			r := w.want(t, 0, "check", "--source", "corp")
			for _, want := range []string{"corp: the store is empty, not migrated or not there yet", "dry run of corp: nothing was written",
				"would have: created 2, updated 0", "create group engineering"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("check output lacks %q:\n%s", want, r)
				}
			}
			if driver == store.SQLite {
				if _, err := os.Stat(w.dsn); !os.IsNotExist(err) {
					t.Errorf("roster check created the store %s (%v)", w.dsn, err)
				}
			} else {
				s, err := store.Open(context.Background(), driver, w.dsn)
				if err != nil {
					t.Fatal(err)
				}
				v, err := s.SchemaVersion(context.Background())
				s.Close()
				if err != nil || v != 0 {
					t.Errorf("roster check migrated the store: version %d, %v", v, err)
				}
			}

			task := w.task(t, 0, "sync", "corp", "--json")
			if task.Status != "succeeded" || task.Counts.Created != 2 || task.RawRecord == nil || !strings.HasSuffix(*task.RawRecord, ".ldif") {
				t.Fatalf("sync: %+v", task)
			}
			if raw := w.read(t, *task.RawRecord); strings.Contains(raw, "jane-secret") || !strings.Contains(raw, "dn: uid=jdoe") {
				t.Errorf("raw record:\n%s", raw)
			}
			// Against the migrated store that knows the source now.
			r = w.want(t, 0, "check", "--source", "corp")
			if !strings.Contains(r.stdout, "would have: created 0, updated 0, unchanged 2") || strings.Contains(r.stdout, "store is empty") {
				t.Errorf("check after the sync:\n%s", r)
			}
			w.write(t, "ldap-password", "wrong\n")
			r = w.run(t, "check", "--source", "corp")
			if r.code == 0 || !strings.Contains(r.stdout+r.stderr, `the bind as "cn=reader,dc=example,dc=com" was refused: invalid credentials`) ||
				strings.Contains(r.stdout+r.stderr, "wrong") {
				t.Errorf("check with a wrong password:\n%s", r)
			}
		})
	}
}
