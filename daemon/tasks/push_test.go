package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/push"
)

// pushRunner returns a Runner whose config has a push source "api" (with
// extra YAML lines) and a csv source "staff".
func pushRunner(t testing.TB, s *store.Store, extra ...string) *tasks.Runner {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "staff.csv"), "s1,Sam,Smith,sam,,,\n")
	yaml := "log:\n  dir: log\nsources:\n  - name: staff\n    type: csv\n    path: staff.csv\n  - name: api\n    type: push\n"
	for _, e := range extra {
		yaml += "    " + e + "\n"
	}
	path := filepath.Join(dir, "roster.yaml")
	writeFile(t, path, yaml)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SyncSources(t.Context(), []string{"staff", "api"}, []string{"csv", "push"}); err != nil {
		t.Fatal(err)
	}
	return &tasks.Runner{Store: s, Config: cfg, Log: slog.New(slog.DiscardHandler)}
}

// pushNow accepts a payload and applies the source's queue, returning the
// payload's task as it ended.
func pushNow(t testing.TB, r *tasks.Runner, body string) *store.Task {
	t.Helper()
	p, err := push.Decode([]byte(body))
	if err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	task, err := r.AcceptPush(t.Context(), "api", p)
	if err != nil {
		t.Fatal(err)
	}
	if task.Status != store.StatusQueued {
		t.Fatalf("accepted task is %s, want queued", task.Status)
	}
	if _, err := r.DrainPush(t.Context(), "api"); err != nil {
		t.Fatal(err)
	}
	done, err := r.Store.GetTask(t.Context(), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

func counts(t *testing.T, task *store.Task) reconcile.Counts {
	t.Helper()
	var c reconcile.Counts
	if err := json.Unmarshal([]byte(task.Counts), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

type pushedUser struct {
	ExternalID, UserName, DisplayName, Department, State, Email string
	Active                                                      bool
	Groups                                                      []string // display names
}

// pushedUsers reads the users of source api by login.
func pushedUsers(t *testing.T, s *store.Store) map[string]pushedUser {
	t.Helper()
	db := s.DB()
	rows, err := db.Raw(`SELECT u.id, u.external_id, u.user_name, u.display_name, u.department, u.state, u.active,
		COALESCE(e.value, '') FROM users u LEFT JOIN user_emails e ON e.user_id = u.id WHERE u.source = 'api'`).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]pushedUser{}
	for rows.Next() {
		var id string
		var u pushedUser
		if err := rows.Scan(&id, &u.ExternalID, &u.UserName, &u.DisplayName, &u.Department, &u.State, &u.Active, &u.Email); err != nil {
			t.Fatal(err)
		}
		if err := db.Raw(`SELECT g.display_name FROM memberships m JOIN groups g ON g.id = m.group_id
			WHERE m.member_id = ? ORDER BY g.display_name`, id).Scan(&u.Groups).Error; err != nil {
			t.Fatal(err)
		}
		out[u.UserName] = u
	}
	return out
}

// tree is every department of api as "title<parent title" lines, sorted.
func tree(t *testing.T, s *store.Store) []string {
	t.Helper()
	var lines []string
	err := s.DB().Raw(`SELECT g.display_name || '<' || COALESCE(p.display_name, '') FROM groups g
		LEFT JOIN memberships m ON m.member_id = g.id AND m.member_type = 'Group'
		LEFT JOIN groups p ON p.id = m.group_id WHERE g.source = 'api' ORDER BY 1`).Scan(&lines).Error
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestPushUsersBeforeDepartments(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s)
		users := `{"dataType":"user","records":[
			{"uid":"1001","username":"jdoe","nickname":"Jane Doe","email":"jane@example.com","departments":["d-10",{"uid":"d-11","isMain":true}]},
			{"uid":"1002","username":"kim","email":"kim@example.com","departments":["d-0"]}]}`
		task := pushNow(t, r, users)
		if task.Status != store.StatusSucceeded || counts(t, task).Created != 2 {
			t.Fatalf("users: %s %s %s", task.Status, task.Counts, task.Errors)
		}
		got := pushedUsers(t, s)
		if u := got["jdoe"]; u.DisplayName != "Jane Doe" || u.Department != "" || len(u.Groups) != 0 || !u.Active {
			t.Fatalf("before the departments came: %+v", u)
		}
		// Children before parents, three levels deep.
		deps := `{"dataType":"department","records":[
			{"uid":"d-10","title":"Research","parentUid":"d-1"},
			{"uid":"d-11","title":"Labs","parentUid":"d-10"},
			{"uid":"d-1","title":"Engineering","parentUid":"d-0"}]}`
		task = pushNow(t, r, deps)
		if c := counts(t, task); task.Status != store.StatusSucceeded || c.GroupsCreated != 3 {
			t.Fatalf("departments: %s %s %s", task.Status, task.Counts, task.Errors)
		}
		want := []string{"Engineering<", "Labs<Research", "Research<Engineering"}
		if got := tree(t, s); !slices.Equal(got, want) {
			t.Fatalf("tree before the root came = %v, want %v", got, want)
		}
		got = pushedUsers(t, s)
		if u := got["jdoe"]; u.Department != "Labs" || !slices.Equal(u.Groups, []string{"Labs", "Research"}) {
			t.Fatalf("after the departments came: %+v", u)
		}
		if u := got["kim"]; len(u.Groups) != 0 {
			t.Fatalf("kim joined a department that has not come: %+v", u)
		}
		task = pushNow(t, r, `{"dataType":"department","records":[{"uid":"d-0","title":"Company"}]}`)
		if task.Status != store.StatusSucceeded {
			t.Fatalf("root: %s %s", task.Status, task.Errors)
		}
		want = []string{"Company<", "Engineering<Company", "Labs<Research", "Research<Engineering"}
		if got := tree(t, s); !slices.Equal(got, want) {
			t.Fatalf("tree = %v, want %v", got, want)
		}
		if u := pushedUsers(t, s)["kim"]; u.Department != "Company" || !slices.Equal(u.Groups, []string{"Company"}) {
			t.Fatalf("kim: %+v", u)
		}

		// The same payloads again change nothing.
		for _, body := range []string{users, deps} {
			task = pushNow(t, r, body)
			c := counts(t, task)
			if task.Status != store.StatusSucceeded || c.Created+c.Updated+c.GroupsCreated+c.GroupsUpdated != 0 {
				t.Fatalf("repeated push: %s %s", task.Status, task.Counts)
			}
		}
		if again := tree(t, s); !slices.Equal(again, want) {
			t.Fatalf("tree after repeats = %v", again)
		}
	})
}

func TestPushDeletes(t *testing.T) {
	for _, onDelete := range []string{"deactivate", "delete"} {
		t.Run(onDelete, func(t *testing.T) {
			storetest.ForEach(t, func(t *testing.T, s *store.Store) {
				r := pushRunner(t, s, "on_delete: "+onDelete)
				pushNow(t, r, `{"dataType":"department","records":[{"uid":"d-1","title":"Sales"},{"uid":"d-2","title":"Inside","parentUid":"d-1"}]}`)
				pushNow(t, r, `{"dataType":"user","records":[{"uid":"1","username":"ann","departments":["d-1"]},{"uid":"2","username":"bob","departments":["d-1"]}]}`)

				task := pushNow(t, r, `{"dataType":"user","records":[{"uid":"1","isDeleted":true},{"uid":"404","isDeleted":true}]}`)
				c := counts(t, task)
				got := pushedUsers(t, s)["ann"]
				switch onDelete {
				case "deactivate":
					if c.Deactivated != 1 || got.State != reconcile.StateInactive || got.Active || len(got.Groups) != 1 {
						t.Fatalf("deactivate: %s %+v", task.Counts, got)
					}
				case "delete":
					if c.Deleted != 1 || got.State != reconcile.StateDeleted || len(got.Groups) != 0 {
						t.Fatalf("delete: %s %+v", task.Counts, got)
					}
				}
				// Pushed again, the user comes back with the same id.
				var before, after string
				s.DB().Raw(`SELECT id FROM users WHERE source = 'api' AND external_id = '1'`).Scan(&before)
				task = pushNow(t, r, `{"dataType":"user","records":[{"uid":"1","username":"ann","departments":["d-1"]}]}`)
				s.DB().Raw(`SELECT id FROM users WHERE source = 'api' AND external_id = '1'`).Scan(&after)
				if u := pushedUsers(t, s)["ann"]; counts(t, task).Restored != 1 || before != after || !u.Active || u.Department != "Sales" {
					t.Fatalf("restore: %s, id %s -> %s, %+v", task.Counts, before, after, u)
				}

				// A deleted department lets its members and children wait for it.
				task = pushNow(t, r, `{"dataType":"department","records":[{"uid":"d-1","isDeleted":true}]}`)
				if counts(t, task).GroupsDeleted != 1 {
					t.Fatalf("department delete: %s %s", task.Counts, task.Errors)
				}
				if u := pushedUsers(t, s)["bob"]; u.Department != "" || len(u.Groups) != 0 {
					t.Fatalf("bob after his department went: %+v", u)
				}
				if got := tree(t, s); !slices.Equal(got, []string{"Inside<"}) {
					t.Fatalf("tree = %v", got)
				}
				pushNow(t, r, `{"dataType":"department","records":[{"uid":"d-1","title":"Sales"}]}`)
				if u := pushedUsers(t, s)["bob"]; u.Department != "Sales" || !slices.Equal(u.Groups, []string{"Sales"}) {
					t.Fatalf("bob after his department came back: %+v", u)
				}
				if got := tree(t, s); !slices.Equal(got, []string{"Inside<Sales", "Sales<"}) {
					t.Fatalf("tree = %v", got)
				}
			})
		})
	}
}

func TestPushMatchKeysAndConflicts(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s)
		if _, err := r.Sync(t.Context(), "staff", tasks.Options{}); err != nil {
			t.Fatal(err)
		}
		pushNow(t, r, `{"dataType":"user","records":[{"uid":"1","username":"ann","email":"ann@example.com","phone":"+49 1"}]}`)

		// The e-mail finds ann although her uid changed upstream.
		task := pushNow(t, r, `{"dataType":"user","matchKey":"email","records":[{"uid":"A-1","email":"ANN@example.com","nickname":"Ann A."}]}`)
		u := pushedUsers(t, s)["ann"]
		if counts(t, task).Updated != 1 || u.ExternalID != "A-1" || u.DisplayName != "Ann A." || u.Email != "ANN@example.com" {
			t.Fatalf("match by email: %s %+v", task.Counts, u)
		}
		task = pushNow(t, r, `{"dataType":"user","matchKey":"phone","records":[{"uid":"A-1","phone":"+49 1","username":"anna"}]}`)
		if counts(t, task).Updated != 1 || pushedUsers(t, s)["anna"].ExternalID != "A-1" {
			t.Fatalf("match by phone: %s", task.Counts)
		}

		// A login of another source fails the whole push; nothing of it is applied.
		task = pushNow(t, r, `{"dataType":"user","records":[{"uid":"2","username":"bea"},{"uid":"3","username":"SAM"}]}`)
		v := tasks.ViewOf(task, nil)
		if task.Status != store.StatusFailed || len(v.Errors) != 1 || !strings.Contains(v.Errors[0].Message, `records[1] (username): "SAM" is already used by a user of source "staff"`) {
			t.Fatalf("conflict: %s %+v", task.Status, v.Errors)
		}
		if _, ok := pushedUsers(t, s)["bea"]; ok {
			t.Fatal("a failed push applied part of its records")
		}
		// Retried by hand after the cause is gone, it applies.
		r.Config.Sources[1].OnConflict = config.OnConflictSkip
		res, err := r.Retry(t.Context(), task.ID, "")
		if err != nil || res.Task.Status != store.StatusSucceeded || *res.Task.RetryOf != task.ID {
			t.Fatalf("retry: %+v %v", res, err)
		}
		if c := counts(t, res.Task); c.Created != 1 || c.Skipped != 1 {
			t.Fatalf("retry counts %s", res.Task.Counts)
		}
		// The raw records are JSON files only the owner reads.
		fi, err := os.Stat(filepath.Join(r.Config.Dir, task.RawRecord))
		if err != nil || fi.Mode().Perm() != 0o600 || !strings.HasSuffix(task.RawRecord, ".json") {
			t.Fatalf("raw record %q: %v %v", task.RawRecord, fi, err)
		}
	})
}

func TestPushRecoveredAfterCrash(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s)
		ctx := context.Background()
		p, _ := push.Decode([]byte(`{"dataType":"user","records":[{"uid":"1","username":"first"}]}`))
		first, err := r.AcceptPush(ctx, "api", p)
		if err != nil {
			t.Fatal(err)
		}
		p, _ = push.Decode([]byte(`{"dataType":"user","records":[{"uid":"1","username":"second"}]}`))
		if _, err := r.AcceptPush(ctx, "api", p); err != nil {
			t.Fatal(err)
		}
		// A process died while it ran the first push.
		first.Status = store.StatusRunning
		if err := s.SaveTask(ctx, first); err != nil {
			t.Fatal(err)
		}
		if failed, err := r.Recover(ctx); err != nil || len(failed) != 1 {
			t.Fatalf("Recover = %v, %v", failed, err)
		}
		if _, err := r.DrainPush(ctx, "api"); err != nil {
			t.Fatal(err)
		}
		// The first push's retry ran before the second push: the later one wins.
		if got := pushedUsers(t, s); len(got) != 1 || got["second"].ExternalID != "1" {
			t.Fatalf("users = %+v", got)
		}
		all, _, err := s.ListTasks(ctx, store.TaskFilter{Source: "api"})
		if err != nil {
			t.Fatal(err)
		}
		var statuses []string
		for _, task := range all {
			statuses = append(statuses, task.Trigger+":"+task.Status)
		}
		slices.Sort(statuses)
		if want := []string{"push:failed", "push:succeeded", "retry:succeeded"}; !slices.Equal(statuses, want) {
			t.Fatalf("tasks %v, want %v", statuses, want)
		}
	})
}

// TestPushDepartmentCycles: a parent that would make a department its own
// ancestor through departments stored earlier fails the push, naming the
// record that closes the cycle, and changes nothing; a deep move that
// closes no cycle is applied.
func TestPushDepartmentCycles(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s)
		pushNow(t, r, `{"dataType":"department","records":[{"uid":"d-0","title":"Zero"},{"uid":"d-1","title":"One","parentUid":"d-0"},
			{"uid":"d-2","title":"Two","parentUid":"d-1"},{"uid":"x","title":"X"}]}`)
		want := []string{"One<Zero", "Two<One", "X<", "Zero<"}
		for _, c := range []struct{ body, err string }{
			{`[{"uid":"x","parentUid":"d-2"},{"uid":"d-0","parentUid":"d-2"}]`,
				`records[1] (parentUid): "d-2" would make department "d-0" its own ancestor`},
			{`[{"uid":"d-0","parentUid":"x"},{"uid":"x","parentUid":"d-2"}]`,
				`records[1] (parentUid): "d-2" would make department "x" its own ancestor`},
			{`[{"uid":"d-1","parentUid":"d-2"},{"uid":"x","title":"X2"}]`,
				`records[0] (parentUid): "d-2" would make department "d-1" its own ancestor`},
		} {
			task := pushNow(t, r, `{"dataType":"department","records":`+c.body+`}`)
			var errs []sources.FieldError
			if err := json.Unmarshal([]byte(task.Errors), &errs); err != nil {
				t.Fatal(err)
			}
			if task.Status != store.StatusFailed || len(errs) != 1 || errs[0].Message != c.err || errs[0].Field != "parentUid" {
				t.Fatalf("%s: %s %s, want the error %s", c.body, task.Status, task.Errors, c.err)
			}
			if got := tree(t, s); !slices.Equal(got, want) {
				t.Fatalf("%s changed the tree: %v, want %v", c.body, got, want)
			}
		}
		task := pushNow(t, r, `{"dataType":"department","records":[{"uid":"x","parentUid":"d-2"}]}`)
		if task.Status != store.StatusSucceeded {
			t.Fatalf("a move without a cycle: %s %s", task.Status, task.Errors)
		}
		if got, want := tree(t, s), []string{"One<Zero", "Two<One", "X<Two", "Zero<"}; !slices.Equal(got, want) {
			t.Fatalf("tree = %v, want %v", got, want)
		}
	})
}

// TestPushQueueBoundUnderConcurrency: pushers racing on two replicas (two
// stores on one database) never get more records admitted than
// limits.push_queue, and every record admitted is stored.
func TestPushQueueBoundUnderConcurrency(t *testing.T) {
	const limit, size, pushers, tries = 40, 3, 8, 10
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			dsn := storetest.DSN(t, driver)
			var runners []*tasks.Runner
			for range 2 {
				s, err := store.Open(ctx, driver, dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				if _, err := s.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				r := pushRunner(t, s)
				r.Config.Limits.PushQueue = limit
				runners = append(runners, r)
			}
			var admitted, refused atomic.Int64
			var wg sync.WaitGroup
			for i := range 2 * pushers {
				r := runners[i%2]
				wg.Go(func() {
					for n := range tries {
						var rec []string
						for k := range size {
							rec = append(rec, fmt.Sprintf(`{"uid":"%d-%d-%d","username":"u%d-%d-%d"}`, i, n, k, i, n, k))
						}
						p, err := push.Decode([]byte(`{"dataType":"user","records":[` + strings.Join(rec, ",") + `]}`))
						if err != nil {
							t.Error(err)
							return
						}
						var busy *tasks.BusyError
						_, err = r.AcceptPush(ctx, "api", p)
						switch {
						case err == nil:
							admitted.Add(size)
						case errors.As(err, &busy):
							refused.Add(1)
						default:
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			waiting, err := runners[0].Store.WaitingPushRecords(ctx, "api")
			if err != nil {
				t.Fatal(err)
			}
			if admitted.Load() > limit || int64(waiting) != admitted.Load() {
				t.Fatalf("%d records admitted (%d stored, %d pushes refused); limits.push_queue is %d", admitted.Load(), waiting, refused.Load(), limit)
			}
			if want := limit / size * size; admitted.Load() != int64(want) {
				t.Fatalf("%d records admitted, want %d: the queue was not filled", admitted.Load(), want)
			}
		})
	}
}

// TestPushQueueReleasedOnFailure: a push that fails while it is stored
// (here its raw record cannot be written) leaves none of its records
// counted against limits.push_queue.
func TestPushQueueReleasedOnFailure(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s)
		r.Config.Limits.PushQueue = 5
		accept := func(uids ...string) error {
			var rec []string
			for _, u := range uids {
				rec = append(rec, fmt.Sprintf(`{"uid":%q,"username":%q}`, u, u))
			}
			p, err := push.Decode([]byte(`{"dataType":"user","records":[` + strings.Join(rec, ",") + `]}`))
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.AcceptPush(t.Context(), "api", p)
			return err
		}
		// A file where the raw record folder belongs makes keeping it fail.
		raw := filepath.Join(r.Config.Log.Dir, "user-data-sync", "api")
		if err := os.MkdirAll(filepath.Dir(raw), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, raw, "in the way")
		if err := accept("f1", "f2", "f3"); err == nil || !strings.Contains(err.Error(), "keep the raw record") {
			t.Fatalf("accept with an unwritable raw record folder: %v", err)
		}
		if err := os.Remove(raw); err != nil {
			t.Fatal(err)
		}
		if err := accept("a1", "a2", "a3", "a4", "a5"); err != nil {
			t.Fatalf("a full queue's worth after a failed push: %v", err)
		}
		var busy *tasks.BusyError
		if err := accept("a6"); !errors.As(err, &busy) || busy.Waiting != 5 {
			t.Fatalf("a push beyond the limit: %v", err)
		}
	})
}
