package tasks_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// partsBody is a user payload of n users u-0.. (login user0..), each in
// department d-1 (pushed first) and d-9 (not arrived), user 0 the owner of
// d-1; edit may change the record of user i.
func partsBody(n int, edit func(i int) string) string {
	var b strings.Builder
	b.WriteString(`{"dataType":"user","records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if e := edit(i); e != "" {
			b.WriteString(e)
			continue
		}
		fmt.Fprintf(&b, `{"uid":"u-%d","username":"user%d","email":"user%d@example.com","departments":[{"uid":"d-1","isOwner":%v},"d-9"]}`,
			i, i, i, i == 0)
	}
	b.WriteString(`]}`)
	return b.String()
}

func countRows(t *testing.T, s *store.Store, query string) int {
	t.Helper()
	var n int
	if err := s.DB().Raw(query).Row().Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPushInParts: a user payload larger than a part is planned and
// written a part at a time in one transaction. A record in error in the
// last part leaves nothing of the parts before it and is reported as a
// plan computed whole reports it; without it, every part is written with
// its memberships, pending memberships and owners; a login freed by a
// record of the first part is taken by a record of the last.
func TestPushInParts(t *testing.T) {
	const n = 12001 // three parts of 5,000 records
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s)
		if _, err := r.Sync(t.Context(), "staff", tasks.Options{}); err != nil {
			t.Fatal(err)
		}
		pushNow(t, r, `{"dataType":"department","records":[{"uid":"d-1","title":"One"}]}`)
		var progress []int
		r.Progress = func(source, phase string, n int) {
			if source == "api" && phase == "apply" {
				progress = append(progress, n)
			}
		}

		// The last record takes the login of staff's sam: nothing is written.
		task := pushNow(t, r, partsBody(n, func(i int) string {
			if i == n-1 {
				return `{"uid":"x","username":"SAM"}`
			}
			return ""
		}))
		v := tasks.ViewOf(task, nil)
		if task.Status != store.StatusFailed || len(v.Errors) != 1 ||
			!strings.Contains(v.Errors[0].Message, fmt.Sprintf(`records[%d] (username): "SAM" is already used by a user of source "staff"`, n-1)) {
			t.Fatalf("conflict in the last part: %s %+v", task.Status, v.Errors)
		}
		if len(progress) != 2 || progress[1] != 10000 {
			t.Errorf("parts written before the error: %v, want [5000 10000]", progress)
		}
		for _, q := range []string{`SELECT COUNT(*) FROM users WHERE source = 'api'`, `SELECT COUNT(*) FROM pending_members`,
			`SELECT COUNT(*) FROM department_owners`, `SELECT COUNT(*) FROM memberships`} {
			if got := countRows(t, s, q); got != 0 {
				t.Errorf("%s: %d after a failed push, want 0", q, got)
			}
		}

		progress = nil
		task = pushNow(t, r, partsBody(n, func(int) string { return "" }))
		if task.Status != store.StatusSucceeded || counts(t, task).Created != n {
			t.Fatalf("push of %d: %s %s", n, task.Status, task.Counts)
		}
		if len(progress) != 3 || progress[2] != n {
			t.Errorf("parts written: %v, want 3 ending at %d", progress, n)
		}
		for q, want := range map[string]int{
			`SELECT COUNT(*) FROM users WHERE source = 'api' AND state = 'active' AND department = 'One'`: n,
			`SELECT COUNT(*) FROM memberships`:                              n,
			`SELECT COUNT(*) FROM pending_members WHERE dept_uid = 'd-9'`:   n,
			`SELECT COUNT(*) FROM department_owners WHERE dept_uid = 'd-1'`: 1,
		} {
			if got := countRows(t, s, q); got != want {
				t.Errorf("%s: %d, want %d", q, got, want)
			}
		}

		// user5 is renamed by the first record; the last takes the login.
		task = pushNow(t, r, partsBody(n, func(i int) string {
			switch i {
			case 0:
				return `{"uid":"u-5","username":"moved5"}`
			case 5:
				return `{"uid":"u-0","nickname":"Zero"}`
			case n - 1:
				return `{"uid":"new","username":"user5","departments":["d-1"]}`
			}
			return ""
		}))
		c := counts(t, task)
		if task.Status != store.StatusSucceeded || c.Created != 1 || c.Updated != 2 || c.Unchanged != n-3 {
			t.Fatalf("renames across parts: %s %s %s", task.Status, task.Counts, task.Errors)
		}
		users := pushedUsers(t, s)
		if users["moved5"].ExternalID != "u-5" || users["user5"].ExternalID != "new" || users["user0"].DisplayName != "Zero" ||
			len(users) != n+1 {
			t.Errorf("after the renames: moved5 %+v, user5 %+v, user0 %+v, %d users", users["moved5"], users["user5"], users["user0"], len(users))
		}
	})
}
