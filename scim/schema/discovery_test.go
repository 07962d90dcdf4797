package schema

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testBase = "https://roster.example.com/scim/v2"

func render(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// Unescaped, so the golden files read like what a reviewer checks
	// against RFC 7643.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the document rendered now; if the change is intended, run go test -update and review the diff\n%s", path, got)
	}
}

// testCustom is the User resource type with a custom attribute of every
// type roster offers.
var testCustom = NewUsers(Custom("urn:example:params:scim:schemas:extension:roster:2.0:User", []*Attribute{
	CustomAttribute("costCentreCode", TypeString, false, false),
	CustomAttribute("badges", TypeString, true, true),
	CustomAttribute("remote", TypeBoolean, false, false),
	CustomAttribute("floor", TypeInteger, false, false),
	CustomAttribute("fte", TypeDecimal, false, false),
	CustomAttribute("hired", TypeDateTime, false, false),
	CustomAttribute("wiki", TypeReference, false, true),
}))

func TestGolden(t *testing.T) {
	golden(t, "Schemas.golden.json", render(t, SchemasDocument(testBase, Users, Groups)))
	golden(t, "ResourceTypes.golden.json", render(t, ResourceTypesDocument(testBase, Users, Groups)))
	// With custom attributes, their schema follows the enterprise one and
	// is the User's second extension.
	golden(t, "Schemas.custom.golden.json", render(t, SchemasDocument(testBase, testCustom, Groups)))
	golden(t, "ResourceTypes.custom.golden.json", render(t, ResourceTypesDocument(testBase, testCustom, Groups)))
	golden(t, "ServiceProviderConfig.golden.json", render(t, ServiceProviderConfig(testBase, DefaultConfigOptions())))
}

// decode round-trips a document through JSON, as a client sees it.
func decode[T any](t *testing.T, v any) T {
	t.Helper()
	var out T
	if err := json.Unmarshal(render(t, v), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSchemasDocumentShape(t *testing.T) {
	docs := decode[[]map[string]any](t, SchemasDocument(testBase+"/", testCustom, Groups))
	if len(docs) != 5 || docs[4]["id"] != RosterGroupURN {
		t.Fatalf("%d schemas, the last %v: want User, enterprise User, custom, Group and roster's Group extension", len(docs), docs[len(docs)-1]["id"])
	}
	for _, d := range docs {
		id, _ := d["id"].(string)
		_, user := testCustom.SchemaByURN(id)
		if _, group := Groups.SchemaByURN(id); !user && !group {
			t.Errorf("schema id %q", id)
		}
		for _, k := range []string{"schemas", "id", "name", "description", "attributes", "meta"} {
			if _, ok := d[k]; !ok {
				t.Errorf("%s: no %s", id, k)
			}
		}
		m := d["meta"].(map[string]any)
		if m["resourceType"] != "Schema" || m["location"] != testBase+"/Schemas/"+id {
			t.Errorf("%s: meta %v", id, m)
		}
		for _, a := range d["attributes"].([]any) {
			attr := a.(map[string]any)
			for _, k := range []string{"name", "type", "multiValued", "description", "required", "caseExact", "mutability", "returned", "uniqueness"} {
				if _, ok := attr[k]; !ok {
					t.Errorf("%s:%v: no %s", id, attr["name"], k)
				}
			}
		}
	}
	// The password's characteristics are what keeps clients from asking
	// for it; check them as a client reads them.
	for _, a := range docs[0]["attributes"].([]any) {
		attr := a.(map[string]any)
		if attr["name"] == "password" && (attr["mutability"] != "writeOnly" || attr["returned"] != "never") {
			t.Errorf("password published as %v", attr)
		}
	}
}

func TestResourceTypesDocumentShape(t *testing.T) {
	docs := decode[[]map[string]any](t, ResourceTypesDocument(testBase, Users, Groups))
	if len(docs) != 2 {
		t.Fatalf("%d resource types", len(docs))
	}
	u, g := docs[0], docs[1]
	if u["id"] != "User" || u["endpoint"] != "/Users" || u["schema"] != UserURN {
		t.Errorf("User: %v", u)
	}
	exts, _ := u["schemaExtensions"].([]any)
	if len(exts) != 1 || exts[0].(map[string]any)["schema"] != EnterpriseURN || exts[0].(map[string]any)["required"] != false {
		t.Errorf("User extensions: %v", u["schemaExtensions"])
	}
	if g["id"] != "Group" || g["endpoint"] != "/Groups" || g["schema"] != GroupURN {
		t.Errorf("Group: %v", g)
	}
	gexts, _ := g["schemaExtensions"].([]any)
	if len(gexts) != 1 || gexts[0].(map[string]any)["schema"] != RosterGroupURN || gexts[0].(map[string]any)["required"] != false {
		t.Errorf("Group extensions: %v, want roster's Group extension, not required", g["schemaExtensions"])
	}
	if m := u["meta"].(map[string]any); m["location"] != testBase+"/ResourceTypes/User" || m["resourceType"] != "ResourceType" {
		t.Errorf("User meta: %v", m)
	}
}

func TestServiceProviderConfigShape(t *testing.T) {
	doc := decode[map[string]any](t, ServiceProviderConfig(testBase, DefaultConfigOptions()))
	// Every attribute RFC 7643 §5 marks REQUIRED.
	for _, k := range []string{"schemas", "patch", "bulk", "filter", "changePassword", "sort", "etag", "authenticationSchemes"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	if _, ok := doc["documentationUri"]; ok {
		t.Errorf("documentationUri present without being configured")
	}
	sup := func(k string) any { return doc[k].(map[string]any)["supported"] }
	if sup("patch") != true || sup("bulk") != false || sup("changePassword") != false || sup("sort") != true || sup("etag") != true || sup("filter") != true {
		t.Errorf("supported flags: %v", doc)
	}
	if doc["filter"].(map[string]any)["maxResults"] != float64(1000) {
		t.Errorf("filter: %v", doc["filter"])
	}
	b := doc["bulk"].(map[string]any)
	if _, ok := b["maxOperations"]; !ok {
		t.Errorf("bulk without maxOperations: %v", b)
	}
	schemes := doc["authenticationSchemes"].([]any)
	if len(schemes) != 1 || schemes[0].(map[string]any)["type"] != "oauthbearertoken" {
		t.Errorf("authenticationSchemes: %v", schemes)
	}
	if m := doc["meta"].(map[string]any); m["location"] != testBase+"/ServiceProviderConfig" {
		t.Errorf("meta: %v", m)
	}

	opts := DefaultConfigOptions()
	opts.DocumentationURI = "https://roster.example.com/docs/scim"
	opts.Pagination = nil
	doc = decode[map[string]any](t, ServiceProviderConfig(testBase, opts))
	if doc["documentationUri"] != opts.DocumentationURI {
		t.Errorf("documentationUri: %v", doc["documentationUri"])
	}
	if _, ok := doc["pagination"]; ok {
		t.Errorf("pagination present when not offered")
	}
}

// TestDocumentsFresh guards against a caller changing the returned maps
// and thereby every later answer.
func TestDocumentsFresh(t *testing.T) {
	a := SchemasDocument(testBase, Users, Groups)
	a[0]["id"] = "changed"
	if b := SchemasDocument(testBase, Users, Groups); b[0]["id"] == "changed" {
		t.Error("SchemasDocument shares its maps between calls")
	}
	if strings.Contains(string(render(t, ResourceTypesDocument(testBase+"//", Users, Groups))), "//ResourceTypes") {
		t.Error("trailing slashes of the base URL end up in locations")
	}
}
