package store_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/sources"
)

func TestDirectoryCounts(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.SyncSources(ctx, []string{"staff", "hr", "idle"}, []string{"csv", "csv", "csv"}); err != nil {
			t.Fatal(err)
		}
		empty, err := s.DirectoryCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(empty.Users) != 0 || len(empty.Groups) != 0 {
			t.Fatalf("counts of an empty directory = %+v", empty)
		}

		ids := seq()
		del := reconcile.Settings{Orphans: reconcile.OrphansDelete, ActivateNew: true, Restore: true}
		deact := reconcile.Settings{Orphans: reconcile.OrphansDeactivate, ActivateNew: true, Restore: true}
		apply := func(source string, recs []sources.Record, set reconcile.Settings) {
			t.Helper()
			if err := s.Apply(ctx, source, plan(t, s, source, recs, set, ids), "fp"); err != nil {
				t.Fatal(err)
			}
		}
		apply("staff", []sources.Record{rec(1, "1", "anna", "Sales"), rec(2, "2", "bob", "Eng"), rec(3, "3", "carl")}, del)
		apply("staff", []sources.Record{rec(1, "1", "anna", "Sales"), rec(2, "2", "bob", "Sales")}, del) // carl deleted, Eng gone
		apply("hr", []sources.Record{rec(1, "h1", "dora", "HR"), rec(2, "h2", "emil", "HR", "Ops")}, deact)
		apply("hr", []sources.Record{rec(1, "h1", "dora", "HR", "Ops")}, deact) // emil deactivated

		for _, status := range []string{store.StatusHeld, store.StatusQueued, store.StatusQueued, store.StatusFailed} {
			if err := s.CreateTask(ctx, &store.Task{Source: "hr", Trigger: "push", Status: status}); err != nil {
				t.Fatal(err)
			}
		}

		got, err := s.DirectoryCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := &store.DirectoryCounts{
			Users: map[string]map[string]int64{
				"staff": {reconcile.StateActive: 2, reconcile.StateDeleted: 1},
				"hr":    {reconcile.StateActive: 1, reconcile.StateInactive: 1},
			},
			Groups:  map[string]int64{"staff": 1, "hr": 2},
			Waiting: map[string]map[string]int64{"hr": {store.StatusHeld: 1, store.StatusQueued: 2}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DirectoryCounts = %+v, want %+v", got, want)
		}
	})
}
