package daemon

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// Run migrates the store it is given (roster serve no longer does) before
// it opens the routes and starts the sources: on an empty database the
// daemon gets ready with the latest schema and syncs its csv source.
func TestRunMigratesAnEmptyStore(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			st, err := store.Connect(driver, storetest.DSN(t, driver))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			dir := t.TempDir()
			writeFile(t, dir+"/staff.csv", people(3))
			h := startConfig(t, st, loadConfig(t, dir, staffConfig("watch: false")))
			v, err := st.SchemaVersion(context.Background())
			if err != nil || v != store.Latest() {
				t.Fatalf("schema version after Run started = %d, %v; want %d", v, err, store.Latest())
			}
			if code, body := h.get("/readyz"); code != http.StatusOK || !strings.Contains(body, `"schema_version"`) {
				t.Fatalf("/readyz = %d %s", code, body)
			}
			h.waitQuiet()
			if ts := h.finished("staff"); len(ts) != 1 || ts[0].Status != store.StatusSucceeded {
				t.Fatalf("tasks of staff: %v; want the first sync, succeeded", statuses(ts))
			}
		})
	}
}
