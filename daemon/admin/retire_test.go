package admin_test

import (
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
)

// TestRetireSource: GET /api/v1/sources lists a source removed from the
// configuration as retired with its counts; POST .../retire plans its
// removal as a held task (refused for a configured or unknown source),
// which POST /api/v1/tasks/{id}/approve applies.
func TestRetireSource(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		// A source "gone", synced under an earlier configuration.
		old := t.TempDir()
		for name, content := range map[string]string{
			"gone.csv":    "g1,Gil,Gone,gil,,Old,\ng2,Gus,Gone,gus,,Old,\n",
			"roster.yaml": "log:\n  dir: log\nsources:\n  - name: gone\n    type: csv\n    path: gone.csv\n",
		} {
			if err := os.WriteFile(filepath.Join(old, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cfg, err := config.Load(filepath.Join(old, "roster.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SyncSources(t.Context(), []string{"gone"}, []string{"csv"}); err != nil {
			t.Fatal(err)
		}
		res, err := (&tasks.Runner{Store: st, Config: cfg, Log: slog.New(slog.DiscardHandler)}).Sync(t.Context(), "gone", tasks.Options{})
		if err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("sync gone: %v %+v", err, res)
		}

		e := newEnv(t, st, "")
		type src struct {
			Name, State string
			Counts      tasks.Counts
		}
		list := func() map[string]src {
			var got struct{ Items []src }
			e.admin(200, "GET", "/api/v1/sources", nil).decode(t, &got)
			out := map[string]src{}
			for _, s := range got.Items {
				out[s.Name] = s
			}
			return out
		}
		srcs := list()
		if g := srcs["gone"]; g.State != "retired" || g.Counts != (tasks.Counts{Active: 2, Groups: 1}) {
			t.Errorf("gone: %+v; want retired with 2 active users and 1 group", g)
		}
		if s := srcs["staff"]; s.State == "retired" || s.Counts.Active != 20 {
			t.Errorf("staff: %+v", s)
		}

		if msg := e.admin(409, "POST", "/api/v1/sources/staff/retire", nil).errorMessage(t); !strings.Contains(msg, "still in") {
			t.Errorf("retire a configured source: %s", msg)
		}
		e.admin(404, "POST", "/api/v1/sources/nosuch/retire", nil)
		e.admin(409, "POST", "/api/v1/sources/gone/retire", strings.NewReader(`{"orphans":"purge"}`))

		held := decodeTask(t, e.admin(202, "POST", "/api/v1/sources/gone/retire", strings.NewReader(`{"orphans":"delete"}`)).body)
		if held.Status != store.StatusHeld || held.Trigger != tasks.TriggerRetire || len(held.Removals) != 2 || held.Removals[0].Action != "delete" {
			t.Fatalf("retire: %+v", held)
		}
		if g := list()["gone"]; g.Counts.Active != 2 {
			t.Fatalf("a held retirement was applied: %+v", g)
		}
		done := decodeTask(t, e.admin(200, "POST", fmt.Sprintf("/api/v1/tasks/%d/approve", held.ID), nil).body)
		if done.Status != store.StatusSucceeded || done.Counts["deleted"] != 2 {
			t.Fatalf("approve: %+v", done)
		}
		if g, ok := list()["gone"]; ok {
			t.Errorf("gone is still listed after its retirement: %+v", g)
		}
	})
}
