package sinks_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/sources"
)

// TestSinkInitialPasswordKeyChange checks, on both stores, that a sink
// asking for passwords sends a created user's kept password in its POST,
// that passwords kept under an older secrets.key are left out with a
// single warning that holds no secret, that a sink not asking sends none,
// and that every kept password is wiped once the service has its user.
func TestSinkInitialPasswordKeyChange(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if err := st.RegisterSinks(ctx, []string{"svc", "plain"}); err != nil {
			t.Fatal(err)
		}
		up := newUpstream(t, st, 0)
		add := func(names ...string) {
			for _, n := range names {
				up.recs = append(up.recs, sources.Record{Line: len(up.recs) + 1, ExternalID: n, UserName: n, GivenName: n, FamilyName: "F",
					Groups: []string{"team"}, PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", InitialPassword: "Secret-of-" + n})
			}
			up.apply()
		}
		if err := st.KeepInitialPasswords(bytes.Repeat([]byte{1}, 32), []string{"svc"}); err != nil {
			t.Fatal(err)
		}
		add("old1", "old2")
		if err := st.KeepInitialPasswords(bytes.Repeat([]byte{2}, 32), []string{"svc"}); err != nil {
			t.Fatal(err)
		}
		add("new1")
		if n, _ := st.InitialPasswordsKept(ctx); n != 3 {
			t.Fatalf("%d passwords kept, want 3", n)
		}

		sent := func(name string, passwords bool) (map[string]any, string) {
			rec := newRecorder(t)
			cfg := sinkConfig(rec.srv.URL)
			cfg.Name, cfg.Passwords = name, passwords
			var logs bytes.Buffer
			sink, err := sinks.New(cfg, st, st.SCIM(), nil, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sink.Step(ctx); err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			for _, w := range rec.sent() {
				if w.Method == "POST" && w.Path == "/Users" {
					got[w.Body["userName"].(string)] = w.Body["password"]
				}
			}
			return got, logs.String()
		}
		plain, _ := sent("plain", false)
		if len(plain) != 3 || plain["new1"] != nil || plain["old1"] != nil {
			t.Fatalf("a sink not asking for passwords sent %v", plain)
		}
		got, logs := sent("svc", true)
		if len(got) != 3 || got["new1"] != "Secret-of-new1" || got["old1"] != nil || got["old2"] != nil {
			t.Fatalf("passwords sent: %v", got)
		}
		if n := strings.Count(logs, "cannot be decrypted"); n != 1 {
			t.Fatalf("%d warnings about the changed key, want 1:\n%s", n, logs)
		}
		for _, n := range []string{"old1", "old2", "new1"} {
			if strings.Contains(logs, "Secret-of-"+n) {
				t.Fatalf("the log holds a password:\n%s", logs)
			}
		}
		if n, _ := st.InitialPasswordsKept(ctx); n != 0 {
			t.Fatalf("%d passwords still kept after the service has every user", n)
		}
	})
}
