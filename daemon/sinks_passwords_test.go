package daemon

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestSinkPasswordsWipedWithTheSink checks, on both stores, that the
// daemon keeps the initial passwords of a sync's new users for a sink
// that asks for them and cannot deliver yet, and wipes them at once when
// a reload disables that sink.
func TestSinkPasswordsWipedWithTheSink(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
		}))
		defer down.Close()
		dir := t.TempDir()
		var rows strings.Builder
		for i := 1; i <= 5; i++ {
			fmt.Fprintf(&rows, "%05d,Given%d,Family%d,user%d,user%d@example.com,Team,Initial-pass-%d\n", i, i, i, i, i, i)
		}
		writeFile(t, filepath.Join(dir, "staff.csv"), rows.String())
		sink := func(enabled bool) string {
			return fmt.Sprintf("secrets: {key: '%s'}\nsinks:\n  - {name: svc, url: '%s/scim/v2', interval: 1h, passwords: true, enabled: %v}\n",
				strings.Repeat("ab", 32), down.URL, enabled)
		}
		cfg := loadConfig(t, dir, staffConfig("watch: false")+sink(true))
		h := startConfig(t, st, cfg)
		kept := func() int64 {
			n, err := st.InitialPasswordsKept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		eventually(t, time.Minute, "the sync kept the initial passwords for the sink", func() bool { return kept() == 5 })

		next := loadConfig(t, dir, staffConfig("watch: false")+sink(false))
		if err := h.d.Reload(ctx, func() (*config.Config, error) { return next, nil }); err != nil {
			t.Fatal(err)
		}
		if n := kept(); n != 0 {
			t.Fatalf("%d initial passwords are kept after the sink was disabled", n)
		}
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
	})
}
