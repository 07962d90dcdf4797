package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// staffCSV makes n people 1..n.
func staffCSV(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		id := string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		b.WriteString("id" + id + ",Given,Family,login" + id + ",,Team,\n")
	}
	return b.String()
}

func TestRecoverFailsOnlyOrphanedRunningTasks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		file := filepath.Join(dir, "staff.csv")
		writeFile(t, file, staffCSV(3))
		r := runner(t, s, dir, file)

		dead := &store.Task{Source: "staff", Trigger: tasks.TriggerManual, Status: store.StatusRunning}
		if err := s.CreateTask(ctx, dead); err != nil {
			t.Fatal(err)
		}
		// While a live process holds the source, its running task is left alone.
		unlock, err := s.TryLockSource(ctx, "staff")
		if err != nil {
			t.Fatal(err)
		}
		if failed, err := r.Recover(ctx); err != nil || len(failed) != 0 {
			t.Fatalf("Recover with the lock held = %v, %v; want nothing", failed, err)
		}
		unlock()
		failed, err := r.Recover(ctx)
		if err != nil || len(failed) != 1 || failed[0] != dead.ID {
			t.Fatalf("Recover = %v, %v; want [%d]", failed, err, dead.ID)
		}
		got, _ := s.GetTask(ctx, dead.ID)
		v := tasks.ViewOf(got, nil)
		if got.Status != store.StatusFailed || len(v.Errors) != 1 || !strings.Contains(v.Errors[0].Message, "interrupted") || !got.Transient {
			t.Fatalf("recovered task = %+v", v)
		}
	})
}

func TestApproveRefusesAChangedDirectory(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		file := filepath.Join(dir, "staff.csv")
		writeFile(t, file, staffCSV(20))
		r := runner(t, s, dir, file)
		if res, err := r.Sync(ctx, "staff", tasks.Options{}); err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("first sync: %v %+v", err, res)
		}
		writeFile(t, file, staffCSV(10)) // 10 of 20 would be deactivated: held
		held, err := r.Sync(ctx, "staff", tasks.Options{})
		if err != nil || held.Task.Status != store.StatusHeld {
			t.Fatalf("second sync = %v %+v; want held", err, held)
		}
		hp, err := s.GetHeldPlan(ctx, held.Task.ID)
		if err != nil {
			t.Fatal(err)
		}
		var plan struct {
			Removals []json.RawMessage `json:"removals"`
		}
		if err := json.Unmarshal([]byte(hp.Plan), &plan); err != nil || len(plan.Removals) != 10 {
			t.Fatalf("held plan has %d removals (%v), want 10", len(plan.Removals), err)
		}
		// The directory changes before the approval, by no task: an
		// operator deactivates one user.
		before, err := s.Snapshot(ctx, "staff")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetActiveByAdmin(ctx, before.Users[0].ID, false); err != nil {
			t.Fatal(err)
		}
		res, err := r.Approve(ctx, held.Task.ID)
		if err != nil {
			t.Fatal(err)
		}
		v := tasks.ViewOf(res.Task, nil)
		if v.Status != store.StatusFailed || !strings.Contains(v.Errors[0].Message, "changed after task") {
			t.Fatalf("approve of a stale plan = %+v", v)
		}
		snap, _ := s.Snapshot(ctx, "staff")
		active := 0
		for _, u := range snap.Users {
			if u.Active {
				active++
			}
		}
		if active != 19 {
			t.Fatalf("%d active users after the refused approval, want 19", active)
		}
		if _, err := r.Approve(ctx, held.Task.ID); err == nil {
			t.Fatal("a failed task was approved again")
		}
	})
}

// A held task that a newer task of its source superseded is refused, by
// approve and reject alike, naming the newer task; nothing is written.
func TestApproveRefusesASupersededTask(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		file := filepath.Join(dir, "staff.csv")
		writeFile(t, file, staffCSV(20))
		r := runner(t, s, dir, file)
		if res, err := r.Sync(ctx, "staff", tasks.Options{}); err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("first sync: %v %+v", err, res)
		}
		writeFile(t, file, staffCSV(10))
		held, err := r.Sync(ctx, "staff", tasks.Options{})
		if err != nil || held.Task.Status != store.StatusHeld {
			t.Fatalf("second sync = %v %+v; want held", err, held)
		}
		writeFile(t, file, staffCSV(19)) // the file is fixed: a sync applies it
		newer, err := r.Sync(ctx, "staff", tasks.Options{})
		if err != nil || newer.Task.Status != store.StatusSucceeded {
			t.Fatalf("sync of the fixed file: %v %+v", err, newer)
		}
		if cur, err := s.GetTask(ctx, held.Task.ID); err != nil || cur.Status != store.StatusSuperseded {
			t.Fatalf("the held task after a newer sync: %+v %v; want superseded", cur, err)
		}
		want := fmt.Sprintf("task %d is superseded by task %d (succeeded)", held.Task.ID, newer.Task.ID)
		if _, err := r.Approve(ctx, held.Task.ID); !errors.Is(err, tasks.ErrUsage) || !strings.Contains(err.Error(), want) {
			t.Fatalf("approve of a superseded task: %v; want a usage error saying %q", err, want)
		}
		if _, err := r.Reject(ctx, held.Task.ID); !errors.Is(err, tasks.ErrUsage) || !strings.Contains(err.Error(), want) {
			t.Fatalf("reject of a superseded task: %v; want a usage error saying %q", err, want)
		}
		if cur, err := s.GetTask(ctx, held.Task.ID); err != nil || cur.Status != store.StatusSuperseded {
			t.Fatalf("the superseded task after the refusals: %+v %v", cur, err)
		}
		snap, err := s.Snapshot(ctx, "staff")
		if err != nil {
			t.Fatal(err)
		}
		active := 0
		for _, u := range snap.Users {
			if u.Active {
				active++
			}
		}
		if active != 19 {
			t.Fatalf("%d active users after the refused approval, want 19", active)
		}
	})
}
