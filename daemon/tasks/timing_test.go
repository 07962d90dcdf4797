package tasks_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestFinishedAtCoversTheApply: a task's finished_at is stamped once its
// plan is written, so finished_at − started_at (what roster sync prints
// and roster_sync_task_duration_seconds observes) covers the apply, on the
// whole and the streamed path. The apply is made measurably long by a
// transaction that holds the source's row (PostgreSQL) or the write lock
// (SQLite) from the moment the apply begins until released. A skipped
// task is created no later than it started.
func TestFinishedAtCoversTheApply(t *testing.T) {
	const hold = 600 * time.Millisecond
	for _, driver := range storetest.Drivers {
		for _, mode := range []string{"whole", "streamed"} {
			t.Run(driver+"/"+mode, func(t *testing.T) {
				s := storetest.Open(t, driver)
				ctx := context.Background()
				dir := t.TempDir()
				file := filepath.Join(dir, "staff.csv")
				writeFile(t, file, staffCSV(50))
				r := runner(t, s, dir, file)
				r.Config.Limits.StreamFrom = 1 << 30
				if mode == "streamed" {
					r.Config.Limits.StreamFrom = 0
				}
				var released time.Time
				done := make(chan struct{})
				r.Progress = func(_, phase string, _ int) {
					if phase != "apply" || !released.IsZero() {
						return
					}
					released = time.Now() // set for real below; marks the blocker taken
					tx := s.DB().Begin()
					if err := tx.Exec(`UPDATE sources SET revision = revision WHERE name = ?`, "staff").Error; err != nil {
						t.Errorf("take the source's row: %v", err)
					}
					go func() {
						defer close(done)
						time.Sleep(hold)
						released = time.Now()
						tx.Commit()
					}()
				}
				res, err := r.Sync(ctx, "staff", tasks.Options{})
				if err != nil {
					t.Fatal(err)
				}
				tk := res.Task
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatalf("the apply never began: task %s %s", tk.Status, tk.Errors)
				}
				if tk.Status != store.StatusSucceeded {
					t.Fatalf("task %s: %s", tk.Status, tk.Errors)
				}
				stored, err := s.GetTask(ctx, tk.ID)
				if err != nil {
					t.Fatal(err)
				}
				for name, got := range map[string]*store.Task{"returned": tk, "stored": stored} {
					if got.StartedAt == nil || got.FinishedAt == nil {
						t.Fatalf("%s task: started_at %v, finished_at %v", name, got.StartedAt, got.FinishedAt)
					}
					if took := got.FinishedAt.Sub(*got.StartedAt); took < hold {
						t.Errorf("%s task took %v from started_at to finished_at; its apply alone waited %v", name, took, hold)
					}
					// Stored times may be rounded to the microsecond.
					if got.FinishedAt.Before(released.Add(-time.Millisecond)) {
						t.Errorf("%s task finished at %v, before its apply could write (%v)", name, got.FinishedAt.UTC(), released.UTC())
					}
				}

				res, err = r.Sync(ctx, "staff", tasks.Options{})
				if err != nil {
					t.Fatal(err)
				}
				skipped, err := s.GetTask(ctx, res.Task.ID)
				if err != nil {
					t.Fatal(err)
				}
				for name, got := range map[string]*store.Task{"returned": res.Task, "stored": skipped} {
					if got.Status != store.StatusSkipped || got.StartedAt == nil || got.FinishedAt == nil {
						t.Fatalf("%s second sync: %+v; want a skipped task with both times", name, got)
					}
					if got.CreatedAt.After(*got.StartedAt) || got.StartedAt.After(*got.FinishedAt) {
						t.Errorf("%s skipped task: created %v, started %v, finished %v; want them in that order",
							name, got.CreatedAt, *got.StartedAt, *got.FinishedAt)
					}
				}
			})
		}
	}
}
