package scim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/scimtest"
)

// oktaPushGroups is the sequence Okta's Push Groups sends: it creates
// the group, adds and removes members one at a time, renames the group,
// looks it up by name and finally deletes it; {id} is the id the POST
// answered with.
var oktaPushGroups = []struct {
	method, path, body string
}{
	{"POST", "/scim/v2/Groups", `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
  "displayName": "Okta Push",
  "members": []
}`},
	{"PATCH", "/scim/v2/Groups/{id}", `{
  "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [{"op": "add", "path": "members", "value": [{"value": "` + scimtest.Anna + `", "display": "anna.berg"}, {"value": "` + scimtest.Carl + `", "display": "carl"}]}]
}`},
	{"PATCH", "/scim/v2/Groups/{id}", `{
  "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [{"op": "remove", "path": "members[value eq \"` + scimtest.Carl + `\"]"}]
}`},
	{"PATCH", "/scim/v2/Groups/{id}", `{
  "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [{"op": "replace", "value": {"id": "{id}", "displayName": "Okta Push Renamed"}}]
}`},
	{"GET", `/scim/v2/Groups?filter=displayName eq "Okta Push Renamed"&startIndex=1&count=100`, ""},
	{"DELETE", "/scim/v2/Groups/{id}", ""},
	{"GET", "/scim/v2/Groups/{id}", ""},
}

// TestGoldenOktaPushGroups replays Okta's Push Groups sequence against a
// writable endpoint and compares the exchanges with
// testdata/okta_push_groups.golden (okta_groups.golden is Okta's group
// import, a read); the new group's id and the timestamps, which differ
// on every run, are replaced by placeholders.
func TestGoldenOktaPushGroups(t *testing.T) {
	for i, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			s := storetest.Open(t, driver)
			scimtest.Seed(t, s)
			if err := s.SyncSources(t.Context(), []string{"okta"}, []string{"scim"}); err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, s, func(o *scim.Options) {
				o.Writer = s.SCIMWriter()
				o.Source = func() string { return "okta" }
			})
			var b bytes.Buffer
			id := ""
			for _, step := range oktaPushGroups {
				path := strings.ReplaceAll(step.path, "{id}", id)
				raw := strings.NewReplacer(" ", "%20", `"`, "%22").Replace(path)
				req, err := http.NewRequest(step.method, e.srv.URL+raw, strings.NewReader(strings.ReplaceAll(step.body, "{id}", id)))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+writeToken)
				if step.body != "" {
					req.Header.Set("Content-Type", "application/scim+json; charset=utf-8")
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				_, err = got.ReadFrom(res.Body)
				res.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if step.method == "POST" {
					var m map[string]any
					if err := json.Unmarshal(got.Bytes(), &m); err != nil || res.StatusCode != http.StatusCreated {
						t.Fatalf("POST = %d %s", res.StatusCode, got.Bytes())
					}
					id, _ = m["id"].(string)
				}
				fmt.Fprintf(&b, "%s %s\nAuthorization: Bearer <token>\n", step.method, step.path)
				if step.body != "" {
					fmt.Fprintf(&b, "Content-Type: application/scim+json; charset=utf-8\n\n%s\n", step.body)
				}
				fmt.Fprintf(&b, "\nHTTP %d\n", res.StatusCode)
				var hs []string
				for _, k := range []string{"Content-Type", "ETag", "Location"} {
					if v := res.Header.Get(k); v != "" {
						hs = append(hs, k+": "+v)
					}
				}
				slices.Sort(hs)
				for _, h := range hs {
					b.WriteString(h + "\n")
				}
				b.WriteString("\n")
				if got.Len() > 0 {
					if err := json.Indent(&b, got.Bytes(), "", "  "); err != nil {
						t.Fatalf("%s %s: the body is not JSON: %v\n%s", step.method, path, err, got.Bytes())
					}
					b.WriteString("\n")
				}
				b.WriteString("\n")
			}
			if id == "" {
				t.Fatal("no group was created")
			}
			out := []byte(timeRE.ReplaceAllString(strings.ReplaceAll(b.String(), id, "{id}"), `"<time>"`))
			golden := filepath.Join("testdata", "okta_push_groups.golden")
			if *update && i == 0 {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantBytes, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(out, wantBytes) {
				t.Errorf("the exchange differs from %s; if the change is intended, run go test -update and review the diff\n%s", golden, out)
			}
		})
	}
}
