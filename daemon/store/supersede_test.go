package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// A held task is superseded by a newer task of its source that succeeded,
// was skipped or was held itself; not by a failed or rejected one, a dry
// run or a task of another source. A superseded task no longer counts as
// waiting and expires after tasks.keep like any ended task.
func TestHeldTasksAreSuperseded(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		create := func(source, status string, dryRun bool) *store.Task {
			t.Helper()
			tk := &store.Task{Source: source, Trigger: "manual", Status: status, DryRun: dryRun}
			if err := s.CreateTask(ctx, tk); err != nil {
				t.Fatal(err)
			}
			return tk
		}
		status := func(tk *store.Task) string {
			t.Helper()
			cur, err := s.GetTask(ctx, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			return cur.Status
		}
		waitingHeld := func(source string) int64 {
			t.Helper()
			c, err := s.DirectoryCounts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return c.Waiting[source][store.StatusHeld]
		}

		held := create("staff", store.StatusHeld, false)
		other := create("hr", store.StatusHeld, false)
		create("staff", store.StatusFailed, false)
		create("staff", store.StatusSucceeded, true) // a dry run
		rejected := create("staff", store.StatusHeld, false)
		if got := status(held); got != store.StatusSuperseded {
			t.Fatalf("a held task followed by a newer held one is %s, want superseded", got)
		}
		if n := waitingHeld("staff"); n != 1 {
			t.Fatalf("held tasks of staff counted as waiting: %d, want 1 (the newest)", n)
		}
		// Rejecting is no new input: nothing before it is touched.
		rejected.Status, rejected.FinishedAt = store.StatusRejected, nil
		if err := s.SaveTask(ctx, rejected); err != nil {
			t.Fatal(err)
		}

		// A running task saved as succeeded supersedes what is held.
		held2 := create("staff", store.StatusHeld, false)
		run := create("staff", store.StatusRunning, false)
		if got := status(held2); got != store.StatusHeld {
			t.Fatalf("a held task followed by a running one is %s, want held", got)
		}
		run.Status = store.StatusSucceeded
		if err := s.SaveTask(ctx, run); err != nil {
			t.Fatal(err)
		}
		if got := status(held2); got != store.StatusSuperseded {
			t.Fatalf("a held task followed by a succeeded one is %s, want superseded", got)
		}
		by, err := s.SupersededBy(ctx, held2)
		if err != nil || by == nil || by.ID != run.ID {
			t.Fatalf("SupersededBy(%d) = %+v, %v; want task %d", held2.ID, by, err, run.ID)
		}
		held3 := create("staff", store.StatusHeld, false)
		create("staff", store.StatusSkipped, false)
		if got := status(held3); got != store.StatusSuperseded {
			t.Fatalf("a held task followed by a skipped one is %s, want superseded", got)
		}
		if got := status(other); got != store.StatusHeld {
			t.Fatalf("the held task of another source is %s, want held", got)
		}
		if got := status(rejected); got != store.StatusRejected {
			t.Fatalf("the rejected task is %s", got)
		}
		if n := waitingHeld("staff"); n != 0 {
			t.Fatalf("held tasks of staff counted as waiting: %d, want 0", n)
		}

		// tasks.keep: ended tasks older than the cut are removed, the
		// superseded ones with them; a task still held stays.
		if _, err := s.Expire(ctx, time.Now(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		left, _, err := s.ListTasks(ctx, store.TaskFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, tk := range left {
			ids = append(ids, tk.ID)
		}
		if !slices.Equal(ids, []int64{other.ID}) {
			t.Fatalf("tasks left after expiry: %v, want only the held task %d", ids, other.ID)
		}
	})
}

// Migration 9 marks the held tasks that newer tasks superseded before
// roster marked them.
func TestMigrationMarksSupersededHeldTasks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		db := s.DB().WithContext(ctx)
		// Written as an older roster did: no hook marks anything.
		rows := []struct {
			id             int64
			source, status string
			dryRun         bool
		}{
			{1, "staff", store.StatusHeld, false},      // superseded by 3
			{2, "staff", store.StatusFailed, false},    // supersedes nothing
			{3, "staff", store.StatusSucceeded, false}, //
			{4, "staff", store.StatusHeld, false},      // superseded by 5
			{5, "staff", store.StatusHeld, false},      // the newest: held
			{6, "hr", store.StatusHeld, false},         // followed by a dry run only
			{7, "hr", store.StatusSucceeded, true},     //
			{8, "ops", store.StatusHeld, false},        // followed by a failure only
			{9, "ops", store.StatusFailed, false},      //
		}
		for _, r := range rows {
			if err := db.Exec(`INSERT INTO tasks (id, source, trigger, status, dry_run, created_at) VALUES (?, ?, 'manual', ?, ?, ?)`,
				r.id, r.source, r.status, r.dryRun, time.Now().UTC()).Error; err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Rerun(ctx, 9); err != nil {
			t.Fatal(err)
		}
		want := map[int64]string{1: store.StatusSuperseded, 4: store.StatusSuperseded, 5: store.StatusHeld, 6: store.StatusHeld, 8: store.StatusHeld}
		for id, w := range want {
			tk, err := s.GetTask(ctx, id)
			if err != nil || tk.Status != w {
				t.Errorf("task %d after migration 9: %+v, %v; want %s", id, tk, err, w)
			}
		}
	})
}
