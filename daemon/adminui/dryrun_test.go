package adminui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestDryRunAndForce: the page's Dry run shows a sync's plan person by
// person and changes nothing (no task, no user, no fingerprint); Sync
// with force syncs an unchanged input that a plain Sync skips.
func TestDryRunAndForce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		e := newEnv(t, st)
		c := e.login()
		token := e.csrf(c)
		post := func(path string, form url.Values, hdr ...string) response {
			t.Helper()
			if form == nil {
				form = url.Values{}
			}
			form.Set("csrf", token)
			return e.post(path, form, c, hdr...)
		}
		taskCount := func() int {
			t.Helper()
			list, _, err := st.ListTasks(ctx, store.TaskFilter{Source: "staff"})
			if err != nil {
				t.Fatal(err)
			}
			return len(list)
		}
		userCount := func(q string) int64 {
			t.Helper()
			_, n, err := st.ListUsers(ctx, store.UserFilter{Search: q, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		lastTask := func() *store.Task {
			t.Helper()
			last, err := st.LastTask(ctx, "staff")
			if err != nil || last == nil {
				t.Fatalf("the last task: %v %v", last, err)
			}
			return last
		}

		overview := e.get("/admin", c)
		for _, want := range []string{`action="/admin/sources/staff/dryrun"`, `name="force" value="true"`} {
			if !strings.Contains(overview.body, want) {
				t.Errorf("the overview lacks %q", want)
			}
		}
		if strings.Contains(overview.body, `action="/admin/sources/api/dryrun"`) {
			t.Error("a push source has a Dry run button")
		}

		if r := post("/admin/sources/staff/sync", nil); r.code != http.StatusSeeOther {
			t.Fatalf("the first sync: %d %s", r.code, r.body)
		}

		// One created, one updated, one deactivated (under the valve's 5).
		changed := strings.Replace(people(19), "Given3,", "Renamed3,", 1) +
			"00021,Given21,Family21,user21,user21@example.com,Team,\n"
		e.write("staff.csv", changed)
		r := post("/admin/sources/staff/dryrun", nil, "Origin", e.srv.URL)
		if r.code != http.StatusOK {
			t.Fatalf("the dry run: %d %s", r.code, r.body)
		}
		for _, want := range []string{"Dry run of staff", "Nothing was written",
			"created 1, updated 1, unchanged 18, deactivated 1",
			"<td>create</td><td>20</td><td>00021</td><td>user21</td>",
			"<td>update</td><td>3</td><td>00003</td><td>user3</td>", "changes givenName, displayName",
			"<td>deactivate</td><td></td><td>00020</td><td>user20</td>",
			`action="/admin/sources/staff/sync"`} {
			if !strings.Contains(r.body, want) {
				t.Errorf("the dry run's page lacks %q:\n%s", want, r.body)
			}
		}
		if strings.Contains(r.body, "safety valve would hold") {
			t.Errorf("a dry run under the valve says it would hold:\n%s", r.body)
		}
		if n := taskCount(); n != 1 {
			t.Fatalf("the dry run recorded a task: %d tasks", n)
		}
		if n := userCount("user21"); n != 0 {
			t.Fatal("the dry run created user21")
		}
		if n := userCount("Renamed3"); n != 0 {
			t.Fatal("the dry run updated user3")
		}

		// Beyond the valve, the page says so; an invalid input lists its errors.
		e.write("staff.csv", people(2))
		if r := post("/admin/sources/staff/dryrun", nil); r.code != http.StatusOK ||
			!strings.Contains(r.body, "The safety valve would hold this sync") || !strings.Contains(r.body, "deactivated 18") {
			t.Fatalf("a dry run the valve would hold: %d %s", r.code, r.body)
		}
		e.write("staff.csv", people(20)+"21,Bad,Mail,user21,bob@,,\n")
		if r := post("/admin/sources/staff/dryrun", nil); r.code != http.StatusOK ||
			!strings.Contains(r.body, "A sync would fail with 1 error") || !strings.Contains(r.body, "is not a valid e-mail address") {
			t.Fatalf("a dry run of an invalid input: %d %s", r.code, r.body)
		}

		// A long plan is listed up to the page's bound, the counts in full.
		e.write("staff.csv", people(1020))
		if r := post("/admin/sources/staff/dryrun", nil); r.code != http.StatusOK ||
			!strings.Contains(r.body, "created 1000") || !strings.Contains(r.body, "<td>01020</td>") || strings.Contains(r.body, "The first") {
			// people(1020) holds users 1-1020, 20 of them synced: 1000 creates, all listed.
			t.Fatalf("a long dry run: %d %s", r.code, r.body)
		}
		e.write("staff.csv", people(1025))
		if r := post("/admin/sources/staff/dryrun", nil); r.code != http.StatusOK ||
			!strings.Contains(r.body, "created 1005") || !strings.Contains(r.body, "The first 1000 changes of 1005") ||
			strings.Contains(r.body, "<td>01025</td>") {
			t.Fatalf("a dry run beyond the page's bound: %d %s", r.code, r.body)
		}

		for path, want := range map[string]int{
			"/admin/sources/api/dryrun":    http.StatusBadRequest,
			"/admin/sources/nosuch/dryrun": http.StatusNotFound,
		} {
			if r := post(path, nil); r.code != want {
				t.Errorf("POST %s: %d, want %d: %s", path, r.code, want, r.body)
			}
		}
		// The dry run is guarded like every action.
		if r := e.post("/admin/sources/staff/dryrun", url.Values{}, c); r.code != http.StatusForbidden {
			t.Errorf("a dry run without the csrf value: %d", r.code)
		}
		if r := post("/admin/sources/staff/dryrun", nil, "Origin", "https://evil.example"); r.code != http.StatusForbidden {
			t.Errorf("a dry run from another origin: %d", r.code)
		}
		if n := taskCount(); n != 1 {
			t.Fatalf("the dry runs recorded tasks: %d tasks", n)
		}

		// The dry runs left the fingerprint alone: the changed file syncs.
		e.write("staff.csv", changed)
		if r := post("/admin/sources/staff/sync", nil); r.code != http.StatusSeeOther {
			t.Fatalf("the sync after the dry runs: %d %s", r.code, r.body)
		}
		if last := lastTask(); last.Status != store.StatusSucceeded || tasks.ViewOf(last, nil).Counts.Created != 1 {
			t.Fatalf("the sync after the dry runs: %+v", last)
		}

		// Unchanged input: Sync skips it, Sync with force syncs it.
		if r := post("/admin/sources/staff/sync", nil); r.code != http.StatusSeeOther {
			t.Fatalf("a sync of an unchanged input: %d %s", r.code, r.body)
		}
		if last := lastTask(); last.Status != store.StatusSkipped {
			t.Fatalf("a sync of an unchanged input is %s, want skipped", last.Status)
		}
		r = post("/admin/sources/staff/sync", url.Values{"force": {"true"}})
		if r.code != http.StatusSeeOther {
			t.Fatalf("a forced sync: %d %s", r.code, r.body)
		}
		if last := lastTask(); last.Status != store.StatusSucceeded || !last.Force || tasks.ViewOf(last, nil).Counts.Unchanged != 20 {
			t.Fatalf("a forced sync of an unchanged input: %+v", last)
		}
		if page := e.get(r.header.Get("Location"), c); !strings.Contains(page.body, "succeeded") {
			t.Fatalf("the forced sync's page: %s", page.body)
		}
	})
}
