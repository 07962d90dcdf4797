package tasks_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/filter"
)

// upstream is an HR API on 127.0.0.1 that serves people in pages of two,
// linked by a next-URL field.
type upstream struct {
	mu     sync.Mutex
	people []map[string]any
	broken bool // answer a malformed body
	srv    *httptest.Server
	// sent are the bodies answered, in order.
	sent [][]byte
}

// take returns the bodies sent since the last call.
func (u *upstream) take() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	sent := u.sent
	u.sent = nil
	return sent
}

func newUpstream(t *testing.T, n int) *upstream {
	u := &upstream{}
	for i := 1; i <= n; i++ {
		u.people = append(u.people, map[string]any{"id": i, "login": fmt.Sprintf("p%d", i), "first": "Given", "last": fmt.Sprint(i),
			"mail": fmt.Sprintf("p%d@example.com", i), "teams": []string{"Team"}, "active": true})
	}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer hr-secret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.broken {
			u.sent = append(u.sent, []byte("{\"data\": [{\"id\": 1,"))
			fmt.Fprint(w, `{"data": [{"id": 1,`)
			return
		}
		var page int
		fmt.Sscan(r.URL.Query().Get("page"), &page)
		end := min(2*page+2, len(u.people))
		body := map[string]any{"data": u.people[min(2*page, end):end], "links": map[string]any{}}
		if end < len(u.people) {
			body["links"] = map[string]any{"next": fmt.Sprintf("/people?page=%d", page+1)}
		}
		// Indented, with a trailing line break: the raw record must keep
		// every byte.
		b, _ := json.MarshalIndent(body, "", "\t")
		b = append(b, '\n')
		u.sent = append(u.sent, b)
		w.Write(b)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func httpRunner(t *testing.T, s *store.Store, url string) *tasks.Runner {
	t.Helper()
	return httpRunnerMap(t, s, url, "", "")
}

// httpRunnerMap is httpRunner with more entries of the hr source's map
// (", key: pointer" pairs) and more top-level configuration (such as
// attributes:).
func httpRunnerMap(t *testing.T, s *store.Store, url, moreMap, top string) *tasks.Runner {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "staff.csv"), "s1,Sam,Smith,sam,,,\n")
	yaml := `log:
  dir: log
` + top + `sources:
  - name: staff
    type: csv
    path: staff.csv
  - name: hr
    type: http
    url: ` + url + `/people?page=0
    auth: {bearer: hr-secret}
    records: /data
    next: /links/next
    map: {externalId: /id, userName: /login, givenName: /first, familyName: /last, email: /mail, groups: /teams, active: /active` + moreMap + `}
    retries: 0
`
	path := filepath.Join(dir, "roster.yaml")
	writeFile(t, path, yaml)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SyncSources(t.Context(), []string{"staff", "hr"}, []string{"csv", "http"}); err != nil {
		t.Fatal(err)
	}
	return &tasks.Runner{Store: s, Config: cfg, Log: slog.New(slog.DiscardHandler)}
}

func hrUsers(t *testing.T, s *store.Store) map[string]string {
	t.Helper()
	var rows []struct{ UserName, State string }
	if err := s.DB().Raw(`SELECT user_name, state FROM users WHERE source = 'hr'`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.UserName] = r.State
	}
	return out
}

func TestHTTPSourceSync(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		up := newUpstream(t, 7)
		r := httpRunner(t, s, up.srv.URL)
		sync := func(opt tasks.Options) *tasks.Result {
			t.Helper()
			res, err := r.Sync(t.Context(), "hr", opt)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		if _, err := r.Sync(t.Context(), "staff", tasks.Options{}); err != nil {
			t.Fatal(err)
		}
		up.take()
		res := sync(tasks.Options{})
		if res.Task.Status != store.StatusSucceeded || counts(t, res.Task).Created != 7 || len(hrUsers(t, s)) != 7 {
			t.Fatalf("first sync: %s %s %s", res.Task.Status, res.Task.Counts, res.Task.Errors)
		}
		// The raw record holds the pages byte for byte as they were sent.
		rawPagesAre(t, r, res.Task, up.take())
		if res = sync(tasks.Options{}); res.Task.Status != store.StatusSkipped || res.Task.RawRecord != "" {
			t.Fatalf("unchanged upstream: %s, raw record %q", res.Task.Status, res.Task.RawRecord)
		}
		up.take()

		// A malformed answer fails the task and changes nothing.
		up.mu.Lock()
		up.people = up.people[:6]
		up.broken = true
		up.mu.Unlock()
		res = sync(tasks.Options{})
		if v := tasks.ViewOf(res.Task, nil); res.Task.Status != store.StatusFailed || !strings.Contains(v.Errors[0].Message, "page 1") {
			t.Fatalf("malformed body: %s %+v", res.Task.Status, v.Errors)
		}
		// The page that failed the task is kept, and the task points to it.
		rawPagesAre(t, r, res.Task, up.take())
		if hrUsers(t, s)["p7"] != "active" {
			t.Fatal("a failed fetch changed the directory")
		}

		// The person gone upstream is an orphan; a dry run writes nothing.
		up.mu.Lock()
		up.broken = false
		up.mu.Unlock()
		dry, err := r.Sync(t.Context(), "hr", tasks.Options{DryRun: true})
		if err != nil || dry.Task != nil || dry.Plan.Counts.Deactivated != 1 || hrUsers(t, s)["p7"] != "active" {
			t.Fatalf("dry run: %+v %v", dry, err)
		}
		res = sync(tasks.Options{})
		if res.Task.Status != store.StatusSucceeded || counts(t, res.Task).Deactivated != 1 || hrUsers(t, s)["p7"] != "inactive" {
			t.Fatalf("orphan: %s %s", res.Task.Status, res.Task.Counts)
		}

		// A login held by another source fails the task after its input is
		// kept; the retry reads the raw record, not the upstream.
		up.mu.Lock()
		up.people[0]["login"] = "SAM"
		up.mu.Unlock()
		up.take()
		res = sync(tasks.Options{})
		if res.Task.Status != store.StatusFailed || res.Task.RawRecord == "" {
			t.Fatalf("conflict: %s %s", res.Task.Status, res.Task.Errors)
		}
		sent := up.take()
		rawPagesAre(t, r, res.Task, sent)
		r.Config.Sources[1].OnConflict = config.OnConflictSkip
		retry, err := r.Retry(t.Context(), res.Task.ID, "")
		if err != nil || retry.Task.Status != store.StatusSucceeded || counts(t, retry.Task).Skipped != 1 {
			t.Fatalf("retry: %+v %v", retry, err)
		}
		if again := up.take(); len(again) != 0 {
			t.Errorf("the retry read %d pages from the upstream, want none", len(again))
		}
		// The retry keeps the same input as its own raw record.
		rawPagesAre(t, r, retry.Task, sent)
	})
}

// rawPagesAre checks that task's raw record holds the pages sent, byte
// for byte, each one visible in the file as it came.
func rawPagesAre(t *testing.T, r *tasks.Runner, task *store.Task, sent [][]byte) {
	t.Helper()
	if task.RawRecord == "" || !strings.HasSuffix(task.RawRecord, ".json") {
		t.Fatalf("task %d (%s): raw record %q", task.ID, task.Status, task.RawRecord)
	}
	raw, err := os.ReadFile(filepath.Join(r.Config.Dir, task.RawRecord))
	if err != nil {
		t.Fatal(err)
	}
	bodies, err := tasks.RawPages(raw)
	if err != nil {
		t.Fatalf("raw record %s: %v\n%s", task.RawRecord, err, raw)
	}
	if len(bodies) != len(sent) || len(sent) == 0 {
		t.Fatalf("raw record %s holds %d pages, %d were sent", task.RawRecord, len(bodies), len(sent))
	}
	for i := range sent {
		if !bytes.Equal(bodies[i], sent[i]) {
			t.Errorf("page %d of the raw record:\n%q\nwas sent as\n%q", i+1, bodies[i], sent[i])
		}
		if json.Valid(sent[i]) && !bytes.Contains(raw, sent[i]) {
			t.Errorf("page %d is not in the raw record byte for byte", i+1)
		}
	}
}

// TestHTTPSourceMapAttributes maps an upstream's fields to a string
// attribute of the User, a typed address part, an enterprise attribute and
// a custom integer attribute on both stores: the values reach SCIM, a
// changed value updates the user, and a value not of its attribute's type
// fails the task naming the record and the path.
func TestHTTPSourceMapAttributes(t *testing.T) {
	const urn = "urn:ietf:params:scim:schemas:extension:roster:2.0:User" // the default
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		up := newUpstream(t, 3)
		up.mu.Lock()
		for i, p := range up.people {
			p["job"] = fmt.Sprintf("Engineer %d", i+1)
			p["office"] = map[string]any{"city": fmt.Sprintf("City %d", i+1)}
			p["cc"] = fmt.Sprintf("CC-%d", i+1)
			p["level"] = i + 1 // a JSON number
		}
		up.mu.Unlock()
		r := httpRunnerMap(t, s, up.srv.URL,
			`, title: /job, "addresses[type eq \"work\"].locality": /office/city, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": /cc, floor: /level`,
			"attributes:\n  custom: [{name: floor, type: integer}]\n")
		users := scim.UserType(&r.Config.Attributes)
		user := func(login string) *scim.User {
			t.Helper()
			page, err := s.SCIMFor(users).Users(t.Context(), scim.Query{Count: 1, Include: scim.All, Filter: &filter.Compare{
				Attr: filter.AttrPath{Name: "userName"}, Op: filter.Eq, Value: filter.Value{Kind: filter.KindString, Str: login}}})
			if err != nil || len(page.Resources) != 1 {
				t.Fatalf("%s: %v %v", login, page, err)
			}
			u := page.Resources[0]
			scim.ProjectUser(users, u)
			return u
		}
		sync := func() *store.Task {
			t.Helper()
			res, err := r.Sync(t.Context(), "hr", tasks.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return res.Task
		}
		if task := sync(); task.Status != store.StatusSucceeded || counts(t, task).Created != 3 {
			t.Fatalf("first sync: %s %s %s", task.Status, task.Counts, task.Errors)
		}
		u := user("p2")
		if u.Title != "Engineer 2" || len(u.Addresses) != 1 || u.Addresses[0].Type != "work" || u.Addresses[0].Locality != "City 2" ||
			u.Enterprise == nil || u.Enterprise.CostCenter != "CC-2" || u.Custom == nil || fmt.Sprint(u.Custom.Values["floor"]) != "2" {
			t.Fatalf("p2 as SCIM serves it: %+v %+v %+v %+v", u, u.Addresses, u.Enterprise, u.Custom)
		}
		// The custom value is stored as a number: SCIM filters it as one.
		f, err := filter.Parse(urn + `:floor ge 2 and title sw "engineer"`)
		if err != nil {
			t.Fatal(err)
		}
		if page, err := s.SCIMFor(users).Users(t.Context(), scim.Query{Count: 5, Filter: f, SortBy: "floor"}); err != nil ||
			len(page.Resources) != 2 || page.Resources[0].UserName != "p2" || page.Resources[1].UserName != "p3" {
			t.Fatalf("floor ge 2: %+v %v", page, err)
		}

		up.mu.Lock()
		up.people[0]["job"] = "Lead"
		up.people[0]["level"] = 9
		up.mu.Unlock()
		if task := sync(); task.Status != store.StatusSucceeded || counts(t, task).Updated != 1 || counts(t, task).Unchanged != 2 {
			t.Fatalf("one person changed: %s %s %s", task.Status, task.Counts, task.Errors)
		}
		if u := user("p1"); u.Title != "Lead" || u.Custom == nil || fmt.Sprint(u.Custom.Values["floor"]) != "9" {
			t.Errorf("p1 after the change: %+v %+v", u, u.Custom)
		}

		up.mu.Lock()
		up.people[2]["level"] = "third"
		up.mu.Unlock()
		if task := sync(); task.Status != store.StatusFailed || !strings.Contains(task.Errors, `record 3 (floor): \"third\" is not an integer`) {
			t.Errorf("a value not of the type: %s %s", task.Status, task.Errors)
		}
		if u := user("p3"); fmt.Sprint(u.Custom.Values["floor"]) != "3" {
			t.Errorf("a failed task changed p3: %+v", u.Custom)
		}
	})
}
