package main

// End-to-end tests: they build the real roster binary once and run it as
// an operator would, in a work folder with its own roster.yaml, on SQLite
// and on PostgreSQL, checking exit codes (SPEC §8.1), the --json task
// output and the directory itself.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/password"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// rosterBin is the roster binary that TestMain builds once for every
// end-to-end test.
var rosterBin string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "roster-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	rosterBin = filepath.Join(dir, "roster")
	// go test puts its own GOROOT/bin first on PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the go tool is needed to build roster:", err)
		return 1
	}
	start := time.Now()
	cmd := exec.Command(goTool, "build", "-o", rosterBin, ".")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/roster: %v\n", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", rosterBin, time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

// ext is the id of the i-th person of the scenario: text with a leading
// zero, which must be kept.
func ext(i int) string { return fmt.Sprintf("%05d", 1000+i) }

func exts(from, to int) []string {
	var ids []string
	for i := from; i <= to; i++ {
		ids = append(ids, ext(i))
	}
	return ids
}

// basePeople are the 20 people of the first import.
func basePeople() []person {
	var ps []person
	for i := 1; i <= 20; i++ {
		p := person{ID: ext(i), First: fmt.Sprintf("Given%02d", i), Last: fmt.Sprintf("Family%02d", i),
			Login: fmt.Sprintf("user%02d", i), Email: fmt.Sprintf("user%02d@example.com", i), Groups: "Sales"}
		if i%2 == 0 {
			p.Groups = "Eng|Berlin"
		}
		ps = append(ps, p)
	}
	ps[0].Password = "Initial-Pass-01"
	return ps
}

// TestScenario walks one directory through the life of a CSV source, on
// every store: import, skip, update, the three orphan policies, restore on
// and off, the safety valve (approve, reject, --force, empty file),
// invalid input, dry runs, retry after a login conflict, uploads with
// --file, and the informational commands.
func TestScenario(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			scenario(t, newWorkdir(t, driver))
		})
	}
}

func scenario(t *testing.T, w *workdir) {
	step := func(name string, fn func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, fn) {
			t.FailNow() // later steps build on this one
		}
	}
	all := map[int64]string{} // every task id the scenario made → its source
	record := func(tk taskJSON) taskJSON {
		all[tk.ID] = tk.Source
		return tk
	}
	sync := func(t *testing.T, code int, args ...string) taskJSON {
		t.Helper()
		return record(w.task(t, code, append([]string{"sync", "staff", "--json"}, args...)...))
	}
	cur := basePeople()
	ids := map[string]string{} // externalId → directory id, which must never change
	var failedIDs []int64
	checkIDs := func(t *testing.T, st dirState) {
		t.Helper()
		for e, id := range ids {
			if u, ok := st.Users[e]; !ok || u.ID != id {
				t.Errorf("user %s: id %q, want %q (ids are stable)", e, u.ID, id)
			}
		}
	}
	checkState := func(t *testing.T, st dirState, e, state string) {
		t.Helper()
		u, ok := st.Users[e]
		if !ok {
			t.Fatalf("user %s is not in the directory", e)
		}
		if u.State != state || u.Active != (state == reconcile.StateActive) {
			t.Errorf("user %s: state %s, active %t; want %s", e, u.State, u.Active, state)
		}
	}

	w.writeConfig(t, settings{})
	w.write(t, "staff.csv", csvOf(cur))

	step("first import", func(t *testing.T) {
		tk := sync(t, 0)
		wantTask(t, tk, "staff", "succeeded", countsJSON{Created: 20})
		if tk.Trigger != "manual" || tk.RetryOf != nil || len(tk.Errors) != 0 || len(tk.Warnings) != 0 {
			t.Errorf("task: %+v", tk)
		}
		wantRaw := fmt.Sprintf("log/user-data-sync/staff/%d.csv", tk.ID)
		if tk.RawRecord == nil || *tk.RawRecord != wantRaw {
			t.Errorf("raw_record %s, want %s", deref(tk.RawRecord), wantRaw)
		} else if fi, err := os.Stat(w.path(wantRaw)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("raw record %s: %v, mode %v; want mode 0600", wantRaw, err, fi.Mode())
		}
		st := w.state(t, "staff")
		if len(st.Users) != 20 {
			t.Fatalf("%d users, want 20", len(st.Users))
		}
		seen := map[string]bool{}
		for _, p := range cur {
			u := st.Users[p.ID]
			checkState(t, st, p.ID, reconcile.StateActive)
			wantGroups := []string{"sales"}
			if p.Groups != "Sales" {
				wantGroups = []string{"berlin", "eng"}
			}
			if u.UserName != p.Login || u.GivenName != p.First || u.FamilyName != p.Last || u.DisplayName != p.First+" "+p.Last ||
				u.Email != p.Email || u.EmployeeNumber != p.ID || !slices.Equal(u.Groups, wantGroups) || u.HasPassword != (p.Password != "") {
				t.Errorf("user %s: %+v, want the record %+v", p.ID, u, p)
			}
			if len(u.ID) != 36 || seen[u.ID] {
				t.Errorf("user %s: id %q is not a fresh UUID", p.ID, u.ID)
			}
			seen[u.ID] = true
			ids[p.ID] = u.ID
		}
		if !slices.Equal(st.Groups, []string{"Berlin", "Eng", "Sales"}) {
			t.Errorf("groups %v", st.Groups)
		}
		if ok, err := password.Verify(st.Hashes[ext(1)], "Initial-Pass-01"); !ok || err != nil {
			t.Errorf("the initial password of %s does not verify against its hash %q: %v", ext(1), st.Hashes[ext(1)], err)
		}
	})

	step("unchanged file is skipped", func(t *testing.T) {
		before := w.state(t, "staff")
		tk := sync(t, 0)
		wantTask(t, tk, "staff", "skipped", countsJSON{})
		if tk.RawRecord != nil {
			t.Errorf("a skipped task has raw record %s", *tk.RawRecord)
		}
		sameState(t, "skipped sync", before, w.state(t, "staff"))
	})

	step("update e-mail, groups and passwords", func(t *testing.T) {
		before := w.state(t, "staff")
		cur[1].Email = "new02@example.com"
		cur[2].Groups = "Eng|Support"
		cur[3].Password = "Second-Pass-04"  // has none yet: set
		cur[0].Password = "Changed-Pass-01" // has one: never overwritten
		w.write(t, "staff.csv", csvOf(cur))
		tk := sync(t, 0)
		wantTask(t, tk, "staff", "succeeded", countsJSON{Updated: 3, Unchanged: 17})
		st := w.state(t, "staff")
		checkIDs(t, st)
		if u := st.Users[ext(2)]; u.Email != "new02@example.com" {
			t.Errorf("e-mail of %s: %q", ext(2), u.Email)
		}
		if u := st.Users[ext(3)]; !slices.Equal(u.Groups, []string{"eng", "support"}) {
			t.Errorf("groups of %s: %v", ext(3), u.Groups)
		}
		if !slices.Equal(st.Groups, []string{"Berlin", "Eng", "Sales", "Support"}) {
			t.Errorf("groups %v", st.Groups)
		}
		if st.Hashes[ext(1)] != before.Hashes[ext(1)] {
			t.Errorf("the password of %s was overwritten by a later import", ext(1))
		}
		if ok, _ := password.Verify(st.Hashes[ext(4)], "Second-Pass-04"); !ok {
			t.Errorf("%s got no initial password though it had none", ext(4))
		}
	})

	step("orphans ignore", func(t *testing.T) {
		w.writeConfig(t, settings{Orphans: "ignore"})
		w.write(t, "staff.csv", csvOf(without(cur, ext(20))))
		tk := sync(t, 0)
		wantTask(t, tk, "staff", "succeeded", countsJSON{Unchanged: 19})
		checkState(t, w.state(t, "staff"), ext(20), reconcile.StateActive)
	})

	step("orphans deactivate", func(t *testing.T) {
		w.writeConfig(t, settings{Orphans: "deactivate"})
		tk := sync(t, 0) // same file, other settings: not skipped
		wantTask(t, tk, "staff", "succeeded", countsJSON{Unchanged: 19, Deactivated: 1})
		st := w.state(t, "staff")
		checkIDs(t, st)
		checkState(t, st, ext(20), reconcile.StateInactive)
		if r := st.Users[ext(20)].StateReason; r != reconcile.ReasonOrphan {
			t.Errorf("state reason %q", r)
		}
	})

	step("orphans delete", func(t *testing.T) {
		w.writeConfig(t, settings{Orphans: "delete"})
		w.write(t, "staff.csv", csvOf(without(cur, ext(19), ext(20))))
		tk := sync(t, 0)
		wantTask(t, tk, "staff", "succeeded", countsJSON{Unchanged: 18, Deleted: 2})
		st := w.state(t, "staff")
		checkIDs(t, st) // tombstones keep their id
		checkState(t, st, ext(19), reconcile.StateDeleted)
		checkState(t, st, ext(20), reconcile.StateDeleted)
		if g := st.Users[ext(20)].Groups; len(g) != 0 {
			t.Errorf("a deleted user keeps the groups %v", g)
		}
	})

	step("restore on", func(t *testing.T) {
		w.write(t, "staff.csv", csvOf(cur))
		tk := sync(t, 0)
		wantTask(t, tk, "staff", "succeeded", countsJSON{Unchanged: 18, Restored: 2})
		st := w.state(t, "staff")
		checkIDs(t, st)
		checkState(t, st, ext(19), reconcile.StateActive)
		checkState(t, st, ext(20), reconcile.StateActive)
		if g := st.Users[ext(20)].Groups; !slices.Equal(g, []string{"berlin", "eng"}) {
			t.Errorf("restored user's groups %v", g)
		}
	})

	step("restore off", func(t *testing.T) {
		w.writeConfig(t, settings{Orphans: "delete", Restore: ptr(false)})
		w.write(t, "staff.csv", csvOf(without(cur, ext(20))))
		wantTask(t, sync(t, 0), "staff", "succeeded", countsJSON{Unchanged: 19, Deleted: 1})
		w.write(t, "staff.csv", csvOf(cur))
		wantTask(t, sync(t, 0), "staff", "succeeded", countsJSON{Unchanged: 19, NotRestored: 1})
		st := w.state(t, "staff")
		checkIDs(t, st)
		checkState(t, st, ext(20), reconcile.StateDeleted)
		// Turning restore back on changes the settings: the same file runs again.
		w.writeConfig(t, settings{Orphans: "delete"})
		wantTask(t, sync(t, 0), "staff", "succeeded", countsJSON{Unchanged: 19, Restored: 1})
		st = w.state(t, "staff")
		checkIDs(t, st)
		checkState(t, st, ext(20), reconcile.StateActive)
	})

	step("held task approved", func(t *testing.T) {
		w.writeConfig(t, settings{})
		w.write(t, "staff.csv", csvOf(without(cur, exts(14, 20)...)))
		before := w.state(t, "staff")
		tk := sync(t, 3)
		wantTask(t, tk, "staff", "held", countsJSON{Unchanged: 13, Deactivated: 7})
		if !strings.Contains(tk.Hold, "max_removals") {
			t.Errorf("hold reason %q does not name max_removals", tk.Hold)
		}
		var removed []string
		for _, c := range tk.Removals {
			if c.Action != "deactivate" {
				t.Errorf("removal %+v", c)
			}
			removed = append(removed, c.After.ExternalID)
		}
		slices.Sort(removed)
		if !slices.Equal(removed, exts(14, 20)) {
			t.Errorf("held plan removes %v, want %v", removed, exts(14, 20))
		}
		sameState(t, "held task", before, w.state(t, "staff"))

		shown := w.task(t, 0, "task", "--json", fmt.Sprint(tk.ID)) // flags before the id
		if shown.Status != "held" || shown.Hold != tk.Hold || len(shown.Removals) != 7 {
			t.Errorf("roster task shows %+v", shown)
		}
		if text := w.want(t, 0, "task", fmt.Sprint(tk.ID)).stdout; !strings.Contains(text, fmt.Sprintf("roster approve %d", tk.ID)) ||
			!strings.Contains(text, "user14") {
			t.Errorf("roster task of a held task does not show its removals and how to approve:\n%s", text)
		}
		held := w.tasks(t, "--status", "held")
		if len(held) != 1 || held[0].ID != tk.ID {
			t.Errorf("tasks --status held: %+v", held)
		}

		ap := w.task(t, 0, "approve", fmt.Sprint(tk.ID), "--json")
		if ap.ID != tk.ID {
			t.Errorf("approve answered task %d, want %d", ap.ID, tk.ID)
		}
		wantTask(t, ap, "staff", "succeeded", countsJSON{Unchanged: 13, Deactivated: 7})
		st := w.state(t, "staff")
		checkIDs(t, st)
		for _, e := range exts(14, 20) {
			checkState(t, st, e, reconcile.StateInactive)
		}
		checkState(t, st, ext(13), reconcile.StateActive)
		wantTask(t, sync(t, 0), "staff", "skipped", countsJSON{})
		w.want(t, exitRefused, "approve", fmt.Sprint(tk.ID)) // not held any more
	})

	step("held task rejected", func(t *testing.T) {
		w.write(t, "staff.csv", csvOf(cur))
		wantTask(t, sync(t, 0), "staff", "succeeded", countsJSON{Unchanged: 13, Restored: 7})
		w.write(t, "staff.csv", csvOf(without(cur, exts(8, 13)...)))
		before := w.state(t, "staff")
		tk := sync(t, 3)
		wantTask(t, tk, "staff", "held", countsJSON{Unchanged: 14, Deactivated: 6})
		rj := w.task(t, 0, "reject", "--json", fmt.Sprint(tk.ID))
		if rj.ID != tk.ID || rj.Status != "rejected" {
			t.Errorf("reject: %+v", rj)
		}
		sameState(t, "rejected task", before, w.state(t, "staff"))
		if got := w.task(t, 0, "task", fmt.Sprint(tk.ID), "--json"); got.Status != "rejected" {
			t.Errorf("rejected task shows status %s", got.Status)
		}
		w.want(t, exitRefused, "approve", fmt.Sprint(tk.ID))
		r := w.want(t, exitRefused, "reject", fmt.Sprint(tk.ID))
		if !strings.Contains(r.stderr, "is rejected; only held tasks") || strings.Contains(r.stderr, "usage:") {
			t.Errorf("rejecting a rejected task:\n%s", r)
		}
		// The operator's thinking time is no duration of the task.
		if r := w.want(t, 0, "task", fmt.Sprint(tk.ID)); !strings.Contains(r.stdout, ": rejected at ") {
			t.Errorf("a rejected task does not say when it was rejected:\n%s", r)
		}
	})

	step("force skips the valve", func(t *testing.T) {
		before := w.state(t, "staff")
		// A rejected plan is not remembered: the same file is held again.
		stale := sync(t, 3)
		wantTask(t, stale, "staff", "held", countsJSON{Unchanged: 14, Deactivated: 6})
		sameState(t, "held again", before, w.state(t, "staff"))
		tk := sync(t, 0, "--force")
		wantTask(t, tk, "staff", "succeeded", countsJSON{Unchanged: 14, Deactivated: 6})
		st := w.state(t, "staff")
		for _, e := range exts(8, 13) {
			checkState(t, st, e, reconcile.StateInactive)
		}
		// The valve is skipped once: the next removals are judged again.
		w.write(t, "staff.csv", csvOf(without(cur, exts(1, 6)...)))
		w.want(t, 3, "sync", "staff", "--dry-run")
		// The forced sync superseded the held task: it waits for nobody
		// any more, and approving it is refused (exit 5: a wrong state),
		// naming the newer task, and changes nothing.
		if got := w.task(t, 0, "task", fmt.Sprint(stale.ID), "--json"); got.Status != "superseded" {
			t.Errorf("the held task after a newer sync succeeded: status %s, want superseded", got.Status)
		}
		if held := w.tasks(t, "--status", "held"); len(held) != 0 {
			t.Errorf("tasks --status held lists %+v after the forced sync", held)
		}
		r := w.want(t, 5, "approve", fmt.Sprint(stale.ID))
		if want := fmt.Sprintf("task %d is superseded by task %d", stale.ID, tk.ID); !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "sync again") {
			t.Errorf("approving a superseded task says:\n%s\nwant it to say %q and to sync again", r.stderr, want)
		}
		sameState(t, "stale approval", st, w.state(t, "staff"))
	})

	step("empty file is held", func(t *testing.T) {
		w.write(t, "staff.csv", "")
		before := w.state(t, "staff")
		tk := sync(t, 3)
		wantTask(t, tk, "staff", "held", countsJSON{Deactivated: 14})
		if !strings.Contains(tk.Hold, "no records") {
			t.Errorf("hold reason %q", tk.Hold)
		}
		sameState(t, "empty file", before, w.state(t, "staff"))
		w.task(t, 0, "reject", fmt.Sprint(tk.ID), "--json")
		sameState(t, "empty file rejected", before, w.state(t, "staff"))
	})

	step("invalid file fails with every error", func(t *testing.T) {
		bad, err := os.ReadFile("../../sources/csv/testdata/bad/several.csv")
		if err != nil {
			t.Fatal(err)
		}
		golden := goldenLines(t, "../../sources/csv/testdata/bad/several.golden")
		w.write(t, "staff.csv", string(bad))
		before := w.state(t, "staff")
		tk := sync(t, 1)
		wantTask(t, tk, "staff", "failed", countsJSON{})
		failedIDs = append(failedIDs, tk.ID)
		var msgs []string
		for _, e := range tk.Errors {
			msgs = append(msgs, e.Message)
			if e.Line == 0 {
				t.Errorf("error without a line: %+v", e)
			}
		}
		if !slices.Equal(msgs, golden) {
			t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(msgs, "\n  "), strings.Join(golden, "\n  "))
		}
		if len(tk.Errors) < 2 || tk.Errors[1] != (fieldErrorJSON{Line: 2, Column: 5, Field: "email", Message: golden[1]}) {
			t.Errorf("second error %+v", tk.Errors[1])
		}
		sameState(t, "invalid file", before, w.state(t, "staff"))
		text := w.want(t, 0, "task", fmt.Sprint(tk.ID)).stdout
		for _, g := range golden {
			if !strings.Contains(text, g) {
				t.Errorf("roster task does not list %q:\n%s", g, text)
			}
		}
	})

	step("dry run writes nothing and prints the plan", func(t *testing.T) {
		// All 20 back (six of them restored), one new, one changed e-mail.
		cur[4].Email = "new05@example.com"
		cur = append(cur, person{ID: ext(21), First: "Zoë", Last: "Weiß", Login: "zweiss", Email: "zoe@example.com", Groups: "Eng"})
		w.write(t, "staff.csv", csvOf(cur))
		before := w.state(t, "staff")
		nTasks := len(w.tasks(t))
		nRaw := len(w.rawFiles(t, "staff"))

		r := w.want(t, 0, "sync", "staff", "--dry-run")
		for _, want := range []string{
			"dry run of staff: nothing was written",
			"would have: created 1, updated 1, unchanged 13, deactivated 0, deleted 0, restored 6, not restored 0, skipped 0",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("dry run output lacks %q:\n%s", want, r)
			}
		}
		for _, re := range []string{`(?m)^\s*create\s+01021\s+zweiss\s+Zoë Weiß`, `(?m)^\s*update\s+01005\s+user05.*\(email\)`, `(?m)^\s*restore\s+01008\s+user08`} {
			if !regexp.MustCompile(re).MatchString(r.stdout) {
				t.Errorf("dry run output does not match %s:\n%s", re, r.stdout)
			}
		}

		r = w.want(t, 0, "sync", "--dry-run", "--json", "staff")
		var plan struct {
			DryRun  bool         `json:"dry_run"`
			Counts  countsJSON   `json:"counts"`
			Changes []changeJSON `json:"changes"`
			Hold    string       `json:"hold"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
			t.Fatalf("dry run --json: %v\n%s", err, r)
		}
		if !plan.DryRun || plan.Counts != (countsJSON{Created: 1, Updated: 1, Unchanged: 13, Restored: 6}) || len(plan.Changes) != 8 || plan.Hold != "" {
			t.Errorf("dry run plan: %+v", plan)
		}
		for _, c := range plan.Changes {
			if c.After.ExternalID == ext(5) && (c.Action != "update" || !slices.Equal(c.Fields, []string{"email"}) || c.After.Email != "new05@example.com") {
				t.Errorf("planned change of %s: %+v", ext(5), c)
			}
		}

		// A dry run that the valve would hold, and one of an invalid file.
		w.write(t, "staff.csv", csvOf(without(cur, exts(1, 7)...)))
		r = w.want(t, 3, "sync", "staff", "--dry-run")
		if !strings.Contains(r.stdout, "safety valve would hold") {
			t.Errorf("dry run of a plan the valve holds:\n%s", r)
		}
		w.write(t, "staff.csv", csvOf(cur)+"1099,,Nobody,nobody,,,\n")
		r = w.want(t, 1, "sync", "staff", "--dry-run")
		if !strings.Contains(r.stdout, "line 22, column 2 (first_name): a value is required") {
			t.Errorf("dry run of an invalid file:\n%s", r)
		}

		if n := len(w.tasks(t)); n != nTasks {
			t.Errorf("dry runs made %d tasks", n-nTasks)
		}
		if n := len(w.rawFiles(t, "staff")); n != nRaw {
			t.Errorf("dry runs wrote %d raw records", n-nRaw)
		}
		sameState(t, "dry runs", before, w.state(t, "staff"))

		// The real sync does what the dry run said.
		w.write(t, "staff.csv", csvOf(cur))
		wantTask(t, sync(t, 0), "staff", "succeeded", countsJSON{Created: 1, Updated: 1, Unchanged: 13, Restored: 6})
		st := w.state(t, "staff")
		checkIDs(t, st)
		ids[ext(21)] = st.Users[ext(21)].ID
	})

	step("retry after a login conflict", func(t *testing.T) {
		w.write(t, "hr.csv", "h1,Hans,Hr,hrlogin,hans@example.com,,\n")
		hr := record(w.task(t, 0, "sync", "hr", "--json"))
		wantTask(t, hr, "hr", "succeeded", countsJSON{Created: 1})

		cur = append(cur, person{ID: ext(22), First: "Holger", Last: "Rose", Login: "HRLOGIN", Groups: "Eng"})
		w.write(t, "staff.csv", csvOf(cur))
		before := w.state(t, "staff")
		tk := sync(t, 1)
		wantTask(t, tk, "staff", "failed", countsJSON{})
		failedIDs = append(failedIDs, tk.ID)
		if len(tk.Errors) != 1 {
			t.Fatalf("errors %+v", tk.Errors)
		}
		e := tk.Errors[0]
		if e.Line != 22 || e.Column != 4 || e.Field != "login" || !strings.Contains(e.Message, `"HRLOGIN"`) || !strings.Contains(e.Message, `source "hr"`) {
			t.Errorf("conflict error %+v", e)
		}
		if tk.RawRecord == nil {
			t.Errorf("a task that read its input has no raw record")
		}
		sameState(t, "login conflict", before, w.state(t, "staff"))

		w.write(t, "hr.csv", "h1,Hans,Hr,hrlogin2,hans@example.com,,\n")
		wantTask(t, record(w.task(t, 0, "sync", "hr", "--json")), "hr", "succeeded", countsJSON{Updated: 1})

		rt := record(w.task(t, 0, "retry", fmt.Sprint(tk.ID), "--json"))
		wantTask(t, rt, "staff", "succeeded", countsJSON{Created: 1, Unchanged: 21})
		if rt.ID <= tk.ID || rt.Trigger != "retry" || rt.RetryOf == nil || *rt.RetryOf != tk.ID {
			t.Errorf("retry task %+v, want a new task with retry_of %d", rt, tk.ID)
		}
		if want := fmt.Sprintf("log/user-data-sync/staff/%d.csv", rt.ID); deref(rt.RawRecord) != want {
			t.Errorf("retry task's raw_record %s, want its own %s", deref(rt.RawRecord), want)
		}
		st := w.state(t, "staff")
		checkIDs(t, st)
		if u := st.Users[ext(22)]; u.UserName != "HRLOGIN" || u.State != reconcile.StateActive {
			t.Errorf("retried user %+v", u)
		}
		ids[ext(22)] = st.Users[ext(22)].ID
		w.want(t, exitRefused, "retry", fmt.Sprint(rt.ID)) // succeeded: nothing to retry
		// The retry ran the file's content: the same file is skipped now.
		wantTask(t, sync(t, 0), "staff", "skipped", countsJSON{})
	})

	step("upload with --file", func(t *testing.T) {
		orig := w.read(t, "staff.csv")
		before := w.state(t, "staff")
		nTasks := len(w.tasks(t))
		bad, err := os.ReadFile("../../sources/csv/testdata/bad/duplicate_login.csv")
		if err != nil {
			t.Fatal(err)
		}
		w.write(t, "upload-bad.csv", string(bad))
		r := w.want(t, 1, "sync", "staff", "--file", "upload-bad.csv", "--json")
		var answer struct {
			Errors []struct{ Message string } `json:"errors"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &answer); err != nil || len(answer.Errors) != 1 ||
			answer.Errors[0].Message != `line 3, column 4 (login): "JDoe" is already used on line 1` {
			t.Errorf("an invalid upload with --json does not say why in JSON (%v):\n%s", err, r)
		}
		r = w.want(t, 1, "sync", "staff", "--file", "upload-bad.csv")
		if !strings.Contains(r.stdout, `line 3, column 4 (login): "JDoe" is already used on line 1`) {
			t.Errorf("an invalid upload does not say why:\n%s", r)
		}
		if got := w.read(t, "staff.csv"); got != orig {
			t.Errorf("an invalid upload replaced the source's file")
		}
		if n := len(w.tasks(t)); n != nTasks {
			t.Errorf("an invalid upload made %d tasks", n-nTasks)
		}
		if left, _ := filepath.Glob(w.path(".staff.csv*")); len(left) > 0 {
			t.Errorf("an invalid upload left %v behind", left)
		}
		sameState(t, "invalid upload", before, w.state(t, "staff"))
		w.want(t, 2, "sync", "staff", "--file", "no-such-file.csv")
		w.want(t, 2, "sync", "staff", "--dry-run", "--file", "upload-bad.csv")

		cur = append(cur, person{ID: ext(23), First: "Uwe", Last: "Upload", Login: "uupload", Email: "uwe@example.com"})
		good := csvOf(cur)
		w.write(t, "upload-good.csv", good)
		tk := sync(t, 0, "--file", "upload-good.csv")
		wantTask(t, tk, "staff", "succeeded", countsJSON{Created: 1, Unchanged: 22})
		if got := w.read(t, "staff.csv"); got != good {
			t.Errorf("a valid upload did not replace the source's file")
		}
		if got := w.read(t, "upload-good.csv"); got != good {
			t.Errorf("the uploaded file itself changed")
		}
		if _, ok := w.state(t, "staff").Users[ext(23)]; !ok {
			t.Errorf("the uploaded person is not in the directory")
		}

		// The same people with a byte order mark and CRLF line ends: a new
		// file that changes nothing, with a warning.
		before = w.state(t, "staff")
		w.write(t, "upload-bom.csv", "\ufeff"+strings.ReplaceAll(good, "\n", "\r\n"))
		tk = sync(t, 0, "--file", "upload-bom.csv")
		wantTask(t, tk, "staff", "succeeded", countsJSON{Unchanged: 23})
		if len(tk.Warnings) != 1 || !strings.Contains(tk.Warnings[0], "byte order mark") {
			t.Errorf("warnings %q", tk.Warnings)
		}
		after := w.state(t, "staff")
		before.Revision, before.LastFingerprint = after.Revision, after.LastFingerprint
		sameState(t, "BOM and CRLF", before, after)
	})

	step("usage and configuration errors exit 2, what does not exist 4", func(t *testing.T) {
		before := w.state(t, "staff")
		r := w.want(t, exitNotFound, "sync", "nope", "--json")
		if !strings.Contains(r.stderr, `no source "nope"`) || r.stdout != "" || strings.Contains(r.stderr, "usage:") {
			t.Errorf("unknown source:\n%s", r)
		}
		w.want(t, 2, "sync")
		w.want(t, 2, "sync", "staff", "hr")
		w.want(t, 2, "sync", "staff", "--bogus")
		w.want(t, 2, "task", "abc")
		w.want(t, exitNotFound, "task", "999999")
		w.want(t, exitNotFound, "retry", "999999")
		w.want(t, exitNotFound, "approve", "999999")
		w.want(t, 2, "frobnicate")

		w.write(t, "bad.yaml", "# a typo\nsources:\n  - name: staff\n    type: csv\n    orphans: maybe\n    path: staff.csv\n")
		r = w.want(t, 2, "sync", "staff", "--config", "bad.yaml")
		if !strings.Contains(r.stderr, "bad.yaml:5: sources[0].orphans") {
			t.Errorf("a bad config does not name the file, line and key:\n%s", r)
		}
		r = runRoster(t, w.dir, "", []string{"ROSTER_CONFIG=bad.yaml"}, "tasks")
		if r.code != 2 || !strings.Contains(r.stderr, "sources[0].orphans") {
			t.Errorf("ROSTER_CONFIG with a bad config:\n%s", r)
		}
		sameState(t, "usage errors", before, w.state(t, "staff"))
	})

	step("sources, tasks and task", func(t *testing.T) {
		list := w.tasks(t)
		var got []int64
		var lastStaff taskJSON
		for _, tk := range list {
			got = append(got, tk.ID)
			if tk.Source == "staff" && tk.ID > lastStaff.ID {
				lastStaff = tk
			}
		}
		var want []int64
		for id := range all {
			want = append(want, id)
		}
		slices.Sort(want)
		slices.Reverse(want)
		if !slices.Equal(got, want) {
			t.Errorf("tasks lists %v, want the scenario's tasks newest first %v", got, want)
		}

		failed := w.tasks(t, "--status", "failed")
		var fids []int64
		for _, tk := range failed {
			fids = append(fids, tk.ID)
			if tk.Status != "failed" || len(tk.Errors) == 0 {
				t.Errorf("tasks --status failed lists %+v", tk)
			}
		}
		slices.Sort(fids)
		slices.Sort(failedIDs)
		if !slices.Equal(fids, failedIDs) {
			t.Errorf("failed tasks %v, want %v", fids, failedIDs)
		}
		for _, tk := range w.tasks(t, "--source", "hr") {
			if tk.Source != "hr" {
				t.Errorf("tasks --source hr lists %+v", tk)
			}
		}
		if n := len(w.tasks(t, "--source", "hr")); n != 2 {
			t.Errorf("%d hr tasks, want 2", n)
		}

		r := w.want(t, 0, "sources", "--json")
		var srcs []struct {
			Name     string    `json:"name"`
			Type     string    `json:"type"`
			State    string    `json:"state"`
			LastTask *taskJSON `json:"last_task"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &srcs); err != nil {
			t.Fatalf("sources --json: %v\n%s", err, r)
		}
		if len(srcs) != 2 || srcs[0].Name != "staff" || srcs[0].Type != "csv" || srcs[0].LastTask == nil ||
			srcs[0].LastTask.ID != lastStaff.ID || srcs[0].State != lastStaff.Status || srcs[1].Name != "hr" {
			t.Errorf("sources --json:\n%s", r.stdout)
		}
		text := w.want(t, 0, "sources").stdout
		if !regexp.MustCompile(`(?m)^staff\s+csv\s+-\s+succeeded\s+\d+ at `).MatchString(text) || !strings.Contains(text, "hr") {
			t.Errorf("sources:\n%s", text)
		}

		text = w.want(t, 0, "tasks", "--status", "failed").stdout
		if !strings.Contains(text, "STATUS") || strings.Contains(text, "succeeded") {
			t.Errorf("tasks --status failed:\n%s", text)
		}
		r = w.want(t, 0, "migrate")
		if !regexp.MustCompile(`^` + w.driver + ` store at schema version (\d+) \(this roster needs (\d+)\)\n$`).MatchString(r.stdout) {
			t.Errorf("migrate:\n%s", r)
		}

		conflict := failedIDs[len(failedIDs)-1]
		text = w.want(t, 0, "task", fmt.Sprint(conflict)).stdout
		if !strings.HasPrefix(text, fmt.Sprintf("task %d (staff, manual): failed", conflict)) || !strings.Contains(text, `"HRLOGIN" is already used by`) {
			t.Errorf("task %d:\n%s", conflict, text)
		}
	})
}

// goldenLines reads a .golden file's lines.
func goldenLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// TestCheck runs `roster check --csv` on every bad file of the csv
// package and compares its errors with the golden files; it needs no
// config (the work folder holds a broken one) and no database.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "roster.yaml"), []byte("not: [valid\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad, err := filepath.Glob("../../sources/csv/testdata/bad/*.csv")
	if err != nil || len(bad) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, file := range bad {
		name := strings.TrimSuffix(filepath.Base(file), ".csv")
		t.Run(name, func(t *testing.T) {
			abs, _ := filepath.Abs(file)
			golden := goldenLines(t, strings.TrimSuffix(file, ".csv")+".golden")
			r := runRoster(t, dir, "", nil, "check", "--csv", abs)
			if r.code != 1 {
				t.Fatalf("want exit 1:\n%s", r)
			}
			lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
			summary := lines[len(lines)-1]
			var errs []string
			for _, l := range lines[:len(lines)-1] {
				if !strings.HasPrefix(l, "warning: ") {
					errs = append(errs, l)
				}
			}
			if !slices.Equal(errs, golden) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(errs, "\n  "), strings.Join(golden, "\n  "))
			}
			for _, l := range errs {
				if !errorPrefix.MatchString(l) {
					t.Errorf("%q does not start with `line N, column C (name): `", l)
				}
			}
			count := fmt.Sprintf("%d errors", len(golden))
			if len(golden) == 1 {
				count = "1 error"
			}
			if want := fmt.Sprintf("%s: %s; nothing of it would be imported", abs, count); summary != want {
				t.Errorf("summary %q, want %q", summary, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "roster.db")); err == nil {
				t.Errorf("check created a database")
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		abs, _ := filepath.Abs("../../sources/csv/testdata/valid.csv")
		r := runRoster(t, dir, "", nil, "check", abs) // the file may be positional too
		if r.code != 0 || !strings.Contains(r.stdout, "valid, 6 people") {
			t.Errorf("valid file:\n%s", r)
		}
	})
	t.Run("bom", func(t *testing.T) {
		abs, _ := filepath.Abs("../../sources/csv/testdata/bom_crlf.csv")
		r := runRoster(t, dir, "", nil, "check", "--csv", abs)
		if r.code != 0 || !strings.Contains(r.stdout, "warning: ") || !strings.Contains(strings.ToLower(r.stdout), "byte order mark") {
			t.Errorf("a file with a BOM is valid with a warning:\n%s", r)
		}
	})
	t.Run("password-min-length", func(t *testing.T) {
		abs, _ := filepath.Abs("../../sources/csv/testdata/bad/short_password.csv")
		if r := runRoster(t, dir, "", nil, "check", "--csv", abs, "--password-min-length", "3"); r.code != 0 {
			t.Errorf("a shorter minimum accepts the file:\n%s", r)
		}
	})
	t.Run("extra columns of a source", func(t *testing.T) {
		cdir := t.TempDir()
		cfg := "attributes:\n  custom: [{name: hired, type: dateTime}]\n" +
			"sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n    extra_columns: [title, \"emails[type eq \\\"work\\\"].value\", hired]\n"
		if err := os.WriteFile(filepath.Join(cdir, "roster.yaml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(cdir, "in.csv")
		if err := os.WriteFile(file, []byte("1,Ann,Lee,ann,,,,Engineer,ann@example.com,2026-01-02T09:00:00Z\n2,Bo,Kim,bo,,,,Lead,bo@,2 Jan 2026\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runRoster(t, cdir, "", nil, "check", "--csv", file, "--source", "staff")
		if r.code != 1 || !strings.Contains(r.stdout, `line 2, column 9 (emails[type eq "work"].value): "bo@" is not a valid e-mail address`) {
			t.Errorf("an extra column checked by its attribute's type:\n%s", r)
		}
		if !strings.Contains(r.stdout, `line 2, column 10 (hired): "2 Jan 2026" is not a date and time`) || strings.Contains(r.stdout, "line 1,") {
			t.Errorf("a custom attribute's column checked by its declared type:\n%s", r)
		}
		if r := runRoster(t, cdir, "", nil, "check", "--csv", file); r.code != 1 || !strings.Contains(r.stdout, "too many fields (10); a row has at most 7") {
			t.Errorf("without --source a row has seven columns:\n%s", r)
		}
		if _, err := os.Stat(filepath.Join(cdir, "roster.db")); err == nil {
			t.Errorf("check created a database")
		}
	})
	t.Run("usage", func(t *testing.T) {
		if r := runRoster(t, dir, "", nil, "check"); r.code != 2 {
			t.Errorf("check without a file:\n%s", r)
		}
		if r := runRoster(t, dir, "", nil, "check", "--csv", filepath.Join(dir, "missing.csv")); r.code == 0 {
			t.Errorf("check of a missing file:\n%s", r)
		}
	})
}

// TestToken checks that `roster token` prints the SHA-256 of the token on
// stdin in the form the config takes, and that --generate prints a token
// with its hash.
func TestToken(t *testing.T) {
	dir := t.TempDir()
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	for _, in := range []string{"s3cr3t-token", "s3cr3t-token\n", "s3cr3t-token\r\n"} {
		r := runRoster(t, dir, in, nil, "token")
		if r.code != 0 || r.stdout != hash("s3cr3t-token")+"\n" {
			t.Errorf("token for %q:\n%s", in, r)
		}
		if strings.Contains(r.stdout+r.stderr, "s3cr3t") {
			t.Errorf("token printed the clear token:\n%s", r)
		}
	}
	if r := runRoster(t, dir, "", nil, "token"); r.code != 2 {
		t.Errorf("token without input:\n%s", r)
	}
	r := runRoster(t, dir, "", nil, "token", "--generate")
	m := regexp.MustCompile(`(?m)^token: (\S+)\nhash:\s+(sha256:[0-9a-f]{64})\n$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || len(m[1]) < 32 || hash(m[1]) != m[2] {
		t.Errorf("token --generate:\n%s", r)
	}
}

// TestVersionAndHelp checks the commands that need nothing.
func TestVersionAndHelp(t *testing.T) {
	dir := t.TempDir()
	r := runRoster(t, dir, "", nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "roster ") {
		t.Errorf("version:\n%s", r)
	}
	r = runRoster(t, dir, "", nil, "help")
	if r.code != 0 || !strings.Contains(r.stdout, "sync") || !strings.Contains(r.stdout, "check") {
		t.Errorf("help:\n%s", r)
	}
	if r := runRoster(t, dir, "", nil); r.code != 2 {
		t.Errorf("no command:\n%s", r)
	}
	for _, cmd := range []string{"serve", "sync", "check", "sources", "tasks", "task", "retry", "approve", "reject", "migrate", "token", "version"} {
		for _, flag := range []string{"--help", "-h"} {
			r := runRoster(t, dir, "", nil, cmd, flag)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: roster "+cmd+" ") || r.stderr != "" {
				t.Errorf("%s %s: want exit 0 and the usage on stdout:\n%s", cmd, flag, r)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("asking for help left %d files in the folder", len(entries))
	}
}

// TestSourceSettings covers the source settings the scenario leaves at
// their defaults: on_conflict: skip, activate_new: false,
// password_min_length, an absolute max_removals and allow_empty.
func TestSourceSettings(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			t.Run("skip conflicts, create inactive", func(t *testing.T) {
				w := newWorkdir(t, driver)
				w.writeConfig(t, settings{OnConflict: "skip", ActivateNew: ptr(false), PasswordMinLength: 12})
				w.write(t, "hr.csv", "h1,Hans,Hr,hrlogin,,,\n")
				w.task(t, 0, "sync", "hr", "--json")
				people := append(basePeople(), person{ID: ext(21), First: "Holger", Last: "Rose", Login: "HRLogin"})
				people[0].Password = "Ten-chars!"
				w.write(t, "staff.csv", csvOf(people))
				tk := w.task(t, 1, "sync", "staff", "--json")
				if len(tk.Errors) != 1 || tk.Errors[0].Message != "line 1, column 7 (password): the password is shorter than 12 characters" {
					t.Errorf("password_min_length 12: %+v", tk.Errors)
				}
				people[0].Password = "Long-Enough-Pass"
				w.write(t, "staff.csv", csvOf(people))
				tk = w.task(t, 0, "sync", "staff", "--json")
				wantTask(t, tk, "staff", "succeeded", countsJSON{Created: 20, Skipped: 1})
				if len(tk.Warnings) != 1 || !strings.HasPrefix(tk.Warnings[0], `line 21, column 4 (login): "HRLogin" is already used by a user of source "hr"`) {
					t.Errorf("warnings %q", tk.Warnings)
				}
				st := w.state(t, "staff")
				if _, ok := st.Users[ext(21)]; ok || len(st.Users) != 20 {
					t.Errorf("the conflicting record was imported")
				}
				for e, u := range st.Users {
					if u.Active || u.State != reconcile.StateInactive || u.StateReason != reconcile.ReasonPending {
						t.Errorf("user %s with activate_new: false: %+v", e, u)
					}
				}
				// The conflict goes away: a sync with skipped records is never
				// "unchanged", so the same file now brings the record in.
				w.write(t, "hr.csv", "h1,Hans,Hr,hrlogin2,,,\n")
				w.task(t, 0, "sync", "hr", "--json")
				wantTask(t, w.task(t, 0, "sync", "staff", "--json"), "staff", "succeeded", countsJSON{Created: 1, Unchanged: 20})
				wantTask(t, w.task(t, 0, "sync", "staff", "--json"), "staff", "skipped", countsJSON{})
			})
			t.Run("absolute max_removals, allow_empty", func(t *testing.T) {
				w := newWorkdir(t, driver)
				w.writeConfig(t, settings{MaxRemovals: "7", AllowEmpty: true})
				people := basePeople()
				w.write(t, "staff.csv", csvOf(people))
				w.task(t, 0, "sync", "staff", "--json")
				w.write(t, "staff.csv", csvOf(without(people, exts(14, 20)...)))
				wantTask(t, w.task(t, 0, "sync", "staff", "--json"), "staff", "succeeded", countsJSON{Unchanged: 13, Deactivated: 7})
				w.write(t, "staff.csv", csvOf(people))
				w.task(t, 0, "sync", "staff", "--json")
				w.write(t, "staff.csv", csvOf(without(people, exts(13, 20)...)))
				wantTask(t, w.task(t, 3, "sync", "staff", "--json"), "staff", "held", countsJSON{Unchanged: 12, Deactivated: 8})
				w.write(t, "staff.csv", "\n\n")
				wantTask(t, w.task(t, 0, "sync", "staff", "--force", "--json"), "staff", "succeeded", countsJSON{Deactivated: 20})
				for e, u := range w.state(t, "staff").Users {
					if u.State != reconcile.StateInactive {
						t.Errorf("user %s after an empty file with allow_empty: %s", e, u.State)
					}
				}
			})
		})
	}
}

// TestSyncValidFile syncs the csv package's valid.csv, which uses every
// corner of the format (quotes, doubled quotes, a line break inside
// quotes, short rows, blank lines, white space, duplicate groups in two
// cases, a leading zero), and checks what lands in the directory.
func TestSyncValidFile(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			w := newWorkdir(t, driver)
			w.writeConfig(t, settings{})
			copyFile(t, "../../sources/csv/testdata/valid.csv", w.path("staff.csv"))
			wantTask(t, w.task(t, 0, "sync", "staff", "--json"), "staff", "succeeded", countsJSON{Created: 6})
			st := w.state(t, "staff")
			type want struct {
				login, given, family, email string
				groups                      []string
				password                    bool
			}
			for e, wu := range map[string]want{
				"00042": {"jdoe", "Jane", "Doe", "jane.doe@example.com", []string{"berlin", "engineering"}, false},
				"1001":  {"hmueller", "Hans", "Müller, Jr.", "", []string{"sales"}, false},
				"1002":  {"aschmidt", `Anna "Ani"`, "Schmidt", "anna.schmidt@example.com", []string{"hr", "support"}, true},
				"1003":  {"zweiss", "Zoë", "Weiß", "", nil, false},
				"1004":  {"jgross", "Jürgen", "Groß", "juergen.gross@example.com", nil, false},
				"1005":  {"lkoch", "Lena", "Koch", "lena.koch@example.com", []string{"hr"}, false},
			} {
				u, ok := st.Users[e]
				if !ok {
					t.Errorf("user %s is missing", e)
					continue
				}
				if u.UserName != wu.login || u.GivenName != wu.given || u.FamilyName != wu.family || u.Email != wu.email ||
					!slices.Equal(u.Groups, wu.groups) || u.HasPassword != wu.password || u.EmployeeNumber != e ||
					u.DisplayName != wu.given+" "+wu.family || u.State != reconcile.StateActive {
					t.Errorf("user %s: %+v, want %+v", e, u, wu)
				}
			}
			if !slices.Equal(st.Groups, []string{"Berlin", "Engineering", "HR", "Sales", "Support"}) {
				t.Errorf("groups %v", st.Groups)
			}
			wantTask(t, w.task(t, 0, "sync", "staff", "--json"), "staff", "skipped", countsJSON{})
		})
	}
}
