package tasks_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/password"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestResyncHashesOnlyPasswordsItSets: a password is set only when its
// user is created or has none yet (SPEC §3.1), so only those passwords are
// hashed. 40 people with passwords: the first sync hashes 40; a re-sync
// where one name changes hashes none and leaves every hash as it was; a
// newcomer costs one hash, and gets their password. The raw record of a
// re-sync holds neither the clear passwords nor hashes of passwords it did
// not set. On the whole and the streamed path, on both stores.
func TestResyncHashesOnlyPasswordsItSets(t *testing.T) {
	const n = 40
	people := func(n int, renamed int) string {
		var b strings.Builder
		for i := range n {
			given := "Given" + itoa(i)
			if i == renamed {
				given = "Renamed"
			}
			fmt.Fprintf(&b, "%04d,%s,Family,user%d,,Team,Passw0rd-%d\n", i, given, i, i)
		}
		return b.String()
	}
	for _, driver := range storetest.Drivers {
		for _, mode := range []string{"whole", "streamed"} {
			t.Run(driver+"/"+mode, func(t *testing.T) {
				s := storetest.Open(t, driver)
				ctx := context.Background()
				dir := t.TempDir()
				file := filepath.Join(dir, "staff.csv")
				r := runner(t, s, dir, file)
				r.Config.Limits.StreamFrom = 1 << 30
				if mode == "streamed" {
					r.Config.Limits.StreamFrom = 0
				}
				sync := func(content string, wantHashes int64) *store.Task {
					t.Helper()
					writeFile(t, file, content)
					before := password.Hashes()
					res, err := r.Sync(ctx, "staff", tasks.Options{})
					if err != nil {
						t.Fatal(err)
					}
					if res.Task.Status != store.StatusSucceeded {
						t.Fatalf("task %s: %s", res.Task.Status, res.Task.Errors)
					}
					if got := password.Hashes() - before; got != wantHashes {
						t.Errorf("the sync hashed %d passwords; want %d", got, wantHashes)
					}
					return res.Task
				}
				hashes := func() map[string]string {
					t.Helper()
					var rows []struct{ ExternalID, PasswordHash string }
					if err := s.DB().Raw(`SELECT external_id, password_hash FROM users WHERE source = 'staff'`).Scan(&rows).Error; err != nil {
						t.Fatal(err)
					}
					m := map[string]string{}
					for _, row := range rows {
						m[row.ExternalID] = row.PasswordHash
					}
					return m
				}

				sync(people(n, -1), n)
				first := hashes()
				renamed := sync(people(n, 7), 0)
				if after := hashes(); len(after) != n || fmt.Sprint(after) != fmt.Sprint(first) {
					t.Errorf("the re-sync changed stored password hashes")
				}
				raw, err := os.ReadFile(filepath.Join(dir, renamed.RawRecord))
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(raw), "Passw0rd") || strings.Contains(string(raw), "$argon2id$") {
					t.Errorf("the raw record of the re-sync holds passwords it did not set:\n%.300s", raw)
				}
				if strings.Count(string(raw), "\n") != n {
					t.Errorf("the raw record of the re-sync has %d lines; want %d", strings.Count(string(raw), "\n"), n)
				}

				sync(people(n+1, 7), 1)
				h := hashes()[fmt.Sprintf("%04d", n)]
				if ok, err := password.Verify(h, fmt.Sprintf("Passw0rd-%d", n)); !ok || err != nil {
					t.Errorf("the newcomer's stored hash %q does not verify their password: %v", h, err)
				}
			})
		}
	}
}
