package scim_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/scimtest"
)

// TestHostileText: text a store cannot hold, or that encoding/json would
// silently alter, is refused before it reaches the store, on both stores
// (PostgreSQL answered invalid UTF-8 and NUL with 500, and SQLite stored
// U+FFFD, 200 KB names and NUL, and matched every user for co "\u0000").
func TestHostileText(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			s := storetest.Open(t, driver)
			scimtest.Seed(t, s)
			if err := s.SyncSources(t.Context(), []string{"entra"}, []string{"scim"}); err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, s, func(o *scim.Options) {
				o.Writer = s.SCIMWriter()
				o.Source = func() string { return "entra" }
			})
			user := func(name string) []byte {
				return []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + name + `"}`)
			}
			for _, c := range []struct {
				method, path string
				body         []byte
				status       int
				scimType     string
			}{
				{"GET", "/Users/%FF%FE", nil, 404, ""},
				{"GET", "/Groups/a%00b", nil, 404, ""},
				{"DELETE", "/Users/%C3%28", nil, 404, ""},
				{"GET", "/Users?filter=" + url.QueryEscape(`emails[value co "\u0000"]`), nil, 400, "invalidFilter"},
				{"GET", "/Users?filter=" + url.QueryEscape(`userName eq "a\u0000b"`), nil, 400, "invalidFilter"},
				{"POST", "/Users", user("a\xffb"), 400, "invalidSyntax"},
				{"POST", "/Users", user(`nul\u0000byte`), 400, "invalidValue"},
				{"POST", "/Users", user(strings.Repeat("x", scim.MaxValueBytes+1)), 400, "invalidValue"},
				{"POST", "/Groups", []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"` + strings.Repeat("g", 5000) + `"}`), 400, "invalidValue"},
			} {
				r := e.do(c.method, "/scim/v2"+c.path, writeToken, c.body)
				var got struct{ Status, ScimType string }
				if r.status != c.status || json.Unmarshal(r.body, &got) != nil || got.ScimType != c.scimType {
					t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, r.status, r.body, c.status, c.scimType)
				}
			}
			// A userName of exactly the bound is fine.
			if r := e.do("POST", "/scim/v2/Users", writeToken, user(strings.Repeat("y", scim.MaxValueBytes))); r.status != 201 {
				t.Errorf("a userName of %d bytes: %d %s", scim.MaxValueBytes, r.status, r.body)
			}
		})
	}
}
