package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/scim"
)

// TestSinksRunAndReload checks that the daemon delivers its sinks, and
// that a reload removing one stops it and forgets it.
func TestSinksRunAndReload(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		const tok = "service-token"
		svc := storetest.Open(t, store.SQLite)
		ctx := context.Background()
		if err := svc.SyncSources(ctx, []string{"idp"}, []string{config.TypeSCIM}); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(tok))
		toks := []config.Token{{Name: "roster", Hash: "sha256:" + hex.EncodeToString(sum[:]), Scopes: []string{config.ScopeSCIMWrite}}}
		srv := httptest.NewServer(scim.NewHandler(scim.Options{Directory: svc.SCIM(), Writer: svc.SCIMWriter(),
			Source: func() string { return "idp" }, Authenticator: scim.Tokens(func() []config.Token { return toks })}))
		defer srv.Close()
		held := func() map[string]bool {
			page, err := svc.SCIM().Users(ctx, scim.Query{Count: 100})
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]bool{}
			for _, u := range page.Resources {
				out[u.UserName] = u.Active == nil || *u.Active
			}
			return out
		}

		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "staff.csv"), people(30))
		sinkYAML := fmt.Sprintf("sinks:\n  - name: svc\n    url: %s/scim/v2\n    auth: {bearer: %s}\n    interval: 200ms\n    limits: {rate: 0}\n", srv.URL, tok)
		cfg := loadConfig(t, dir, staffConfig("watch: false")+sinkYAML)
		h := startConfig(t, st, cfg)
		eventually(t, time.Minute, "the sink did not deliver the directory", func() bool { return len(held()) == 30 })

		// 30 users and their group.
		eventually(t, 30*time.Second, "the sink's metrics", func() bool {
			_, body := h.get("/metrics")
			return strings.Contains(body, `roster_sink_delivered_total{action="created",sink="svc"} 31`+"\n") &&
				strings.Contains(body, `roster_sink_queue{sink="svc"} 0`+"\n") &&
				strings.Contains(body, `roster_sink_lag_seconds{sink="svc"} 0`+"\n") &&
				strings.Contains(body, `roster_sink_quarantined{sink="svc"} 0`+"\n")
		})
		if state, err := st.Sink(ctx, "svc"); err != nil || state.LastRunAt.IsZero() || state.Failures != 0 {
			t.Fatalf("the sink's recorded run: %+v, %v", state, err)
		}

		// user30 leaves: deactivated on the service.
		writeFile(t, filepath.Join(dir, "staff.csv"), people(29))
		if err := h.d.Trigger("staff", tasks.TriggerManual); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "the removal did not reach the service", func() bool {
			active, ok := held()["user30"]
			return ok && !active
		})

		// A reload without the sink forgets it.
		next := loadConfig(t, dir, staffConfig("watch: false"))
		if err := h.d.Reload(ctx, func() (*config.Config, error) { return next, nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Sink(ctx, "svc"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the removed sink is still registered: %v", err)
		}
		writeFile(t, filepath.Join(dir, "staff.csv"), people(28))
		if err := h.d.Trigger("staff", tasks.TriggerManual); err != nil {
			t.Fatal(err)
		}
		h.waitQuiet()
		time.Sleep(time.Second)
		if held()["user29"] != true {
			t.Fatal("a removed sink still delivers")
		}
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
	})
}
