package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/ldap/ldaptest"
)

// TestScheduledLDAPSource: the daemon syncs an ldap source at start and on
// its schedule; the scheduled reads after the first full one read what
// changed only.
func TestScheduledLDAPSource(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		srv := ldaptest.Start(t, ldaptest.WithLDIF(`dn: uid=jdoe,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: jdoe
cn: Jane Doe
sn: Doe
`))
		dir := t.TempDir()
		cfg := loadConfig(t, dir, `sources:
  - name: corp
    type: ldap
    url: `+srv.URL+`
    bind_dn: cn=reader,dc=example,dc=com
    bind_password: reader-password
    base_dn: ou=people,dc=example,dc=com
    schedule: "@every 1s"
`)
		h := startConfig(t, st, cfg)
		eventually(t, 30*time.Second, "the schedule made no tasks", func() bool { return len(h.finished("corp")) >= 3 })
		changed := 0
		for i, tk := range h.finished("corp") {
			if tk.Trigger != tasks.TriggerSchedule || (i == 0 && tk.Status != store.StatusSucceeded) ||
				(tk.Status != store.StatusSucceeded && tk.Status != store.StatusSkipped) {
				t.Fatalf("task %d is %s/%s: %s", tk.ID, tk.Trigger, tk.Status, tk.Errors)
			}
			if tk.RawRecord == "" {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(dir, tk.RawRecord))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), "# roster-read: changed since ") {
				changed++
				if i == 0 {
					t.Errorf("the first read was changed-only")
				}
			}
		}
		if changed == 0 {
			t.Errorf("no scheduled read was changed-only")
		}
	})
}
