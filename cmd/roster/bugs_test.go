package main

// Regression tests of bugs the end-to-end tests found. While a bug is open
// its test starts with t.Skip("BUG: ...") so that the suite stays green.

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// An upload is validated first and "an invalid upload is answered with
// every error" (SPEC §3.1). `roster sync staff --file bad.csv` used to
// print only the first error and "(and 7 more errors)".
func TestUploadListsEveryError(t *testing.T) {
	w := newWorkdir(t, store.SQLite)
	w.writeConfig(t, settings{})
	w.write(t, "staff.csv", csvOf(basePeople()))
	w.task(t, 0, "sync", "staff", "--json")
	bad, err := os.ReadFile("../../sources/csv/testdata/bad/several.csv")
	if err != nil {
		t.Fatal(err)
	}
	w.write(t, "bad.csv", string(bad))
	r := w.want(t, 1, "sync", "staff", "--file", "bad.csv")
	for _, line := range goldenLines(t, "../../sources/csv/testdata/bad/several.golden") {
		if !strings.Contains(r.stdout+r.stderr, line) {
			t.Errorf("the answer to an invalid upload lacks %q:\n%s", line, r)
		}
	}
}

// A config file named with --config (or $ROSTER_CONFIG) that does not
// exist is a configuration error: exit code 2 (SPEC §8.1), not 1, which
// says that a task failed (as it used to).
func TestMissingConfigIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	if r := runRoster(t, dir, "", nil, "sync", "staff", "--config", "missing.yaml"); r.code != 2 {
		t.Errorf("want exit 2:\n%s", r)
	}
	if r := runRoster(t, dir, "", []string{"ROSTER_CONFIG=missing.yaml"}, "tasks"); r.code != 2 {
		t.Errorf("want exit 2:\n%s", r)
	}
}

// Approving a held task must apply the plan the operator read, or refuse.
// When the source's settings changed after the hold (orphans: deactivate
// → delete), approve used to recompute the plan with the new settings and
// delete the users the held plan only deactivated.
func TestApproveAppliesTheHeldPlan(t *testing.T) {
	w := newWorkdir(t, store.SQLite)
	w.writeConfig(t, settings{})
	people := basePeople()
	w.write(t, "staff.csv", csvOf(people))
	w.task(t, 0, "sync", "staff", "--json")
	w.write(t, "staff.csv", csvOf(without(people, exts(14, 20)...)))
	held := w.task(t, 3, "sync", "staff", "--json")
	if held.Counts.Deactivated != 7 || held.Counts.Deleted != 0 {
		t.Fatalf("held plan %+v", held.Counts)
	}
	before := w.state(t, "staff")

	w.writeConfig(t, settings{Orphans: "delete"})
	r := w.run(t, "approve", fmt.Sprint(held.ID), "--json")
	st := w.state(t, "staff")
	switch r.code {
	case 0: // applied: it must be the plan that was held
		tk := decodeTask(t, r.stdout)
		if tk.Counts != held.Counts {
			t.Errorf("approve applied counts %+v, the held plan was %+v", tk.Counts, held.Counts)
		}
		for _, e := range exts(14, 20) {
			if u := st.Users[e]; u.State != reconcile.StateInactive {
				t.Errorf("user %s is %s after approving a plan that deactivates it", e, u.State)
			}
		}
	default: // refused: nothing may change
		sameState(t, "refused approval", before, st)
	}
}

// Every task's input is kept at <log.dir>/user-data-sync/<source>/<task
// id>.csv (SPEC §5). A retry task used to point at the raw record of the
// task it retried instead, so when that older task expired (tasks.keep)
// its file was removed while the retry task still named it, and the retry
// could no longer be retried.
func TestRetryKeepsItsOwnRawRecord(t *testing.T) {
	w := newWorkdir(t, store.SQLite)
	w.env = []string{"TZ=UTC"} // see TestExpiryComparesTimesInUTC
	w.writeConfig(t, settings{TasksKeep: "5s"})
	w.write(t, "hr.csv", "h1,Hans,Hr,hrlogin,,,\n")
	w.task(t, 0, "sync", "hr", "--json")
	w.write(t, "staff.csv", "01001,Holger,Rose,HRLOGIN,,,\n")
	first := w.task(t, 1, "sync", "staff", "--json")
	time.Sleep(6 * time.Second)
	second := w.task(t, 1, "retry", fmt.Sprint(first.ID), "--json") // the conflict is still there
	if want := fmt.Sprintf("log/user-data-sync/staff/%d.csv", second.ID); second.RawRecord == nil || *second.RawRecord != want {
		t.Errorf("retry task %d: raw_record %s, want %s", second.ID, deref(second.RawRecord), want)
	}
	// A successful task expires the first one (finished more than 5s ago).
	w.write(t, "hr.csv", "h1,Hans,Hr,hrlogin2,,,\n")
	w.task(t, 0, "sync", "hr", "--json")
	shown := w.task(t, 0, "task", fmt.Sprint(second.ID), "--json")
	if shown.RawRecord == nil {
		t.Fatal("no raw record")
	}
	if _, err := os.Stat(w.path(*shown.RawRecord)); err != nil {
		t.Errorf("task %d names a raw record that is gone: %v", second.ID, err)
	}
	third := w.task(t, 0, "retry", fmt.Sprint(second.ID), "--json")
	if third.Status != "succeeded" {
		t.Errorf("retry of task %d: %+v", second.ID, third)
	}
}

// Old tasks, their raw records and tombstones expire after tasks.keep and
// store.purge_deleted_after. On SQLite the cut-off used to be compared
// with the stored UTC times in the process's local time zone: east of UTC
// everything younger than the offset was removed at once (here, with
// TZ=Pacific/Chatham, UTC+12:45 or +13:45, and one hour to keep: the task
// that just finished, its raw record, and the tombstone of a user deleted
// seconds ago, who then came back with a new id instead of being
// restored); west of UTC things were kept too long.
func TestExpiryComparesTimesInUTC(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			if driver == store.SQLite {
			}
			t.Parallel()
			w := newWorkdir(t, driver)
			w.env = []string{"TZ=Pacific/Chatham"}
			w.writeConfig(t, settings{Orphans: "delete", TasksKeep: "1h", PurgeDeletedAfter: "1h"})
			people := basePeople()[:3]
			w.write(t, "staff.csv", csvOf(people))
			first := w.task(t, 0, "sync", "staff", "--json")
			id := w.state(t, "staff").Users[people[2].ID].ID
			w.write(t, "staff.csv", csvOf(people[:2]))
			second := w.task(t, 0, "sync", "staff", "--json")
			if second.Counts.Deleted != 1 {
				t.Fatalf("second sync: %+v", second)
			}
			list := w.tasks(t)
			if len(list) != 2 {
				t.Errorf("tasks finished seconds ago were removed (tasks.keep: 1h): %d of 2 left", len(list))
			}
			for _, tk := range []taskJSON{first, second} {
				if _, err := os.Stat(w.path(*tk.RawRecord)); err != nil {
					t.Errorf("the raw record of task %d is gone: %v", tk.ID, err)
				}
			}
			w.write(t, "staff.csv", csvOf(people))
			third := w.task(t, 0, "sync", "staff", "--json")
			if third.Counts != (countsJSON{Unchanged: 2, Restored: 1}) {
				t.Errorf("a user deleted seconds ago (purge_deleted_after: 1h) is not restored: %+v", third.Counts)
			}
			if got := w.state(t, "staff").Users[people[2].ID].ID; got != id {
				t.Errorf("the returning user has id %s, want %s", got, id)
			}
		})
	}
}
