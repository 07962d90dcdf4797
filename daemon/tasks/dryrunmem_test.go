package tasks_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestDryRunMemory: a dry run of a file that the sync streams is planned
// as the sync plans it, a chunk of 5,000 records at a time, its changes
// kept aside in a file and read back one at a time (issue 16: a dry run
// of 490,000 people changing peaked at 2.0 GB RSS). A dry run changing
// the name of each of 15,000 people may grow the heap by 100 bytes a
// person (the ids of the input and what is known of each user, as a
// streamed sync keeps) and 16 MB (one chunk: its records, their users
// and their changes, about 3 KB each): 18.3 MB. The same dry run planned
// whole, as every dry run was before, holds every record, user and
// change at once: its growth is logged beside (about 2.4 KB a person),
// and must exceed the bound, or the test shows nothing.
func TestDryRunMemory(t *testing.T) {
	const n = 15000
	people := func(given string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%06d,%s%d,Family%d,user%d,user%d@example.com,Team%d|Site%d,\n", i, given, i, i, i, i, i%50, i%7)
		}
		return b.String()
	}
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		dir := t.TempDir()
		file := filepath.Join(dir, "staff.csv")
		writeFile(t, file, people("Given"))
		r := runner(t, s, dir, file)
		r.Config.Limits.StreamFrom = 0
		if res, err := r.Sync(t.Context(), "staff", tasks.Options{}); err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("the first sync: %v %+v", err, res)
		}
		writeFile(t, file, people("Renamed"))
		dry := func(streamFrom int64) (int64, int) {
			r.Config.Limits.StreamFrom = 0
			if streamFrom > 0 {
				r.Config.Limits.StreamFrom = 1 << 40
			}
			var res *tasks.Result
			grew := heapGrowth(func() {
				var err error
				if res, err = r.Sync(t.Context(), "staff", tasks.Options{DryRun: true}); err != nil {
					t.Fatal(err)
				}
			})
			defer res.Close()
			updates := 0
			if err := res.EachChange(func(c *reconcile.Change) error {
				if c.Action == reconcile.Update {
					updates++
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if streamFrom == 0 && !tasks.Streamed(res) {
				t.Fatal("the dry run was not streamed")
			}
			return grew, updates
		}
		streamed, updates := dry(0)
		whole, wholeUpdates := dry(1)
		limit := int64(100*n + 16<<20)
		t.Logf("a dry run renaming %d people: the heap grew by %.1f MB streamed (bound %.1f MB), %.1f MB planned whole",
			n, float64(streamed)/1e6, float64(limit)/1e6, float64(whole)/1e6)
		if updates != n || wholeUpdates != n {
			t.Fatalf("updates: %d streamed, %d whole; want %d", updates, wholeUpdates, n)
		}
		if streamed > limit {
			t.Errorf("the streamed dry run grew the heap by %.1f MB; want at most 100 bytes a person and 16 MB (%.1f MB)",
				float64(streamed)/1e6, float64(limit)/1e6)
		}
		if whole <= limit {
			t.Errorf("planned whole, the dry run grew the heap by %.1f MB only, within the bound (%.1f MB): the test shows nothing",
				float64(whole)/1e6, float64(limit)/1e6)
		}
	})
}
