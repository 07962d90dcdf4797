package sinks_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
)

const customURN = "urn:example:params:scim:schemas:extension:roster:2.0:User"

// TestSinkSendsCustomAttributes checks, on both stores, that a user's
// custom attributes (SPEC §2.1) reach the service under the custom
// schema's URN, listed in schemas: every one with an empty map, only
// those the map names (renamed as it says) otherwise.
func TestSinkSendsCustomAttributes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		attrs := &config.Attributes{CustomSchema: customURN, Custom: []config.CustomAttribute{
			{Name: "costCentreCode", Type: "string"}, {Name: "badge", Type: "integer"}}}
		users := scim.UserType(attrs)
		if err := st.SyncSources(ctx, []string{"idp"}, []string{config.TypeSCIM}); err != nil {
			t.Fatal(err)
		}
		api := httptest.NewServer(scim.NewHandler(scim.Options{
			Directory: st.SCIMFor(users), Users: users, Writer: st.SCIMWriter(), Source: func() string { return "idp" },
			Authenticator: tokens(config.ScopeSCIMWrite),
		}))
		defer api.Close()
		body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","` + customURN + `"],"userName":"anna",
			"title":"Engineer","` + customURN + `":{"costCentreCode":"CC-7","badge":42}}`
		req, _ := http.NewRequest("POST", api.URL+"/scim/v2/Users", bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("create anna: %d", res.StatusCode)
		}

		for _, tt := range []struct {
			name   string
			m      map[string]string
			want   map[string]any // the custom object sent, nil for none
			schema string         // the extension schemas must list
		}{
			{"empty map", nil, map[string]any{"costCentreCode": "CC-7", "badge": float64(42)}, customURN},
			{"named by its name", map[string]string{"costCentreCode": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"},
				nil, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
			{"named by its path", map[string]string{customURN + ":badge": customURN + ":badge", "title": "title"},
				map[string]any{"badge": float64(42)}, customURN},
			{"not named", map[string]string{"title": "title"}, nil, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if err := st.RegisterSinks(ctx, nil); err != nil {
					t.Fatal(err)
				}
				if err := st.RegisterSinks(ctx, []string{"svc"}); err != nil {
					t.Fatal(err)
				}
				rec := newRecorder(t)
				cfg := sinkConfig(rec.srv.URL)
				cfg.Map = tt.m
				sink, err := sinks.New(cfg, st, st.SCIMFor(users), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					t.Fatal(err)
				}
				sink.Users = &users
				if _, err := sink.Step(ctx); err != nil {
					t.Fatal(err)
				}
				var post map[string]any
				for _, w := range rec.sent() {
					if w.Method == "POST" && w.Path == "/Users" {
						post = w.Body
					}
				}
				if post == nil {
					t.Fatalf("no user was created: %+v", rec.sent())
				}
				got, _ := post[customURN].(map[string]any)
				if tt.want == nil && got != nil || tt.want != nil && !equalJSON(got, tt.want) {
					t.Fatalf("custom attributes sent: %v, want %v (body %v)", got, tt.want, post)
				}
				schemas, _ := post["schemas"].([]any)
				if tt.schema != "" && !slices.Contains(schemas, any(tt.schema)) {
					t.Fatalf("schemas %v lack %s", schemas, tt.schema)
				}
				if tt.want == nil && slices.Contains(schemas, any(customURN)) {
					t.Fatalf("schemas %v list the custom schema, which was not sent", schemas)
				}
				if tt.name == "named by its name" {
					ent, _ := post["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
					if ent["costCenter"] != "CC-7" {
						t.Fatalf("the renamed custom attribute: %v", post)
					}
				}
			})
		}
	})
}

func equalJSON(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
