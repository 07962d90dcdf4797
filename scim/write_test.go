package scim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/scimtest"
)

// entraProvisioning is the sequence Microsoft Entra ID sends to provision
// a new hire and, later, to disable the account; {id} is the id the
// POST answered with.
var entraProvisioning = []struct {
	method, path, body string
}{
	{"GET", `/scim/v2/Users?filter=userName eq "new.hire@example.com"`, ""},
	{"POST", "/scim/v2/Users", `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "externalId": "new.hire",
  "userName": "new.hire@example.com",
  "active": true,
  "displayName": "New Hire",
  "emails": [{"primary": true, "type": "work", "value": "new.hire@example.com"}],
  "meta": {"resourceType": "User"},
  "name": {"formatted": "New Hire", "familyName": "Hire", "givenName": "New"},
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Research"}
}`},
	{"GET", `/scim/v2/Users?filter=userName eq "new.hire@example.com"`, ""},
	{"PATCH", "/scim/v2/Users/{id}", `{
  "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
}`},
	{"GET", "/scim/v2/Users/{id}", ""},
}

var (
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeRE = regexp.MustCompile(`"20\d\d-\d\d-\d\dT[0-9:.]+Z"`)
)

// TestGoldenEntraProvisioning replays an Entra ID provisioning sequence
// against a writable endpoint and compares the exchanges with
// testdata/entra_provisioning.golden; the new user's id and timestamps,
// which differ on every run, are replaced by placeholders.
func TestGoldenEntraProvisioning(t *testing.T) {
	for i, driver := range storetest.Drivers {
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
			var b bytes.Buffer
			id := ""
			for _, step := range entraProvisioning {
				path := strings.ReplaceAll(step.path, "{id}", id)
				raw := strings.NewReplacer(" ", "%20", `"`, "%22").Replace(path)
				var body *bytes.Reader
				if step.body != "" {
					body = bytes.NewReader([]byte(step.body))
				} else {
					body = bytes.NewReader(nil)
				}
				req, err := http.NewRequest(step.method, e.srv.URL+raw, body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+writeToken)
				if step.body != "" {
					req.Header.Set("Content-Type", "application/scim+json")
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
					fmt.Fprintf(&b, "Content-Type: application/scim+json\n\n%s\n", step.body)
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
			out := []byte(timeRE.ReplaceAllString(uuidRE.ReplaceAllString(b.String(), "<id>"), `"<time>"`))
			golden := filepath.Join("testdata", "entra_provisioning.golden")
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
