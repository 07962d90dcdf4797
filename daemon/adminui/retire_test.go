package adminui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestRetiredSourcePage: a source removed from the configuration that
// still owns users is shown as retired with its counts and a form that
// plans its retirement as a held task; the task's page approves it, and
// the source is no longer listed.
func TestRetiredSourcePage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		e.write("gone.csv", "g1,Gil,Gone,gil,,Old,\ng2,Gus,Gone,gus,,Old,\n")
		e.load(configYAML(bothTokens) + "  - name: gone\n    type: csv\n    path: gone.csv\n    watch: false\n")
		if err := st.SyncSources(t.Context(), []string{"gone"}, []string{"csv"}); err != nil {
			t.Fatal(err)
		}
		if res, err := e.runner().Sync(t.Context(), "gone", tasks.Options{}); err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("sync gone: %v %+v", err, res)
		}
		e.load(configYAML(bothTokens)) // gone is removed from the configuration

		c := e.login()
		token := e.csrf(c)
		page := e.get("/admin", c)
		row := regexp.MustCompile(`(?s)<tr id="source-gone">.*?</tr>`).FindString(page.body)
		for _, want := range []string{"retired", "2 active, 0 inactive", "1 groups", `action="/admin/sources/gone/retire"`} {
			if !strings.Contains(row, want) {
				t.Errorf("the overview's row of gone lacks %q:\n%s", want, row)
			}
		}
		if strings.Contains(regexp.MustCompile(`(?s)<tr id="source-staff">.*?</tr>`).FindString(page.body), "/retire") {
			t.Errorf("a configured source offers a retirement")
		}
		if r := e.post("/admin/sources/staff/retire", url.Values{"csrf": {token}}, c); r.code != http.StatusConflict || !strings.Contains(r.body, "still in") {
			t.Errorf("retire staff: %d %s", r.code, r.body)
		}

		r := e.post("/admin/sources/gone/retire", url.Values{"csrf": {token}, "orphans": {"delete"}}, c)
		loc := r.header.Get("Location")
		if r.code != http.StatusSeeOther || !regexp.MustCompile(`^/admin/tasks/\d+\?flash=retire$`).MatchString(loc) {
			t.Fatalf("retire gone: %d %s %s", r.code, loc, r.body)
		}
		held := e.get(loc, c)
		for _, want := range []string{"held", "Approve", "gil", "gus", "delete"} {
			if !strings.Contains(held.body, want) {
				t.Errorf("the held retirement's page lacks %q", want)
			}
		}
		id := strings.TrimSuffix(strings.TrimPrefix(loc, "/admin/tasks/"), "?flash=retire")
		if r := e.post("/admin/tasks/"+id+"/approve", url.Values{"csrf": {token}}, c); r.code != http.StatusSeeOther {
			t.Fatalf("approve: %d %s", r.code, r.body)
		}
		if page := e.get("/admin", c); strings.Contains(page.body, `id="source-gone"`) {
			t.Errorf("gone is still listed after its retirement")
		}
	})
}
