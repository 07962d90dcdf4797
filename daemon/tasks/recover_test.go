package tasks_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestSyncEndsTasksLeftRunning: a task of the source left running by a
// process that lost the database (or died) is failed as interrupted by the
// next sync of the source, which holds the source's lock and so knows that
// nobody runs it; a running task of another source is left alone.
func TestSyncEndsTasksLeftRunning(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		file := filepath.Join(dir, "staff.csv")
		writeFile(t, file, staffCSV(3))
		r := runner(t, s, dir, file)
		if err := s.SyncSources(ctx, []string{"staff", "other"}, []string{"csv", "csv"}); err != nil {
			t.Fatal(err)
		}
		stuck := &store.Task{Source: "staff", Trigger: tasks.TriggerManual, Status: store.StatusRunning}
		other := &store.Task{Source: "other", Trigger: tasks.TriggerManual, Status: store.StatusRunning}
		for _, tk := range []*store.Task{stuck, other} {
			if err := s.CreateTask(ctx, tk); err != nil {
				t.Fatal(err)
			}
		}
		res, err := r.Sync(ctx, "staff", tasks.Options{})
		if err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("sync: %+v, %v", res, err)
		}
		got, err := s.GetTask(ctx, stuck.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.StatusFailed || !strings.Contains(got.Errors, "interrupted") || got.FinishedAt == nil {
			t.Errorf("the task left running is %s (errors %s, finished %v); want failed as interrupted", got.Status, got.Errors, got.FinishedAt)
		}
		if got, _ := s.GetTask(ctx, other.ID); got.Status != store.StatusRunning {
			t.Errorf("another source's running task is %s; the sync of staff must leave it alone", got.Status)
		}
	})
}
