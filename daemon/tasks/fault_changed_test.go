package tasks_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestSyncFileRewrittenWhileRead: a file truncated in place (as a writer
// rewriting it leaves it for a moment) while the sync reads it makes the
// reader see a cut line. The task must fail as "the file changed while it was being read"
// (transient: the daemon reads it again), not blame that line with a
// validation error (regression: it named e.g. line 10923 "is not a valid
// e-mail address", a line valid in both versions).
func TestSyncFileRewrittenWhileRead(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		dir := t.TempDir()
		file := filepath.Join(dir, "staff.csv")
		var b strings.Builder
		for i := range 25000 {
			b.WriteString("id" + strings.Repeat("0", 6) + itoa(i) + ",Given,Family,login" + itoa(i) + ",login" + itoa(i) + "@example.com,Team,\n")
		}
		writeFile(t, file, b.String())
		r := runner(t, s, dir, file)
		var once sync.Once
		r.Progress = func(_, phase string, n int) {
			if phase == "read" && n > 0 {
				// Cut inside a line well ahead of the reader, as a writer
				// rewriting the file in place would leave it for a moment.
				once.Do(func() {
					content := b.String()
					cut := len(content) * 9 / 10
					cut += strings.IndexByte(content[cut:], '@') // inside the e-mail
					if err := os.Truncate(file, int64(cut)); err != nil {
						t.Error(err)
					}
				})
			}
		}
		res, err := r.Sync(context.Background(), "staff", tasks.Options{Trigger: tasks.TriggerManual})
		if err != nil {
			t.Fatal(err)
		}
		v := tasks.ViewOf(res.Task, nil)
		if res.Task.Status != store.StatusFailed || len(v.Errors) != 1 || !strings.Contains(v.Errors[0].Message, "the file changed while it was being read") || !res.Task.Transient {
			t.Fatalf("sync of a file rewritten while read: %s, transient %t, errors %+v; want failed (transient) as changed while read", res.Task.Status, res.Task.Transient, v.Errors)
		}
	})
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var out []byte
	for ; i > 0; i /= 10 {
		out = append([]byte{digits[i%10]}, out...)
	}
	return string(out)
}
