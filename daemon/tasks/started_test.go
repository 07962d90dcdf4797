package tasks_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestStartedHearsEveryRecordedTask: Options.Started is called once, with
// the task as it is first recorded, for tasks that run, that are skipped
// and that fail before they could read their input; never for a dry run.
func TestStartedHearsEveryRecordedTask(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		file := filepath.Join(dir, "staff.csv")
		writeFile(t, file, staffCSV(3))
		r := runner(t, s, dir, file)
		sync := func(opt tasks.Options) (*tasks.Result, []store.Task) {
			t.Helper()
			var heard []store.Task
			opt.Started = func(tk store.Task) { heard = append(heard, tk) }
			res, err := r.Sync(ctx, "staff", opt)
			if err != nil {
				t.Fatal(err)
			}
			return res, heard
		}

		res, heard := sync(tasks.Options{})
		if len(heard) != 1 || heard[0].ID != res.Task.ID || heard[0].Status != store.StatusRunning || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("a task that ran: heard %+v, ended %+v", heard, res.Task)
		}
		res, heard = sync(tasks.Options{})
		if len(heard) != 1 || heard[0].ID != res.Task.ID || heard[0].Status != store.StatusSkipped {
			t.Fatalf("a skipped task: heard %+v", heard)
		}
		if _, heard = sync(tasks.Options{DryRun: true}); len(heard) != 0 {
			t.Fatalf("a dry run: heard %+v", heard)
		}
		if err := os.Remove(file); err != nil {
			t.Fatal(err)
		}
		res, heard = sync(tasks.Options{Force: true})
		if len(heard) != 1 || heard[0].ID != res.Task.ID || res.Task.Status != store.StatusFailed {
			t.Fatalf("a task whose file is missing: heard %+v, ended %+v", heard, res.Task)
		}
	})
}
