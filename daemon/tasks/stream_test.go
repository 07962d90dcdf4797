package tasks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestStreamedSyncMatchesWhole syncs the same files, one after the other,
// into two directories: one streams every file (limits.stream_from: 0),
// the other plans every file whole. After each sync both directories must
// hold the same users, groups and memberships, and both tasks the same
// counts: updates, orphans under each policy, restores, a login that moves
// between two people (streaming hands that input back to the whole plan).
func TestStreamedSyncMatchesWhole(t *testing.T) {
	people := func(n int, edit func(i int, row []string) []string) string {
		var b strings.Builder
		for i := range n {
			row := []string{fmt.Sprintf("%05d", i), "Given" + itoa(i), "Family" + itoa(i), "user" + itoa(i),
				"user" + itoa(i) + "@example.com", fmt.Sprintf("Team%d|Site%d", i%7, i%3), ""}
			if edit != nil {
				row = edit(i, row)
			}
			if row != nil {
				b.WriteString(strings.Join(row, ",") + "\n")
			}
		}
		return b.String()
	}
	steps := []struct {
		name, extra, csv string
	}{
		{"first import", "", people(400, nil)},
		{"unchanged, forced", "", people(400, nil)},
		{"names, e-mails and groups change", "", people(400, func(i int, row []string) []string {
			switch i % 10 {
			case 1:
				row[1] = "Renamed"
			case 2:
				row[4] = "other" + itoa(i) + "@example.com"
			case 3:
				row[5] = "Team9"
			case 4:
				row[5] = ""
			}
			return row
		})},
		{"a tenth leave (deactivated)", "orphans: deactivate", people(400, func(i int, row []string) []string {
			if i%10 == 5 {
				return nil
			}
			return row
		})},
		{"they come back (restored)", "orphans: deactivate", people(420, nil)},
		{"a tenth leave (deleted)", "orphans: delete", people(420, func(i int, row []string) []string {
			if i%10 == 6 {
				return nil
			}
			return row
		})},
		{"the deleted come back, one login moves to a newcomer", "orphans: delete", people(430, func(i int, row []string) []string {
			switch i {
			case 7:
				row[3] = "user7-old"
			case 429:
				row[3] = "user7"
			}
			return row
		})},
	}
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "staff.csv")
			streamed, whole := storetest.Open(t, driver), storetest.Open(t, driver)
			ctx := context.Background()
			streamedDryRuns := 0
			defer func() {
				// The steps that move a login or trip the valve are planned
				// whole by the sync, and so by the dry run.
				if streamedDryRuns < len(steps)-2 {
					t.Errorf("%d of %d dry runs streamed", streamedDryRuns, len(steps))
				}
			}()
			for _, step := range steps {
				writeFile(t, file, step.csv)
				var extra []string
				if step.extra != "" {
					extra = append(extra, step.extra)
				}
				rs := runner(t, streamed, dir, file, extra...)
				rs.Config.Limits.StreamFrom = 0
				rw := runner(t, whole, dir, file, extra...)
				rw.Config.Limits.StreamFrom = 1 << 40
				// A dry run shows the same plan either way, change by change
				// in the same order; streamed where the sync streams.
				da, err := rs.Sync(ctx, "staff", tasks.Options{DryRun: true})
				if err != nil {
					t.Fatal(err)
				}
				dw, err := rw.Sync(ctx, "staff", tasks.Options{DryRun: true})
				if err != nil {
					t.Fatal(err)
				}
				if x, y := dryRunText(t, da), dryRunText(t, dw); x != y {
					t.Fatalf("%s: the dry runs differ:\nstreamed %s\nwhole    %s", step.name, x, y)
				}
				if tasks.Streamed(dw) {
					t.Fatalf("%s: the whole dry run streamed", step.name)
				}
				if tasks.Streamed(da) {
					streamedDryRuns++
				}
				a, err := rs.Sync(ctx, "staff", tasks.Options{Force: true})
				if err != nil {
					t.Fatal(err)
				}
				b, err := rw.Sync(ctx, "staff", tasks.Options{Force: true})
				if err != nil {
					t.Fatal(err)
				}
				if a.Task.Status != store.StatusSucceeded || a.Task.Status != b.Task.Status || a.Task.Counts != b.Task.Counts {
					t.Fatalf("%s: streamed %s %s %s, whole %s %s", step.name, a.Task.Status, a.Task.Counts, a.Task.Errors, b.Task.Status, b.Task.Counts)
				}
				if x, y := dump(t, streamed), dump(t, whole); !reflect.DeepEqual(x, y) {
					t.Fatalf("%s: the directories differ:\nstreamed %v\nwhole    %v", step.name, x, y)
				}
			}
		})
	}
}

// uuids are the generated ids of new users and groups, which differ from
// one plan to the next.
var uuids = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// dryRunText is what a dry run shows, its generated ids blanked: the
// summary, then every change in order.
func dryRunText(t *testing.T, res *tasks.Result) string {
	t.Helper()
	defer res.Close()
	var b strings.Builder
	p := res.Plan
	head, err := json.Marshal(map[string]any{"errors": res.Errors, "counts": p.Counts, "warnings": p.Warnings, "hold": p.Hold,
		"groups_created": p.GroupCreates, "groups_deleted": p.GroupDeletes})
	if err != nil {
		t.Fatal(err)
	}
	b.Write(head)
	err = res.EachChange(func(c *reconcile.Change) error {
		line, err := json.Marshal(c)
		b.WriteString("\n")
		b.Write(line)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return uuids.ReplaceAllString(b.String(), "ID")
}

// dump describes a source's users and groups without their generated ids.
func dump(t *testing.T, s *store.Store) []string {
	t.Helper()
	snap, err := s.Snapshot(context.Background(), "staff")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range snap.Users {
		u.ID = ""
		out = append(out, fmt.Sprintf("%+v", u))
	}
	for _, g := range snap.Groups {
		out = append(out, "group "+g.DisplayName)
	}
	slices.Sort(out)
	if len(out) == 0 {
		t.Fatal("the directory is empty")
	}
	return out
}
