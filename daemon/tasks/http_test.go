package tasks_test

import (
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
)

// upstream is an HR API on 127.0.0.1 that serves people in pages of two,
// linked by a next-URL field.
type upstream struct {
	mu     sync.Mutex
	people []map[string]any
	broken bool // answer a malformed body
	srv    *httptest.Server
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
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func httpRunner(t *testing.T, s *store.Store, url string) *tasks.Runner {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "staff.csv"), "s1,Sam,Smith,sam,,,\n")
	yaml := `log:
  dir: log
sources:
  - name: staff
    type: csv
    path: staff.csv
  - name: hr
    type: http
    url: ` + url + `/people?page=0
    auth: {bearer: hr-secret}
    records: /data
    next: /links/next
    map: {externalId: /id, userName: /login, givenName: /first, familyName: /last, email: /mail, groups: /teams, active: /active}
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
		res := sync(tasks.Options{})
		if res.Task.Status != store.StatusSucceeded || counts(t, res.Task).Created != 7 || len(hrUsers(t, s)) != 7 {
			t.Fatalf("first sync: %s %s %s", res.Task.Status, res.Task.Counts, res.Task.Errors)
		}
		raw, err := os.ReadFile(filepath.Join(r.Config.Dir, res.Task.RawRecord))
		if err != nil || !strings.HasSuffix(res.Task.RawRecord, ".json") || !strings.Contains(string(raw), `"userName": "p7"`) {
			t.Fatalf("raw record %s: %v %s", res.Task.RawRecord, err, raw)
		}
		if res = sync(tasks.Options{}); res.Task.Status != store.StatusSkipped {
			t.Fatalf("unchanged upstream: %s", res.Task.Status)
		}

		// A malformed answer fails the task and changes nothing.
		up.mu.Lock()
		up.people = up.people[:6]
		up.broken = true
		up.mu.Unlock()
		res = sync(tasks.Options{})
		if v := tasks.ViewOf(res.Task, nil); res.Task.Status != store.StatusFailed || !strings.Contains(v.Errors[0].Message, "page 1") {
			t.Fatalf("malformed body: %s %+v", res.Task.Status, v.Errors)
		}
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
		res = sync(tasks.Options{})
		if res.Task.Status != store.StatusFailed || res.Task.RawRecord == "" {
			t.Fatalf("conflict: %s %s", res.Task.Status, res.Task.Errors)
		}
		r.Config.Sources[1].OnConflict = config.OnConflictSkip
		retry, err := r.Retry(t.Context(), res.Task.ID, "")
		if err != nil || retry.Task.Status != store.StatusSucceeded || counts(t, retry.Task).Skipped != 1 {
			t.Fatalf("retry: %+v %v", retry, err)
		}
	})
}
