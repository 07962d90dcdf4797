package admin_test

import (
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestHostileText: a task filter or user id that is not valid UTF-8 or
// holds NUL names nothing; PostgreSQL refused such parameters, which
// answered 500.
func TestHostileText(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, "")
		for _, c := range []struct {
			method, path, body string
			code               int
			says               string
		}{
			{"GET", "/api/v1/tasks?source=%FF%FE", "", 400, "is not a source name"},
			{"GET", "/api/v1/tasks?source=a%00b", "", 400, "is not a source name"},
			{"PATCH", "/api/v1/users/%FF%FE", `{"active": false}`, 404, "no user"},
			{"PATCH", "/api/v1/users/a%00b", `{"active": false}`, 404, "no user"},
		} {
			r := e.do(c.method, c.path, adminToken, strings.NewReader(c.body))
			if r.code != c.code || !strings.Contains(r.errorMessage(t), c.says) {
				t.Errorf("%s %s = %s; want %d saying %q", c.method, c.path, r, c.code, c.says)
			}
		}
	})
}
