package tasks_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestScheduledTickRunsOnceAcrossReplicas: two processes (two stores on
// one database) firing the same tick record exactly one task between them.
func TestScheduledTickRunsOnceAcrossReplicas(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			dsn := storetest.DSN(t, driver)
			dir := t.TempDir()
			file := filepath.Join(dir, "staff.csv")
			writeFile(t, file, staffCSV(50))
			var runners []*tasks.Runner
			for range 2 {
				s, err := store.Open(ctx, driver, dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				if _, err := s.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				runners = append(runners, runner(t, s, dir, file))
			}
			for tick := range 3 {
				var wg sync.WaitGroup
				errs := make([]error, len(runners))
				for i, r := range runners {
					wg.Go(func() {
						_, errs[i] = r.Sync(ctx, "staff", tasks.Options{Trigger: tasks.TriggerSchedule, OncePer: time.Minute})
					})
				}
				wg.Wait()
				ran := 0
				for _, err := range errs {
					switch {
					case err == nil:
						ran++
					case !errors.Is(err, tasks.ErrAlreadyRan):
						t.Fatalf("tick %d: %v", tick, err)
					}
				}
				if want := map[bool]int{true: 1, false: 0}[tick == 0]; ran != want {
					t.Fatalf("tick %d ran %d times; want %d (the window is a minute)", tick, ran, want)
				}
			}
			list, total, err := runners[0].Store.ListTasks(ctx, store.TaskFilter{Source: "staff"})
			if err != nil || total != 1 || list[0].Status != store.StatusSucceeded {
				t.Fatalf("tasks = %d %+v, %v; want one succeeded", total, list, err)
			}
			// A manual sync is never held back by the window.
			if res, err := runners[1].Sync(ctx, "staff", tasks.Options{Trigger: tasks.TriggerManual}); err != nil || res.Task.Status != store.StatusSkipped {
				t.Fatalf("manual sync = %+v, %v", res, err)
			}
		})
	}
}
