package tasks_test

import (
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestPushOwners: isOwner on a department that arrives later, and on one
// that is deleted and comes back, is served as soon as the department is
// there; a later list of departments without it ends it.
func TestPushOwners(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s)
		ok := func(body string) {
			t.Helper()
			if task := pushNow(t, r, body); task.Status != store.StatusSucceeded {
				t.Fatalf("push %s: %s %s", body, task.Status, task.Errors)
			}
		}
		owners := func() map[string][]string {
			t.Helper()
			groups, _, err := s.ListGroups(t.Context(), store.GroupFilter{Source: "api", Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			out := map[string][]string{}
			for _, g := range groups {
				for _, o := range g.Owners {
					out[g.ExternalID] = append(out[g.ExternalID], o.UserName)
				}
			}
			return out
		}
		ok(`{"dataType":"user","records":[{"uid":"1","username":"ada","departments":[{"uid":"d-1","isOwner":true}]},
			{"uid":"2","username":"bob","departments":["d-1"]}]}`)
		if got := owners(); len(got) != 0 {
			t.Fatalf("owners before the department came: %v", got)
		}
		ok(`{"dataType":"department","records":[{"uid":"d-1","title":"One"}]}`)
		if got := owners(); len(got["d-1"]) != 1 || got["d-1"][0] != "ada" {
			t.Fatalf("owners once the department came: %v", got)
		}
		ok(`{"dataType":"department","records":[{"uid":"d-1","isDeleted":true}]}`)
		ok(`{"dataType":"department","records":[{"uid":"d-1","title":"One again"}]}`)
		if got := owners(); len(got["d-1"]) != 1 || got["d-1"][0] != "ada" {
			t.Fatalf("owners after the department came back: %v", got)
		}
		ok(`{"dataType":"user","records":[{"uid":"1","departments":["d-1"]},{"uid":"2","departments":[{"uid":"d-1","isOwner":true}]}]}`)
		if got := owners(); len(got["d-1"]) != 1 || got["d-1"][0] != "bob" {
			t.Fatalf("owners after ada's list left it out and bob's named it: %v", got)
		}
	})
}
