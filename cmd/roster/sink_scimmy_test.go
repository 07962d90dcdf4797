package main

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/internal/scimpeer"
)

// scimmyHolds describes what the service holds as comparable lines: each
// user with what the sink sends of a csv user, each group with its
// members' userNames.
func scimmyHolds(t *testing.T, peer *scimpeer.Peer) (users map[string]string, groups map[string][]string) {
	t.Helper()
	users, groups = map[string]string{}, map[string][]string{}
	names := map[string]string{}
	for _, u := range peer.List("/Users") {
		name, _ := u["name"].(map[string]any)
		var emails []string
		list, _ := u["emails"].([]any)
		for _, e := range list {
			emails = append(emails, fmt.Sprint(e.(map[string]any)["value"]))
		}
		login := u["userName"].(string)
		if _, dup := users[login]; dup {
			t.Fatalf("the service holds %s twice", login)
		}
		users[login] = fmt.Sprintf("%v|%v|%v|%s|%v", u["externalId"], name["givenName"], name["familyName"], strings.Join(emails, ","), u["active"])
		names[u["id"].(string)] = login
	}
	for _, g := range peer.List("/Groups") {
		var ms []string
		list, _ := g["members"].([]any)
		for _, m := range list {
			ms = append(ms, names[m.(map[string]any)["value"].(string)])
		}
		slices.Sort(ms)
		dn := g["displayName"].(string)
		if _, dup := groups[dn]; dup {
			t.Fatalf("the service holds group %s twice", dn)
		}
		groups[dn] = ms
	}
	return users, groups
}

// scimmyWants is what the service should hold for people, with the users
// in gone deactivated.
func scimmyWants(people []person, gone []person) (users map[string]string, groups map[string][]string) {
	users, groups = map[string]string{}, map[string][]string{}
	for _, p := range people {
		users[p.Login] = fmt.Sprintf("%s|%s|%s|%s|true", p.ID, p.First, p.Last, p.Email)
		groups[p.Groups] = append(groups[p.Groups], p.Login)
	}
	for _, p := range gone {
		users[p.Login] = fmt.Sprintf("%s|%s|%s|%s|false", p.ID, p.First, p.Last, p.Email)
	}
	for _, ms := range groups {
		slices.Sort(ms)
	}
	return users, groups
}

// scimmyConverges waits until the service holds exactly what is wanted.
func scimmyConverges(t *testing.T, what string, peer *scimpeer.Peer, people, gone []person) {
	t.Helper()
	wantUsers, wantGroups := scimmyWants(people, gone)
	var first string
	for deadline := time.Now().Add(4 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		users, groups := scimmyHolds(t, peer)
		first = ""
		for k, w := range wantUsers {
			if users[k] != w {
				first = fmt.Sprintf("user %s is %q on the service, want %q", k, users[k], w)
				break
			}
		}
		for k := range users {
			if _, ok := wantUsers[k]; !ok && first == "" {
				first = "the service holds " + k + " only"
			}
		}
		for k, w := range wantGroups {
			if !slices.Equal(groups[k], w) && first == "" {
				first = fmt.Sprintf("group %s has %d members on the service, want %d", k, len(groups[k]), len(w))
			}
		}
		if len(groups) != len(wantGroups) && first == "" {
			first = fmt.Sprintf("the service holds %d groups, want %d", len(groups), len(wantGroups))
		}
		if first == "" {
			return
		}
	}
	t.Fatalf("%s: %s", what, first)
}

// TestSinkToScimmyServe provisions the independent scimmy SCIM service
// from `roster serve` on each store, through /Bulk: roster killed with
// SIGKILL in the middle of the first delivery, then drift on the service
// put right once compare_every is shortened by a reload (SIGHUP); each
// time the service ends up equal to the directory, without duplicates,
// and no log holds the token.
func TestSinkToScimmyServe(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			peer := scimpeer.Start(t, scimpeer.Options{Token: sinkToken, Bulk: 25})
			people := sinkPeople(1000, "Given")
			up := newWorkdir(t, driver)
			up.write(t, "staff.csv", csvOf(people))
			sinkYAML := func(compareEvery string) string {
				// orphans: delete, so that people leaving the file leave
				// their groups too (the service deactivates them).
				return strings.Replace(serveConfig(up, ""), "    watch: true\n", "    watch: true\n    orphans: delete\n    max_removals: 100%\n", 1) + fmt.Sprintf("sinks:\n  - name: scimmy\n    url: %s\n    auth: {bearer: %s}\n    interval: 200ms\n"+
					"    compare_every: %s\n    limits: {rate: 100/s, concurrency: 2}\n", peer.URL, sinkToken, compareEvery)
			}
			up.write(t, "roster.yaml", sinkYAML("24h"))
			proc := startServeProc(t, up)
			for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
				if n := peer.Stats()["POST /Bulk"]; n >= 8 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the first delivery did not start: %s", proc.stderr)
				}
			}
			proc.signalAndWait(t, syscall.SIGKILL, 10*time.Second)
			if users, _ := scimmyHolds(t, peer); len(users) >= 1000 {
				t.Fatal("the first delivery was over before roster was killed: the test proves nothing")
			}
			logs := proc.stderr.String()
			proc = startServeProc(t, up)
			scimmyConverges(t, "after a kill during the first delivery", peer, people, nil)

			// Drift on the service, then compare_every 1s by a reload.
			var list struct {
				Resources []map[string]any `json:"Resources"`
			}
			peer.Do("GET", `/Users?filter=userName%20eq%20%22user00007%22`, nil, &list)
			peer.Do("PATCH", "/Users/"+list.Resources[0]["id"].(string), map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "replace", "path": "name.givenName", "value": "Drifted"}}}, nil)
			peer.Do("GET", `/Users?filter=userName%20eq%20%22user00008%22`, nil, &list)
			peer.Do("DELETE", "/Users/"+list.Resources[0]["id"].(string), nil, nil)
			time.Sleep(time.Second)
			if users, _ := scimmyHolds(t, peer); !strings.Contains(users["user00007"], "Drifted") {
				t.Fatal("the drift was put right before compare_every allowed: the test proves nothing")
			}
			up.write(t, "roster.yaml", sinkYAML("1s"))
			if err := proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			// Removals upstream arrive too.
			gone := people[990:]
			people = people[:990]
			up.write(t, "staff.csv", csvOf(people))
			scimmyConverges(t, "after drift and a reload", peer, people, gone)
			logs += proc.stderr.String()
			proc.signalAndWait(t, syscall.SIGTERM, 30*time.Second)
			logs += proc.stderr.String()
			if strings.Contains(logs, sinkToken) {
				t.Fatal("a log holds the sink's token")
			}
		})
	}
}
