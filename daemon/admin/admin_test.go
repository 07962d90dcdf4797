package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/admin"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

func TestAuthenticationAndRouting(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, "")

		for _, c := range []struct {
			name, header, challenge string
		}{
			{"no token", "", `Bearer realm="roster"`},
			{"another scheme", "Basic " + adminToken, `Bearer realm="roster"`},
			{"an unknown token", "Bearer not-a-token", `Bearer realm="roster", error="invalid_token"`},
			{"a token's hash as token", "Bearer " + hashOf(adminToken), `Bearer realm="roster", error="invalid_token"`},
		} {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/sources", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var body map[string]string
			if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != c.challenge ||
				resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &body) != nil || body["error"] == "" {
				t.Errorf("%s: %d %q %s", c.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), b)
			}
		}

		r := e.do("GET", "/api/v1/sources", readerToken, nil)
		if r.code != 403 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope", scope="admin"`) ||
			!strings.Contains(r.errorMessage(t), `"reader" lacks the scope admin`) {
			t.Errorf("a token without the scope admin: %s %v", r, r.header)
		}
		e.admin(200, "GET", "/api/v1/sources", nil)

		// Every path answers JSON: unknown ones 404, other methods 405.
		if r := e.do("GET", "/api/v1/nothing", "", nil); r.code != 404 || !strings.Contains(r.errorMessage(t), "/api/v1/nothing") {
			t.Errorf("unknown path: %s", r)
		}
		for _, c := range []struct{ method, path, allow string }{
			{"DELETE", "/api/v1/sources", "GET, HEAD"},
			{"GET", "/api/v1/sources/staff/sync", "POST"},
			{"POST", "/api/v1/sources/staff/file", "PUT"},
			{"PUT", "/api/v1/tasks/1", "GET, HEAD"},
			{"GET", "/api/v1/tasks/1/approve", "POST"},
			{"PUT", "/api/v1/users/x", "GET, HEAD, PATCH"},
		} {
			r := e.do(c.method, c.path, adminToken, nil)
			if r.code != 405 || r.header.Get("Allow") != c.allow || r.errorMessage(t) == "" {
				t.Errorf("%s %s = %s, Allow %q; want 405, Allow %q", c.method, c.path, r, r.header.Get("Allow"), c.allow)
			}
		}

		// Tokens come from the configuration in force: a reload that
		// drops the admin token locks it out at once.
		reloaded := strings.Replace(configYAML(""), "scopes: [admin]", "scopes: [scim:read]", 1)
		e.write("roster.yaml", reloaded)
		if err := e.d.Reload(context.Background(), func() (*config.Config, error) { return config.Load(e.path("roster.yaml")) }); err != nil {
			t.Fatal(err)
		}
		if r := e.do("GET", "/api/v1/sources", adminToken, nil); r.code != 403 {
			t.Errorf("after a reload that took the scope away: %s", r)
		}
	})
}

func TestListSources(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, "    schedule: \"@every 1h\"\n")
		var got struct {
			Items []struct {
				Name, Type, Schedule, State string
				Enabled, Running            bool
				LastTask                    json.RawMessage `json:"last_task"`
				LastSuccessAt               *time.Time      `json:"last_success_at"`
			}
			Total int
		}
		r := e.admin(200, "GET", "/api/v1/sources", nil)
		r.decode(t, &got)
		if got.Total != 3 || len(got.Items) != 3 {
			t.Fatalf("sources: %s", r)
		}
		staff, api, off := got.Items[0], got.Items[1], got.Items[2]
		if staff.Name != "staff" || staff.Type != "csv" || !staff.Enabled || staff.Schedule != "@every 1h" ||
			staff.State != "succeeded" || staff.Running || staff.LastSuccessAt == nil {
			t.Errorf("staff: %+v", staff)
		}
		if last := decodeTask(t, staff.LastTask); last.Source != "staff" || last.Status != store.StatusSucceeded || last.Counts["created"] != 20 {
			t.Errorf("staff's last task: %+v", last)
		}
		if api.Name != "api" || api.Type != "push" || api.State != "never synced" || string(api.LastTask) != "null" || api.LastSuccessAt != nil {
			t.Errorf("api: %+v", api)
		}
		if off.Name != "off" || off.Enabled || off.State != "disabled" {
			t.Errorf("off: %+v", off)
		}
		for _, key := range []string{"name", "type", "enabled", "schedule", "state", "running", "last_task", "last_success_at"} {
			if !strings.Contains(string(r.body), `"`+key+`":`) {
				t.Errorf("a source lacks %q: %s", key, r.body)
			}
		}
	})
}

func TestSync(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, "")
		before := len(e.tasks())

		// A dry run shows the plan person by person and writes nothing.
		e.write("staff.csv", people(21)[len(people(1)):]) // people 2..21
		var plan struct {
			Source  string
			DryRun  bool `json:"dry_run"`
			Counts  reconcile.Counts
			Changes []reconcile.Change
			Hold    string
			Errors  []fieldError
		}
		r := e.admin(200, "POST", "/api/v1/sources/staff/sync?dry_run=true", nil)
		r.decode(t, &plan)
		if !plan.DryRun || plan.Source != "staff" || plan.Counts.Created != 1 || plan.Counts.Deactivated != 1 ||
			plan.Counts.Unchanged != 19 || len(plan.Changes) != 2 || len(plan.Errors) != 0 {
			t.Fatalf("dry run: %s", r)
		}
		for _, key := range []string{"counts", "changes", "warnings", "hold", "errors", "groups_created", "groups_deleted"} {
			if _, ok := r.json(t)[key]; !ok {
				t.Errorf("the dry run lacks %q: %s", key, r.body)
			}
		}
		// The same through the body, with a string boolean.
		e.admin(200, "POST", "/api/v1/sources/staff/sync", strings.NewReader(`{"dry_run": "true"}`)).decode(t, &plan)
		if !plan.DryRun || plan.Counts.Created != 1 {
			t.Fatalf("dry run through the body: %+v", plan)
		}
		if n := len(e.tasks()); n != before {
			t.Fatalf("dry runs made tasks: %d → %d", before, n)
		}
		// An invalid file: the dry run lists every error.
		e.write("staff.csv", "1,Ann,,ann,bad-email,,\n")
		e.admin(200, "POST", "/api/v1/sources/staff/sync?dry_run=1", nil).decode(t, &plan)
		if len(plan.Errors) != 2 || plan.Errors[1].Line != 1 || plan.Errors[1].Column != 5 || plan.Errors[1].Field != "email" {
			t.Fatalf("dry run of an invalid file: %+v", plan.Errors)
		}

		// A sync goes through the queue: 202 with the task as recorded.
		e.write("staff.csv", people(21))
		r = e.admin(202, "POST", "/api/v1/sources/staff/sync", nil)
		tk := decodeTask(t, r.body)
		if tk.Source != "staff" || tk.Trigger != "manual" || tk.ID == 0 {
			t.Fatalf("sync: %s", r)
		}
		if done := e.waitTask(tk.ID); done.Status != store.StatusSucceeded || done.Counts["created"] != 1 || done.Counts["unchanged"] != 20 {
			t.Fatalf("the sync ended as %+v", done)
		}
		// The file is unchanged: skipped, unless forced.
		if tk := decodeTask(t, e.admin(202, "POST", "/api/v1/sources/staff/sync", nil).body); e.waitTask(tk.ID).Status != store.StatusSkipped {
			t.Fatalf("a sync of an unchanged file: %+v", tk)
		}
		tk = decodeTask(t, e.admin(202, "POST", "/api/v1/sources/staff/sync", strings.NewReader(`{"force": true}`)).body)
		if done := e.waitTask(tk.ID); done.Status != store.StatusSucceeded || done.Counts["unchanged"] != 21 {
			t.Fatalf("a forced sync of an unchanged file: %+v", done)
		}

		// Errors.
		for _, c := range []struct {
			path, body string
			code       int
			says       string
		}{
			{"/api/v1/sources/nope/sync", "", 404, `no source "nope"`},
			{"/api/v1/sources/off/sync", "", 409, "disabled"},
			{"/api/v1/sources/api/sync", "", 400, "push source"},
			{"/api/v1/sources/staff/sync?dry_run=maybe", "", 400, `dry_run="maybe"`},
			{"/api/v1/sources/staff/sync", `{"dry_run": 2}`, 400, "not a boolean"},
			{"/api/v1/sources/staff/sync", `{"dryrun": true}`, 400, "unknown field"},
			{"/api/v1/sources/staff/sync", `{"force": true`, 400, "not valid JSON"},
			{"/api/v1/sources/staff/sync", `{"force": "` + strings.Repeat("x", 2000) + `"}`, 413, "limits.request_body (1KiB)"},
		} {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			r := e.do("POST", c.path, adminToken, body)
			if r.code != c.code || !strings.Contains(r.errorMessage(t), c.says) {
				t.Errorf("POST %s %s = %s; want %d saying %q", c.path, c.body, r, c.code, c.says)
			}
		}
	})
}

// TestSyncWhileBusy: a sync asked for while a task of the source runs is
// queued, once, and runs when the task ends.
func TestSyncWhileBusy(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, "", func(o *admin.Options) { o.StartWait = 300 * time.Millisecond })
		before := len(e.tasks())
		// The test holds the source's lock, as a `roster sync` would.
		unlock, err := st.TryLockSource(context.Background(), "staff")
		if err != nil {
			t.Fatal(err)
		}
		e.write("staff.csv", people(22))
		for range 3 {
			r := e.admin(202, "POST", "/api/v1/sources/staff/sync", nil)
			if m := r.json(t); m["queued"] != true || m["source"] != "staff" || !strings.Contains(m["message"].(string), "/api/v1/tasks?source=staff") {
				t.Fatalf("a sync while the source is busy: %s", r)
			}
		}
		unlock()
		eventually(t, 30*time.Second, "the queued syncs did not run", func() bool {
			ts := e.tasks()
			return len(ts) == before+2 && ts[0].Status != store.StatusRunning
		})
		ts := e.tasks()
		if ts[1].Status != store.StatusSucceeded || ts[1].Counts["created"] != 2 || ts[0].Status != store.StatusSkipped {
			t.Fatalf("the task and its one follow-up: %+v, %+v", ts[1], ts[0])
		}
	})
}

func TestUpload(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, "    extra_columns: [floor]\n")
		original := e.read("staff.csv")
		before := len(e.tasks())

		// An invalid file: 400 with every error; nothing changes.
		bad := "1,Ann,,ann,bad-email,,\n2,Bob,B,bob,,,\n2,Carl,C,carl,,,short\n"
		r := e.admin(400, "PUT", "/api/v1/sources/staff/file", strings.NewReader(bad))
		var refused struct {
			Error  string
			Errors []fieldError
		}
		r.decode(t, &refused)
		if refused.Error != "the file is invalid: 4 errors; nothing was changed" || len(refused.Errors) != 4 {
			t.Fatalf("an invalid upload: %s", r)
		}
		want := []fieldError{
			{1, 3, "last_name", "line 1, column 3 (last_name): a value is required"},
			{1, 5, "email", `line 1, column 5 (email): "bad-email" is not a valid e-mail address`},
			{3, 1, "id", `line 3, column 1 (id): "2" is already used on line 2`},
			{3, 7, "password", "line 3, column 7 (password): the password is shorter than 8 characters"},
		}
		if !slices.Equal(refused.Errors, want) {
			t.Fatalf("errors:\n%+v\nwant\n%+v", refused.Errors, want)
		}
		if e.read("staff.csv") != original {
			t.Fatal("an invalid upload changed the source's file")
		}

		// A cell of an extra column is checked by its attribute's type:
		// floor (column 8) is a custom integer.
		r = e.admin(400, "PUT", "/api/v1/sources/staff/file", strings.NewReader(original+"00021,Given21,Family21,user21,,,,third\n"))
		refused.Errors = nil
		r.decode(t, &refused)
		want = []fieldError{{21, 8, "floor", `line 21, column 8 (floor): "third" is not an integer between -2^53 and 2^53`}}
		if refused.Error != "the file is invalid: 1 error; nothing was changed" || !slices.Equal(refused.Errors, want) {
			t.Fatalf("an upload with a non-integer floor: %s", r)
		}
		if e.read("staff.csv") != original {
			t.Fatal("an upload with a non-integer floor changed the source's file")
		}

		// Too large, announced or not: 413, nothing changes.
		big := people(200) // > push_body (8KiB)
		if r := e.admin(413, "PUT", "/api/v1/sources/staff/file", strings.NewReader(big)); !strings.Contains(r.errorMessage(t), "limits.push_body (8KiB)") {
			t.Errorf("an oversized upload: %s", r)
		}
		// Without a Content-Length (chunked), the limit stops the reading.
		if r := e.admin(413, "PUT", "/api/v1/sources/staff/file", io.MultiReader(strings.NewReader(big))); !strings.Contains(r.errorMessage(t), "limits.push_body (8KiB)") {
			t.Errorf("an oversized chunked upload: %s", r)
		}
		if e.read("staff.csv") != original {
			t.Fatal("an oversized upload changed the source's file")
		}
		if n := len(e.tasks()); n != before {
			t.Fatalf("refused uploads made tasks: %d → %d", before, n)
		}

		// A valid file larger than request_body (1KiB): it replaces the
		// file and is synced.
		valid := people(25)
		r = e.admin(202, "PUT", "/api/v1/sources/staff/file", strings.NewReader(valid))
		tk := decodeTask(t, r.body)
		if tk.Trigger != "manual" {
			t.Fatalf("the upload's task: %s", r)
		}
		if e.read("staff.csv") != valid {
			t.Fatal("a valid upload did not replace the source's file")
		}
		if done := e.waitTask(tk.ID); done.Status != store.StatusSucceeded || done.Counts["created"] != 5 || done.Counts["unchanged"] != 20 {
			t.Fatalf("the upload's sync: %+v", done)
		}

		for _, c := range []struct {
			path string
			code int
		}{{"/api/v1/sources/nope/file", 404}, {"/api/v1/sources/api/file", 400}, {"/api/v1/sources/off/file", 409}} {
			if r := e.do("PUT", c.path, adminToken, strings.NewReader(valid)); r.code != c.code {
				t.Errorf("PUT %s = %s, want %d", c.path, r, c.code)
			}
		}
	})
}

func TestTasks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, "")
		// Tasks: 1 succeeded (newEnv), 2 failed, 3 skipped... then held.
		e.write("staff.csv", "1,Ann,,ann,,,\n")
		failed := e.sync(store.StatusFailed)
		e.write("staff.csv", people(20))
		skipped := e.sync(store.StatusSkipped)

		var list struct {
			Items         []json.RawMessage
			Total         int
			Limit, Offset int
		}
		e.admin(200, "GET", "/api/v1/tasks", nil).decode(t, &list)
		if list.Total != 3 || len(list.Items) != 3 || list.Limit != 50 || list.Offset != 0 || decodeTask(t, list.Items[0]).ID != skipped.ID {
			t.Fatalf("tasks: %+v", list)
		}
		e.admin(200, "GET", "/api/v1/tasks?status=failed&source=staff", nil).decode(t, &list)
		if list.Total != 1 || decodeTask(t, list.Items[0]).ID != failed.ID {
			t.Fatalf("failed tasks: %+v", list)
		}
		e.admin(200, "GET", "/api/v1/tasks?limit=1&offset=1", nil).decode(t, &list)
		if list.Total != 3 || len(list.Items) != 1 || list.Limit != 1 || list.Offset != 1 || decodeTask(t, list.Items[0]).ID != failed.ID {
			t.Fatalf("page 2 of 1: %+v", list)
		}
		e.admin(200, "GET", "/api/v1/tasks?source=api", nil).decode(t, &list)
		if list.Total != 0 || list.Items == nil {
			t.Fatalf("no tasks: %+v", list)
		}
		for _, q := range []string{"limit=0", "limit=501", "limit=x", "offset=-1", "offset=1.5", "status=done"} {
			if r := e.do("GET", "/api/v1/tasks?"+q, adminToken, nil); r.code != 400 || r.errorMessage(t) == "" {
				t.Errorf("GET /api/v1/tasks?%s = %s, want 400", q, r)
			}
		}

		// One task, with every error of a failed one.
		got := decodeTask(t, e.admin(200, "GET", fmt.Sprintf("/api/v1/tasks/%d", failed.ID), nil).body)
		if got.Status != store.StatusFailed || len(got.Errors) != 1 || got.Errors[0].Field != "last_name" {
			t.Fatalf("the failed task: %+v", got)
		}
		if r := e.do("GET", "/api/v1/tasks/999999", adminToken, nil); r.code != 404 || !strings.Contains(r.errorMessage(t), "no task 999999") {
			t.Errorf("an unknown task: %s", r)
		}
		if r := e.do("GET", "/api/v1/tasks/seven", adminToken, nil); r.code != 400 {
			t.Errorf("a task id that is no number: %s", r)
		}

		// Actions in the wrong status are 409; on unknown tasks 404.
		for _, c := range []struct {
			path string
			code int
		}{
			{fmt.Sprintf("/api/v1/tasks/%d/retry", skipped.ID), 409},
			{fmt.Sprintf("/api/v1/tasks/%d/approve", failed.ID), 409},
			{fmt.Sprintf("/api/v1/tasks/%d/reject", skipped.ID), 409},
			{"/api/v1/tasks/999999/retry", 404},
			{"/api/v1/tasks/999999/approve", 404},
		} {
			if r := e.do("POST", c.path, adminToken, nil); r.code != c.code || r.errorMessage(t) == "" {
				t.Errorf("POST %s = %s, want %d", c.path, r, c.code)
			}
		}
		r := e.do("POST", fmt.Sprintf("/api/v1/tasks/%d/retry", skipped.ID), adminToken, nil)
		if msg := r.errorMessage(t); msg != fmt.Sprintf("task %d is skipped; only failed tasks can be retried", skipped.ID) {
			t.Errorf("retry of a skipped task says %q", msg)
		}

		// Retry of the failed task: it read an invalid file, so the retry
		// reads the source's file afresh.
		retried := decodeTask(t, e.admin(200, "POST", fmt.Sprintf("/api/v1/tasks/%d/retry", failed.ID), nil).body)
		if retried.Status != store.StatusSucceeded || retried.RetryOf == nil || *retried.RetryOf != failed.ID || retried.Trigger != "retry" {
			t.Fatalf("the retry: %+v", retried)
		}

		// Held tasks: approve applies the plan, reject discards it.
		e.write("staff.csv", people(10))
		held := e.sync(store.StatusHeld)
		got = decodeTask(t, e.admin(200, "GET", fmt.Sprintf("/api/v1/tasks/%d", held.ID), nil).body)
		if got.Status != store.StatusHeld || !strings.Contains(got.Hold, "max_removals") || len(got.Removals) != 10 ||
			got.Removals[0].Action != "deactivate" || got.Removals[0].After.ExternalID != "00011" {
			t.Fatalf("the held task: %+v", got)
		}
		approved := decodeTask(t, e.admin(200, "POST", fmt.Sprintf("/api/v1/tasks/%d/approve", held.ID), nil).body)
		if approved.ID != held.ID || approved.Status != store.StatusSucceeded || approved.Counts["deactivated"] != 10 {
			t.Fatalf("the approved task: %+v", approved)
		}
		if u := e.user("staff", "00011"); u.Active {
			t.Fatal("the approved plan was not applied")
		}
		if r := e.do("POST", fmt.Sprintf("/api/v1/tasks/%d/approve", held.ID), adminToken, nil); r.code != 409 {
			t.Errorf("a second approval: %s", r)
		}
		e.write("staff.csv", "")
		held = e.sync(store.StatusHeld)
		rejected := decodeTask(t, e.admin(200, "POST", fmt.Sprintf("/api/v1/tasks/%d/reject", held.ID), nil).body)
		if rejected.Status != store.StatusRejected || !strings.Contains(rejected.Hold, "no records") {
			t.Fatalf("the rejected task: %+v", rejected)
		}
		if u := e.user("staff", "00001"); !u.Active {
			t.Fatal("the rejected plan was applied")
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if want := []int64{retried.ID, approved.ID, rejected.ID}; !slices.Equal(e.finished, want) {
			t.Errorf("Options.Finished heard of tasks %v, want %v", e.finished, want)
		}
	})
}

func TestGetUser(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, "")
		u := e.user("staff", "00003")
		groups, _, err := st.ListGroups(context.Background(), store.GroupFilter{Source: "staff", Limit: 10})
		if err != nil || len(groups) != 1 {
			t.Fatalf("staff's groups: %v %+v", err, groups)
		}
		var got struct {
			Schemas     []string
			ID          string
			ExternalID  string
			UserName    string
			DisplayName string
			Name        struct{ GivenName, FamilyName string }
			Active      bool
			Emails      []struct {
				Value, Type string
				Primary     bool
			}
			Groups []struct{ Value, Display string }
			Source string
			State  string
			Reason string `json:"stateReason"`
		}
		e.admin(200, "GET", "/api/v1/users/"+u.ID, nil).decode(t, &got)
		if got.ID != u.ID || got.ExternalID != "00003" || got.UserName != "user3" ||
			got.Name.GivenName != "Given3" || got.Name.FamilyName != "Family3" || !got.Active ||
			len(got.Emails) != 1 || got.Emails[0].Value != "user3@example.com" || !got.Emails[0].Primary ||
			len(got.Groups) != 1 || got.Groups[0].Value != groups[0].ID || got.Groups[0].Display != "Team" ||
			got.Source != "staff" || got.State != "active" || got.Reason != "" || len(got.Schemas) == 0 {
			t.Fatalf("GET the user: %+v", got)
		}

		// The operator's choice shows, with its reason.
		e.admin(200, "PATCH", "/api/v1/users/"+u.ID, strings.NewReader(`{"active": false}`))
		e.admin(200, "GET", "/api/v1/users/"+u.ID, nil).decode(t, &got)
		if got.Active || got.State != "inactive" || got.Reason != reconcile.ReasonAdmin {
			t.Fatalf("GET after PATCH: %+v", got)
		}

		if r := e.do("GET", "/api/v1/users/no-such-user", adminToken, nil); r.code != 404 || !strings.Contains(r.errorMessage(t), `no user "no-such-user"`) {
			t.Errorf("an unknown id: %s", r)
		}
		if r := e.do("GET", "/api/v1/users/"+u.ID, readerToken, nil); r.code != 403 {
			t.Errorf("a token without the scope admin: %s", r)
		}
	})
}

func TestPatchUser(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, "")
		u := e.user("staff", "00003")
		path := "/api/v1/users/" + u.ID
		var got map[string]any
		e.admin(200, "PATCH", path, strings.NewReader(`{"active": false}`)).decode(t, &got)
		want := map[string]any{"id": u.ID, "userName": "user3", "source": "staff", "active": false, "state": "inactive"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("PATCH active=false: %v, want %v", got, want)
		}
		after := e.user("staff", "00003")
		if after.StateReason != reconcile.ReasonAdmin || after.Version != u.Version+1 {
			t.Fatalf("the user after PATCH: %+v", after)
		}

		// The next sync of the source keeps the operator's choice.
		e.write("staff.csv", strings.ReplaceAll(people(20), "user3@example.com", "third@example.com"))
		tk := decodeTask(t, e.admin(202, "POST", "/api/v1/sources/staff/sync", nil).body)
		if done := e.waitTask(tk.ID); done.Status != store.StatusSucceeded || done.Counts["updated"] != 1 {
			t.Fatalf("the next sync: %+v", done)
		}
		if now := e.user("staff", "00003"); now.Active || now.State != "inactive" || now.StateReason != reconcile.ReasonAdmin {
			t.Fatalf("the next sync changed the operator's choice: %+v", now)
		}

		// String booleans, in any case, as identity platforms send them.
		e.admin(200, "PATCH", path, strings.NewReader(`{"active": "True"}`)).decode(t, &got)
		if got["active"] != true || got["state"] != "active" {
			t.Fatalf(`PATCH active="True": %v`, got)
		}
		e.admin(200, "PATCH", path, strings.NewReader(`{"active":"false"}`)).decode(t, &got)
		if got["active"] != false {
			t.Fatalf(`PATCH active="false": %v`, got)
		}

		// The revision bump makes a plan held before unapprovable.
		e.write("staff.csv", people(10))
		held := e.sync(store.StatusHeld)
		e.admin(200, "PATCH", "/api/v1/users/"+e.user("staff", "00001").ID, strings.NewReader(`{"active": false}`))
		approved := decodeTask(t, e.admin(200, "POST", fmt.Sprintf("/api/v1/tasks/%d/approve", held.ID), nil).body)
		if approved.Status != store.StatusFailed || len(approved.Errors) != 1 ||
			!strings.Contains(approved.Errors[0].Message, fmt.Sprintf("changed after task %d was held", held.ID)) {
			t.Fatalf("approve after an operator's change: %+v", approved)
		}
		if e.user("staff", "00011").Active != true {
			t.Fatal("the out-of-date plan was applied")
		}

		// Tombstones, unknown ids and bad bodies.
		e.write("roster.yaml", configYAML("    orphans: delete\n    max_removals: 100%\n"))
		if err := e.d.Reload(context.Background(), func() (*config.Config, error) { return config.Load(e.path("roster.yaml")) }); err != nil {
			t.Fatal(err)
		}
		e.sync(store.StatusSucceeded) // people 11..20 deleted
		for _, c := range []struct {
			id, body string
			code     int
			says     string
		}{
			{e.user("staff", "00015").ID, `{"active": true}`, 404, "no user"},
			{"no-such-user", `{"active": true}`, 404, `no user "no-such-user"`},
			{u.ID, `{}`, 400, `{"active": false}`},
			{u.ID, ``, 400, `{"active": false}`},
			{u.ID, `{"active": 1}`, 400, "not a boolean"},
			{u.ID, `{"active": "yes"}`, 400, "not a boolean"},
			{u.ID, `{"active": true, "userName": "x"}`, 400, "unknown field"},
			{u.ID, `[]`, 400, "not valid JSON"},
		} {
			r := e.do("PATCH", "/api/v1/users/"+c.id, adminToken, strings.NewReader(c.body))
			if r.code != c.code || !strings.Contains(r.errorMessage(t), c.says) {
				t.Errorf("PATCH %s %s = %s; want %d saying %q", c.id, c.body, r, c.code, c.says)
			}
		}
	})
}

// TestWithoutQueue: without a task queue, syncs and uploads answer 503 and
// leave the file alone; everything else works.
func TestWithoutQueue(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newEnv(t, st, "", func(o *admin.Options) { o.Queue = nil })
	original := e.read("staff.csv")
	if r := e.do("POST", "/api/v1/sources/staff/sync", adminToken, nil); r.code != 503 {
		t.Errorf("sync without a queue: %s", r)
	}
	if r := e.do("PUT", "/api/v1/sources/staff/file", adminToken, strings.NewReader(people(3))); r.code != 503 || e.read("staff.csv") != original {
		t.Errorf("upload without a queue: %s", r)
	}
	e.admin(200, "POST", "/api/v1/sources/staff/sync?dry_run=true", nil)
	e.admin(200, "GET", "/api/v1/tasks", nil)
}
