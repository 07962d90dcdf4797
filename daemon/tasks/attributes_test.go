package tasks_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/filter"
)

// TestExtraColumns syncs a csv source whose columns 8 onward fill
// attribute paths (SPEC §2.1), whole and streamed, on both stores: the
// values reach SCIM, an unchanged file changes nothing, one changed cell
// updates one user, and a bad cell fails the task naming its column.
func TestExtraColumns(t *testing.T) {
	extra := `extra_columns: [title, "addresses[type eq \"work\"].locality", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter", "emails[type eq \"work\"].value", displayName]`
	people := func(title func(i int) string) string {
		var b strings.Builder
		for i := range 50 {
			fmt.Fprintf(&b, "%03d,Given%d,Family%d,user%d,,Team%d,,%s,City %d,CC-%d,mail%d@example.com,\n",
				i, i, i, i, i%3, title(i), i%4, i%5, i)
		}
		return b.String()
	}
	for _, driver := range storetest.Drivers {
		for _, streamed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/streamed=%v", driver, streamed), func(t *testing.T) {
				dir := t.TempDir()
				file := filepath.Join(dir, "staff.csv")
				s := storetest.Open(t, driver)
				ctx := context.Background()
				sync := func(content string) *store.Task {
					t.Helper()
					writeFile(t, file, content)
					r := runner(t, s, dir, file, extra)
					r.Config.Limits.StreamFrom = 1 << 40
					if streamed {
						r.Config.Limits.StreamFrom = 0
					}
					res, err := r.Sync(ctx, "staff", tasks.Options{Force: true})
					if err != nil {
						t.Fatal(err)
					}
					return res.Task
				}
				task := sync(people(func(int) string { return "Engineer" }))
				if task.Status != store.StatusSucceeded || counts(t, task).Created != 50 {
					t.Fatalf("first sync: %s %+v %v", task.Status, task.Counts, task.Errors)
				}
				page, err := s.SCIM().Users(ctx, scim.Query{Count: 10, Include: scim.All, Filter: &filter.Compare{
					Attr: filter.AttrPath{Name: "userName"}, Op: filter.Eq, Value: filter.Value{Kind: filter.KindString, Str: "user7"}}})
				if err != nil || len(page.Resources) != 1 {
					t.Fatalf("user7: %v %v", page, err)
				}
				u := page.Resources[0]
				if u.Title != "Engineer" || len(u.Addresses) != 1 || u.Addresses[0].Locality != "City 3" || u.Addresses[0].Type != "work" ||
					u.Enterprise == nil || u.Enterprise.CostCenter != "CC-2" || u.DisplayName != "" && u.DisplayName != "Given7 Family7" ||
					len(u.Emails) != 1 || u.Emails[0].Value != "mail7@example.com" {
					t.Errorf("user7 as SCIM serves it: %+v %+v %+v %+v", u, u.Addresses, u.Enterprise, u.Emails)
				}
				if task := sync(people(func(int) string { return "Engineer" })); counts(t, task).Unchanged != 50 || counts(t, task).Updated != 0 {
					t.Errorf("unchanged file: %+v", task.Counts)
				}
				task = sync(people(func(i int) string {
					if i == 7 {
						return "Lead"
					}
					return "Engineer"
				}))
				if counts(t, task).Updated != 1 || counts(t, task).Unchanged != 49 {
					t.Errorf("one title changed: %+v", task.Counts)
				}
				bad := people(func(int) string { return "Engineer" })
				bad = strings.Replace(bad, "mail7@example.com", "mail7@", 1)
				task = sync(bad)
				if task.Status != store.StatusFailed ||
					!strings.Contains(task.Errors, `line 8, column 11 (emails[type eq \"work\"].value): \"mail7@\" is not a valid e-mail address`) {
					t.Errorf("a bad cell: %s %v", task.Status, task.Errors)
				}
			})
		}
	}
}

// TestPushFields pushes users with NocoBase custom fields on both stores:
// the mapped ones reach SCIM and later pushes change only what they name
// (an empty value unassigns); the others are named in the task's warning.
func TestPushFields(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s, `fields: {jobTitle: title, site: "addresses[type eq \"work\"].locality", cc: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"}`)
		ctx := context.Background()
		user := func(login string) *scim.User {
			t.Helper()
			page, err := s.SCIM().Users(ctx, scim.Query{Count: 1, Include: scim.All, Filter: &filter.Compare{
				Attr: filter.AttrPath{Name: "userName"}, Op: filter.Eq, Value: filter.Value{Kind: filter.KindString, Str: login}}})
			if err != nil || len(page.Resources) != 1 {
				t.Fatalf("%s: %v %v", login, page, err)
			}
			return page.Resources[0]
		}
		task := pushNow(t, r, `{"dataType":"user","records":[
			{"uid":"1","username":"jweiss","jobTitle":"Engineer","site":"Berlin","cc":4711,"shoe":"42","hobbies":["go"]}]}`)
		if task.Status != store.StatusSucceeded || !strings.Contains(task.Warnings, "hobbies, shoe") {
			t.Fatalf("first push: %s %s %s", task.Status, task.Warnings, task.Errors)
		}
		u := user("jweiss")
		if u.Title != "Engineer" || len(u.Addresses) != 1 || u.Addresses[0].Locality != "Berlin" || u.Enterprise == nil || u.Enterprise.CostCenter != "4711" {
			t.Fatalf("after the first push: %+v %+v %+v", u, u.Addresses, u.Enterprise)
		}
		task = pushNow(t, r, `{"dataType":"user","records":[{"uid":"1","jobTitle":"Lead","site":""}]}`)
		if c := counts(t, task); task.Status != store.StatusSucceeded || c.Updated != 1 {
			t.Fatalf("second push: %s %+v %s", task.Status, c, task.Errors)
		}
		u = user("jweiss")
		if u.Title != "Lead" || len(u.Addresses) != 0 || u.Enterprise == nil || u.Enterprise.CostCenter != "4711" {
			t.Errorf("a delta changes what it names: %+v %+v %+v", u, u.Addresses, u.Enterprise)
		}
		if task = pushNow(t, r, `{"dataType":"user","records":[{"uid":"1","jobTitle":"Lead"}]}`); counts(t, task).Unchanged != 1 {
			t.Errorf("the same value again: %+v", counts(t, task))
		}
	})
}

// TestPushDepartmentFields pushes departments with NocoBase custom fields
// on both stores: groups have no attributes for them, so the task names
// them in a warning, and the raw record keeps them as they came.
func TestPushDepartmentFields(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s, `fields: {jobTitle: title}`)
		const body = `{"dataType":"department","records":[
			{"uid":"1","title":"Zentrale","costCenter":"CC-1"},
			{"uid":"2","title":"Entwicklung","parentUid":"1","site":{"city":"Berlin"},"costCenter":"CC-2","note":null}]}`
		task := pushNow(t, r, body)
		const warning = "custom fields of departments were not stored: groups have no attributes to hold them (they are in the raw record): costCenter, site"
		if task.Status != store.StatusSucceeded || !strings.Contains(task.Warnings, warning) || strings.Contains(task.Warnings, "note") {
			t.Fatalf("push: %s, warnings %s, errors %s", task.Status, task.Warnings, task.Errors)
		}
		raw, err := os.ReadFile(filepath.Join(r.Config.Dir, task.RawRecord))
		if err != nil || string(raw) != body {
			t.Fatalf("the raw record %s (%v):\n%s\nwant the body", task.RawRecord, err, raw)
		}
		groups, total, err := s.ListGroups(context.Background(), store.GroupFilter{Source: "api", Limit: 10})
		if err != nil || total != 2 {
			t.Fatalf("the departments: %v %+v", err, groups)
		}
		// Without custom fields, no warning.
		task = pushNow(t, r, `{"dataType":"department","records":[{"uid":"3","title":"Vertrieb","parentUid":"1"}]}`)
		if task.Status != store.StatusSucceeded || strings.Contains(task.Warnings, "custom fields") {
			t.Errorf("a push without custom fields: %s %s", task.Status, task.Warnings)
		}
	})
}

// TestCustomColumns fills custom attributes from csv extra_columns, by
// their full path and bare, on both stores, streamed and whole: the values
// are stored by type and filtered as such over SCIM, and a cell that is
// not of the attribute's type fails the task naming the cell.
func TestCustomColumns(t *testing.T) {
	const urn = "urn:example:params:scim:schemas:extension:roster:2.0:User"
	for _, driver := range storetest.Drivers {
		for _, streamed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/streamed=%v", driver, streamed), func(t *testing.T) {
				dir := t.TempDir()
				file := filepath.Join(dir, "staff.csv")
				s := storetest.Open(t, driver)
				ctx := context.Background()
				yaml := "log:\n  dir: log\nattributes:\n  custom_schema: " + urn + "\n  custom:\n" +
					"    - {name: costCentreCode, type: string}\n    - {name: floor, type: integer}\n    - {name: remote, type: boolean}\n" +
					"sources:\n  - name: staff\n    type: csv\n    path: " + file + "\n" +
					"    extra_columns: [\"" + urn + ":costCentreCode\", floor, \"" + urn + ":remote\"]\n"
				writeFile(t, filepath.Join(dir, "roster.yaml"), yaml)
				cfg, err := config.Load(filepath.Join(dir, "roster.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				if err := s.SyncSources(ctx, []string{"staff"}, []string{"csv"}); err != nil {
					t.Fatal(err)
				}
				cfg.Limits.StreamFrom = 1 << 40
				if streamed {
					cfg.Limits.StreamFrom = 0
				}
				r := &tasks.Runner{Store: s, Config: cfg, Log: slog.New(slog.DiscardHandler)}
				var b strings.Builder
				for i := range 20 {
					remote := ""
					if i%2 == 0 {
						remote = "true"
					}
					fmt.Fprintf(&b, "%03d,Given%d,Family%d,user%d,,,,CC-%d,%d,%s\n", i, i, i, i, i%3, i, remote)
				}
				writeFile(t, file, b.String())
				res, err := r.Sync(ctx, "staff", tasks.Options{Force: true})
				if err != nil || res.Task.Status != store.StatusSucceeded {
					t.Fatalf("sync: %v %+v", err, res)
				}
				users := scim.UserType(&cfg.Attributes)
				dir2 := s.SCIMFor(users)
				f, err := filter.Parse(`floor ge 9 and ` + urn + `:remote eq true and costCentreCode eq "cc-0"`)
				if err != nil {
					t.Fatal(err)
				}
				page, err := dir2.Users(ctx, scim.Query{Count: 50, Filter: f, SortBy: urn + ":floor"})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, u := range page.Resources {
					scim.ProjectUser(users, u)
					got = append(got, fmt.Sprintf("%s %v %v", u.UserName, u.Custom.Values["floor"], u.Custom.Values["remote"]))
				}
				// floor 9..19, even (remote), i%3 == 0: 12 and 18, by number.
				if strings.Join(got, " ") != "user12 12 true user18 18 true" {
					t.Errorf("custom values as SCIM filters them: %v", got)
				}
				writeFile(t, file, strings.Replace(b.String(), "CC-1,7,", "CC-1,seven,", 1))
				res, err = r.Sync(ctx, "staff", tasks.Options{Force: true})
				if err != nil {
					t.Fatal(err)
				}
				if res.Task.Status != store.StatusFailed || !strings.Contains(res.Task.Errors, `line 8, column 9 (floor): \"seven\" is not an integer`) {
					t.Errorf("a cell of the wrong type: %s %s", res.Task.Status, res.Task.Errors)
				}
			})
		}
	}
}

// TestPushCustomFields maps NocoBase custom fields to custom attributes on
// both stores: values are stored by type (a JSON number or text), a
// value not of the type fails the push naming the record and the field.
func TestPushCustomFields(t *testing.T) {
	const urn = "urn:ietf:params:scim:schemas:extension:roster:2.0:User" // the default
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s, "fields: {lvl: floor, away: \""+urn+":remote\"}\nattributes:\n  custom: [{name: floor, type: integer}, {name: remote, type: boolean}]")
		ctx := context.Background()
		task := pushNow(t, r, `{"dataType":"user","records":[{"uid":"1","username":"jweiss","lvl":7,"away":"TRUE"}]}`)
		if task.Status != store.StatusSucceeded {
			t.Fatalf("push: %s %s", task.Status, task.Errors)
		}
		users := scim.UserType(&r.Config.Attributes)
		f, err := filter.Parse(`floor gt 6 and remote eq true`)
		if err != nil {
			t.Fatal(err)
		}
		page, err := s.SCIMFor(users).Users(ctx, scim.Query{Count: 5, Filter: f})
		if err != nil || len(page.Resources) != 1 || page.Resources[0].UserName != "jweiss" {
			t.Fatalf("the pushed custom values as SCIM filters them: %+v %v", page, err)
		}
		task = pushNow(t, r, `{"dataType":"user","records":[{"uid":"1","lvl":"seven"}]}`)
		if task.Status != store.StatusFailed || !strings.Contains(task.Errors, `records[0] (lvl): \"seven\" is not an integer`) {
			t.Errorf("a value not of the type: %s %s", task.Status, task.Errors)
		}
	})
}
