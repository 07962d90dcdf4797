package tasks_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/ldap/ldaptest"
)

// streamLDIF is corpLDIF with two more people: early, whose manager late
// is read after them, and late, switched off (employeeType FALSE, mapped
// to active).
const streamLDIF = corpLDIF + `
dn: uid=early,ou=people,ou=corp,dc=example,dc=com
objectClass: inetOrgPerson
uid: early
cn: Early Bird
sn: Bird
manager: uid=late,ou=people,ou=corp,dc=example,dc=com

dn: uid=late,ou=people,ou=corp,dc=example,dc=com
objectClass: inetOrgPerson
uid: late
cn: Late Comer
sn: Comer
employeeType: FALSE
`

// TestLDAPStreamedSyncMatchesWhole reads the same directory, change after
// change, into two stores: one syncs every read as a stream, two records
// a chunk (limits.stream_from: 0), the other plans every read whole. After
// each sync both must hold the same users (managers by login, disabled
// ones), groups, memberships and nested groups, and both tasks the same
// counts and warnings.
func TestLDAPStreamedSyncMatchesWhole(t *testing.T) {
	defer tasks.SetStreamChunk(2)()
	steps := []struct{ name, change string }{
		{"first import", ""},
		{"unchanged", ""},
		{"an entry changes, one leaves, a manager changes, a group nests, late is switched on", `dn: uid=bsmith,ou=people,ou=corp,dc=example,dc=com
changetype: modify
replace: mail
mail: robert.smith@example.com

dn: uid=cmueller,ou=people,ou=corp,dc=example,dc=com
changetype: moddn
newrdn: uid=cmueller
deleteoldrdn: 1
newsuperior: ou=gone,dc=example,dc=com

dn: uid=dlee,ou=people,ou=corp,dc=example,dc=com
changetype: modify
add: manager
manager: uid=late,ou=people,ou=corp,dc=example,dc=com

dn: uid=late,ou=people,ou=corp,dc=example,dc=com
changetype: modify
replace: employeeType
employeeType: TRUE

dn: cn=platform,ou=groups,ou=corp,dc=example,dc=com
changetype: modify
add: uniqueMember
uniqueMember: cn=everyone,ou=groups,ou=corp,dc=example,dc=com
`},
		{"she comes back, the nesting goes, a new boss manages jdoe", `dn: uid=cmueller,ou=gone,dc=example,dc=com
changetype: moddn
newrdn: uid=cmueller
deleteoldrdn: 1
newsuperior: ou=people,ou=corp,dc=example,dc=com

dn: cn=platform,ou=groups,ou=corp,dc=example,dc=com
changetype: modify
delete: uniqueMember
uniqueMember: cn=everyone,ou=groups,ou=corp,dc=example,dc=com

dn: uid=newboss,ou=people,ou=corp,dc=example,dc=com
changetype: add
objectClass: inetOrgPerson
uid: newboss
cn: New Boss
sn: Boss

dn: uid=jdoe,ou=people,ou=corp,dc=example,dc=com
changetype: modify
add: manager
manager: uid=newboss,ou=people,ou=corp,dc=example,dc=com
`},
	}
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			srv := ldaptest.Start(t, ldaptest.WithLDIF(streamLDIF))
			streamed, whole := storetest.Open(t, driver), storetest.Open(t, driver)
			const extra = "    map:\n      active: employeeType\n"
			rs, rw := ldapRunner(t, streamed, srv, extra), ldapRunner(t, whole, srv, extra)
			rs.Config.Limits.StreamFrom = 0
			rw.Config.Limits.StreamFrom = 1 << 40
			ctx := context.Background()
			for _, step := range steps {
				if step.change != "" {
					srv.Apply(step.change)
				}
				a, err := rs.Sync(ctx, "corp", tasks.Options{Force: true})
				if err != nil {
					t.Fatal(err)
				}
				b, err := rw.Sync(ctx, "corp", tasks.Options{Force: true})
				if err != nil {
					t.Fatal(err)
				}
				if a.Task.Status != store.StatusSucceeded || a.Task.Status != b.Task.Status || a.Task.Counts != b.Task.Counts ||
					a.Task.Warnings != b.Task.Warnings {
					t.Fatalf("%s: streamed %s %s %s %s, whole %s %s %s", step.name, a.Task.Status, a.Task.Counts, a.Task.Errors, a.Task.Warnings,
						b.Task.Status, b.Task.Counts, b.Task.Warnings)
				}
				// A streamed sync's plan is its summary: its changes were
				// applied chunk by chunk.
				if len(a.Plan.Changes) != 0 || (step.name == "first import" && len(b.Plan.Changes) == 0) {
					t.Fatalf("%s: the streamed sync planned %d changes at once, the whole one %d", step.name, len(a.Plan.Changes), len(b.Plan.Changes))
				}
				if x, y := ldapDump(t, streamed), ldapDump(t, whole); !reflect.DeepEqual(x, y) {
					t.Fatalf("%s: the directories differ:\nstreamed %v\nwhole    %v", step.name, x, y)
				}
			}
			users := ldapUsers(t, streamed)
			if u := users["early"]; u.Manager != users["late"].ID || users["late"].Active != true || users["jdoe"].Manager != users["newboss"].ID {
				t.Errorf("managers and states after the last step: %+v", users)
			}
		})
	}
}

// ldapDump describes source corp's users, groups and nested groups without
// their generated ids: managers by login.
func ldapDump(t *testing.T, s *store.Store) []string {
	t.Helper()
	snap, err := s.Snapshot(context.Background(), "corp")
	if err != nil {
		t.Fatal(err)
	}
	login := map[string]string{}
	for _, u := range snap.Users {
		login[u.ID] = u.UserName
	}
	group := map[string]string{}
	for _, g := range snap.Groups {
		group[g.ID] = g.DisplayName
	}
	var out []string
	for _, u := range snap.Users {
		u.ID, u.Manager = "", login[u.Manager]
		out = append(out, fmt.Sprintf("%+v", u))
	}
	for _, g := range snap.Groups {
		out = append(out, "group "+g.DisplayName)
	}
	for _, m := range snap.Nested {
		out = append(out, "nested "+group[m.UserID]+" in "+group[m.GroupID])
	}
	slices.Sort(out)
	return out
}
