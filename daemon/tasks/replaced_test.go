package tasks_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestFileReplacedBeforeRead: an exporter that writes a new file and
// renames it over the old one between the sync's first check of the file
// and its read is read whole in the new version and synced, not failed
// as "changed while it was being read" (TestLoad's scheduled syncs
// failed so). A file rewritten while it is read still fails: see
// TestFaultFileChangedWhileRead.
func TestFileReplacedBeforeRead(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		dir := t.TempDir()
		file := filepath.Join(dir, "staff.csv")
		writeFile(t, file, staffCSV(3))
		r := runner(t, s, dir, file)
		replace := func(content string) {
			tmp := file + ".new"
			writeFile(t, tmp, content)
			if err := os.Rename(tmp, file); err != nil {
				t.Fatal(err)
			}
		}

		defer tasks.SetAfterFingerprint(func() { replace(staffCSV(4)) })()
		res, err := r.Sync(t.Context(), "staff", tasks.Options{})
		if err != nil || res.Task.Status != store.StatusSucceeded || res.Plan.Counts.Created != 4 {
			t.Fatalf("a file renamed over the old one before the read: %v %+v, want 4 users created", err, res.Task)
		}

	})
}
