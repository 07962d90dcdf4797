package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/password"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/sources"
)

const (
	writeTok = "entra-provisions"
	readTok  = "okta-reads"
	adminTok = "the-operator"
)

type scimWriteEnv struct {
	t      *testing.T
	s      *store.Store
	srv    *httptest.Server
	source string
}

type scimAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a *scimAnswer) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("status %d, body is not a JSON object: %v\n%s", a.status, err, a.body)
	}
	return m
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// newSCIMWriteEnv serves the store over SCIM with writes going to the
// scim source "idp", beside a csv source "staff" holding anna and bob.
func newSCIMWriteEnv(t *testing.T, s *store.Store) *scimWriteEnv {
	t.Helper()
	return newSCIMWriteEnvFor(t, s, schema.Users)
}

// newSCIMWriteEnvFor is newSCIMWriteEnv serving the User resource type
// users (custom attributes).
func newSCIMWriteEnvFor(t *testing.T, s *store.Store, users schema.ResourceType) *scimWriteEnv {
	t.Helper()
	ctx := context.Background()
	if err := s.SyncSources(ctx, []string{"staff", "idp"}, []string{"csv", "scim"}); err != nil {
		t.Fatal(err)
	}
	set := reconcile.Settings{Orphans: reconcile.OrphansDelete, ActivateNew: true, Restore: true}
	if err := s.Apply(ctx, "staff", plan(t, s, "staff", staffRecords(), set, seq()), "fp1"); err != nil {
		t.Fatal(err)
	}
	e := &scimWriteEnv{t: t, s: s, source: "idp"}
	tokens := []config.Token{
		{Name: "entra", Hash: tokenHash(writeTok), Scopes: []string{config.ScopeSCIMWrite}},
		{Name: "okta", Hash: tokenHash(readTok), Scopes: []string{config.ScopeSCIMRead}},
		{Name: "operator", Hash: tokenHash(adminTok), Scopes: []string{config.ScopeAdmin}},
	}
	h := scim.NewHandler(scim.Options{
		Directory:     s.SCIMFor(users),
		Users:         users,
		Writer:        s.SCIMWriter(),
		Source:        func() string { return e.source },
		Authenticator: scim.Tokens(func() []config.Token { return tokens }),
	})
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

func staffRecords() []sources.Record {
	return []sources.Record{rec(1, "1", "anna"), rec(2, "2", "bob")}
}

func (e *scimWriteEnv) do(method, path, token, body string, header ...string) *scimAnswer {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if bytes.Contains(b, []byte("argon2")) || bytes.Contains(bytes.ToLower(b), []byte(`"password"`)) ||
		bytes.Contains(b, []byte("Secret-Pass")) {
		e.t.Errorf("%s %s: the answer holds a password: %s", method, path, b)
	}
	return &scimAnswer{status: res.StatusCode, header: res.Header, body: b}
}

// want checks the status, and for errors the scimType and a detail part.
func want(t *testing.T, a *scimAnswer, status int, scimType, detail string) map[string]any {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	if status == http.StatusNoContent {
		return nil
	}
	m := a.object(t)
	if status >= 400 {
		if got, _ := m["scimType"].(string); got != scimType {
			t.Errorf("scimType %q, want %q: %s", got, scimType, a.body)
		}
		if d, _ := m["detail"].(string); !strings.Contains(d, detail) {
			t.Errorf("detail %q does not mention %q", d, detail)
		}
	}
	return m
}

func (e *scimWriteEnv) dbUser(id string) store.User {
	e.t.Helper()
	var u store.User
	if err := e.s.DB().Preload("Emails").Where("id = ?", id).Take(&u).Error; err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *scimWriteEnv) idOf(login string) string {
	e.t.Helper()
	var u store.User
	if err := e.s.DB().Where("user_name_key = ? AND state <> 'deleted'", strings.ToLower(login)).Take(&u).Error; err != nil {
		e.t.Fatal(err)
	}
	return u.ID
}

func (e *scimWriteEnv) revision(source string) int64 {
	e.t.Helper()
	src, err := e.s.GetSource(context.Background(), source)
	if err != nil {
		e.t.Fatal(err)
	}
	return src.Revision
}

const entraCreate = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "externalId": "E100",
  "userName": "Carla.Diaz@example.com",
  "active": "true",
  "displayName": "Carla Diaz",
  "password": "Secret-Pass-1",
  "emails": [{"primary": true, "type": "work", "value": "carla.diaz@example.com"}],
  "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}],
  "name": {"formatted": "Carla Diaz", "familyName": "Diaz", "givenName": "Carla"},
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "100", "department": "Research"}
}`

func TestSCIMWriteUsers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		rev := e.revision("idp")

		// Create.
		a := e.do("POST", "/scim/v2/Users", writeTok, entraCreate)
		m := want(t, a, http.StatusCreated, "", "")
		id, _ := m["id"].(string)
		if id == "" || m["userName"] != "Carla.Diaz@example.com" || m["active"] != true || m["externalId"] != "E100" {
			t.Fatalf("created: %s", a.body)
		}
		meta, _ := m["meta"].(map[string]any)
		if loc := a.header.Get("Location"); loc == "" || !strings.HasSuffix(loc, "/Users/"+id) || meta["location"] != loc {
			t.Errorf("Location %q, meta %v", loc, meta)
		}
		if et := a.header.Get("ETag"); et == "" || et != meta["version"] {
			t.Errorf("ETag %q, meta.version %v", et, meta["version"])
		}
		ent, _ := m["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
		if ent["department"] != "Research" || ent["employeeNumber"] != "100" {
			t.Errorf("enterprise: %v", ent)
		}
		if phones, _ := m["phoneNumbers"].([]any); len(phones) != 1 {
			t.Errorf("phoneNumbers: %v", m["phoneNumbers"])
		}
		u := e.dbUser(id)
		if u.Source != "idp" || u.UserNameKey != "carla.diaz@example.com" || !strings.HasPrefix(u.PasswordHash, "$argon2id$") ||
			strings.Contains(u.PasswordHash, "Secret-Pass-1") {
			t.Fatalf("stored: source %q key %q hash %q", u.Source, u.UserNameKey, u.PasswordHash)
		}
		if ok, err := password.Verify(u.PasswordHash, "Secret-Pass-1"); err != nil || !ok {
			t.Errorf("the stored hash does not verify the password: %v", err)
		}
		if len(u.Emails) != 1 || u.Emails[0].Value != "carla.diaz@example.com" || !u.Emails[0].Primary {
			t.Errorf("emails: %+v", u.Emails)
		}
		if r := e.revision("idp"); r != rev+1 {
			t.Errorf("idp revision %d → %d", rev, r)
		}
		if g := e.do("GET", "/scim/v2/Users/"+id, readTok, ""); g.status != 200 {
			t.Fatalf("GET the created user: %d %s", g.status, g.body)
		}

		// Duplicate userName, also in another case and of another source.
		for _, login := range []string{"Carla.Diaz@example.com", "CARLA.DIAZ@EXAMPLE.COM", "Anna"} {
			body := strings.NewReplacer(`"Carla.Diaz@example.com"`, `"`+login+`"`, `"E100"`, `"E999"`).Replace(entraCreate)
			want(t, e.do("POST", "/scim/v2/Users", writeTok, body), http.StatusConflict, "uniqueness", "already in use")
		}
		// externalId is not unique among users written over SCIM (RFC 7643 §3.1).
		body := strings.Replace(entraCreate, `"Carla.Diaz@example.com"`, `"other@example.com"`, 1)
		if m := want(t, e.do("POST", "/scim/v2/Users", writeTok, body), http.StatusCreated, "", ""); m["externalId"] != "E100" || m["id"] == id {
			t.Errorf("second user with externalId E100: %v", m)
		}
		// Bad input.
		want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"x","password":"short"}`), 400, "invalidValue", "password")
		want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"displayName":"x"}`), 400, "invalidValue", "userName")
		want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":`), 400, "invalidSyntax", "")
		// Okta creates without externalId.
		a = e.do("POST", "/scim/v2/Users", writeTok, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName":"dan@example.com","name":{"givenName":"Dan","familyName":"Ode"},"active":true}`)
		okta := want(t, a, http.StatusCreated, "", "")
		if _, invented := okta["externalId"]; okta["displayName"] != "Dan Ode" || invented {
			t.Errorf("created without externalId or displayName: %s", a.body)
		}

		// A read token may not write.
		want(t, e.do("POST", "/scim/v2/Users", readTok, `{"userName":"eve"}`), http.StatusForbidden, "", "scim:write")
		want(t, e.do("DELETE", "/scim/v2/Users/"+id, readTok, ""), http.StatusForbidden, "", "scim:write")

		// PUT replaces everything; the password is kept when absent.
		hash := e.dbUser(id).PasswordHash
		a = e.do("PUT", "/scim/v2/Users/"+id, writeTok, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName":"carla@example.com","name":{"givenName":"Carla","familyName":"Diaz-Ruiz"},"active":"False",
			"emails":[{"value":"carla@example.com","type":"work","primary":"true"}]}`)
		m = want(t, a, http.StatusOK, "", "")
		if m["userName"] != "carla@example.com" || m["active"] != false || m["displayName"] != "Carla Diaz-Ruiz" ||
			m["phoneNumbers"] != nil || m["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] != nil || m["externalId"] != nil {
			t.Errorf("after PUT: %s", a.body)
		}
		u = e.dbUser(id)
		if u.PasswordHash != hash || u.UserNameKey != "carla@example.com" || len(u.Emails) != 1 || u.Emails[0].Value != "carla@example.com" {
			t.Errorf("stored after PUT: %+v", u)
		}
		var phones int64
		s.DB().Model(&store.PhoneNumber{}).Where("user_id = ?", id).Count(&phones)
		if phones != 0 {
			t.Errorf("%d phone numbers left after PUT", phones)
		}
		etag := a.header.Get("ETag")

		// If-Match.
		stale := `W/"1"`
		want(t, e.do("PUT", "/scim/v2/Users/"+id, writeTok, `{"userName":"carla@example.com"}`, "If-Match", stale), 412, "", "If-Match")
		want(t, e.do("PATCH", "/scim/v2/Users/"+id, writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"displayName","value":"X"}]}`, "If-Match", stale), 412, "", "If-Match")
		want(t, e.do("DELETE", "/scim/v2/Users/"+id, writeTok, "", "If-Match", stale), 412, "", "If-Match")

		// PATCH, Entra shapes.
		a = e.do("PATCH", "/scim/v2/Users/"+id, writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"Replace","path":"displayName","value":"Carla D."},
				{"op":"Replace","path":"active","value":"True"},
				{"op":"replace","value":{"name.givenName":"Carlota"}}]}`, "If-Match", etag)
		m = want(t, a, http.StatusOK, "", "")
		name, _ := m["name"].(map[string]any)
		if m["displayName"] != "Carla D." || m["active"] != true || name["givenName"] != "Carlota" || name["familyName"] != "Diaz-Ruiz" {
			t.Errorf("after PATCH: %s", a.body)
		}
		a = e.do("PATCH", "/scim/v2/Users/"+id, writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
		if m = want(t, a, http.StatusOK, "", ""); m["active"] != false {
			t.Errorf("after PATCH active False: %s", a.body)
		}
		if u = e.dbUser(id); u.Active || u.State != reconcile.StateInactive {
			t.Errorf("stored after deactivation: %+v", u)
		}
		// Okta's path-less replace.
		a = e.do("PATCH", "/scim/v2/Users/"+id, writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","value":{"active":true}}]}`)
		if m = want(t, a, http.StatusOK, "", ""); m["active"] != true {
			t.Errorf("after Okta PATCH: %s", a.body)
		}
		a = e.do("PATCH", "/scim/v2/Users/"+okta["id"].(string), writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","value":{"active":false}}]}`)
		if m = want(t, a, http.StatusOK, "", ""); m["active"] != false {
			t.Errorf("after Okta PATCH: %s", a.body)
		}
		// A PATCH may set a password, hashed.
		a = e.do("PATCH", "/scim/v2/Users/"+id, writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"password","value":"Secret-Pass-2"}]}`)
		want(t, a, http.StatusOK, "", "")
		if ok, _ := password.Verify(e.dbUser(id).PasswordHash, "Secret-Pass-2"); !ok {
			t.Error("the patched password does not verify")
		}
		// A PATCH may not take a login someone holds.
		want(t, e.do("PATCH", "/scim/v2/Users/"+id, writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"userName","value":"BOB"}]}`), http.StatusConflict, "uniqueness", `userName "BOB" is already in use`)

		// Users of another source are read-only.
		anna := e.idOf("anna")
		annaBefore := e.dbUser(anna)
		staffRev := e.revision("staff")
		want(t, e.do("PATCH", "/scim/v2/Users/"+anna, writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"active","value":false}]}`), 400, "mutability", `is owned by source "staff"; only that source changes it`)
		want(t, e.do("PUT", "/scim/v2/Users/"+anna, writeTok, `{"userName":"anna"}`), 400, "mutability", `source "staff"`)
		want(t, e.do("DELETE", "/scim/v2/Users/"+anna, writeTok, ""), 400, "mutability", `source "staff"`)
		// An admin token changes nothing but active there either.
		want(t, e.do("PATCH", "/scim/v2/Users/"+anna, adminTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"displayName","value":"A"}]}`), 400, "mutability", `source "staff"`)
		if u := e.dbUser(anna); u.Version != annaBefore.Version || e.revision("staff") != staffRev {
			t.Fatalf("a refused write changed anna: version %d → %d", annaBefore.Version, u.Version)
		}
		// ... but active, yes (SPEC §4.4), and a later sync keeps it.
		a = e.do("PATCH", "/scim/v2/Users/"+anna, adminTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
		if m = want(t, a, http.StatusOK, "", ""); m["active"] != false || m["userName"] != "anna" {
			t.Errorf("admin PATCH: %s", a.body)
		}
		if u := e.dbUser(anna); u.Active || u.StateReason != reconcile.ReasonAdmin || u.Source != "staff" {
			t.Fatalf("after the admin PATCH: %+v", u)
		}
		ctx := context.Background()
		set := reconcile.Settings{Orphans: reconcile.OrphansDelete, ActivateNew: true, Restore: true}
		if err := s.Apply(ctx, "staff", plan(t, s, "staff", staffRecords(), set, seq()), "fp2"); err != nil {
			t.Fatal(err)
		}
		if u := e.dbUser(anna); u.Active || u.StateReason != reconcile.ReasonAdmin {
			t.Fatalf("a csv sync undid the operator's choice: %+v", u)
		}

		// Delete.
		bob := e.idOf("bob")
		s.DB().Exec(`INSERT INTO groups (id, source, external_id, display_name, display_name_key, version, created_at, updated_at)
			VALUES ('g-idp', 'idp', '', 'Team', 'team', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')`)
		if err := s.DB().Exec(`INSERT INTO memberships (group_id, member_id, member_type) VALUES ('g-idp', ?, 'User'), ('g-idp', ?, 'User')`, id, bob).Error; err != nil {
			t.Fatal(err)
		}
		rev = e.revision("idp")
		want(t, e.do("DELETE", "/scim/v2/Users/"+id, writeTok, ""), http.StatusNoContent, "", "")
		want(t, e.do("GET", "/scim/v2/Users/"+id, readTok, ""), 404, "", "")
		want(t, e.do("DELETE", "/scim/v2/Users/"+id, writeTok, ""), 404, "", "")
		want(t, e.do("PUT", "/scim/v2/Users/"+id, writeTok, `{"userName":"x"}`), 404, "", "")
		if u := e.dbUser(id); u.State != reconcile.StateDeleted || u.Active || u.DeletedAt == nil {
			t.Errorf("after DELETE: %+v", u)
		}
		var members []string
		s.DB().Raw(`SELECT member_id FROM memberships WHERE group_id = 'g-idp'`).Scan(&members)
		if len(members) != 1 || members[0] != bob {
			t.Errorf("memberships after DELETE: %v", members)
		}
		if r := e.revision("idp"); r != rev+1 {
			t.Errorf("idp revision %d → %d", rev, r)
		}
		// The login and the externalId are free again, and a POST creates a
		// new user: it never brings the tombstone back (RFC 7644 §3.6).
		a = e.do("POST", "/scim/v2/Users", writeTok, strings.Replace(entraCreate, "Carla.Diaz@", "carla@", 1))
		if m = want(t, a, http.StatusCreated, "", ""); m["id"] == id || m["externalId"] != "E100" {
			t.Errorf("re-created as %v, want a new id beside the tombstone %s", m["id"], id)
		}
		if u := e.dbUser(id); u.State != reconcile.StateDeleted {
			t.Errorf("the tombstone came back: %+v", u)
		}
		fresh := m["id"].(string)
		// The same with an externalId that only the tombstone holds: the
		// new user has a new id and a new meta.created.
		solo := `{"userName":"solo@example.com","externalId":"E-solo"}`
		m = want(t, e.do("POST", "/scim/v2/Users", writeTok, solo), http.StatusCreated, "", "")
		soloID, soloCreated := m["id"].(string), m["meta"].(map[string]any)["created"]
		time.Sleep(5 * time.Millisecond) // past the stores' precision
		want(t, e.do("DELETE", "/scim/v2/Users/"+soloID, writeTok, ""), http.StatusNoContent, "", "")
		m = want(t, e.do("POST", "/scim/v2/Users", writeTok, solo), http.StatusCreated, "", "")
		if created := m["meta"].(map[string]any)["created"]; m["id"] == soloID || created == soloCreated || m["externalId"] != "E-solo" {
			t.Errorf("re-created as %v created %v, want a new id and created beside the tombstone %s created %v", m["id"], created, soloID, soloCreated)
		}
		if u := e.dbUser(soloID); u.State != reconcile.StateDeleted {
			t.Errorf("the tombstone E-solo came back: %+v", u)
		}

		// Groups are written too (scim_group_write_test.go).
		want(t, e.do("POST", "/scim/v2/Groups", writeTok, `{"members":[]}`), 400, "invalidValue", "displayName is required")

		// Without a scim source.
		e.source = ""
		want(t, e.do("POST", "/scim/v2/Users", writeTok, `{"userName":"z"}`), 501, "", "no source of type scim is configured")
		want(t, e.do("PUT", "/scim/v2/Users/"+fresh, writeTok, `{"userName":"z"}`), 400, "mutability", `owned by source "idp"`)
		want(t, e.do("PATCH", "/scim/v2/Users/"+bob, writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"active","value":false}]}`), 400, "mutability", `owned by source "staff"`)
		want(t, e.do("PATCH", "/scim/v2/Users/"+bob, adminTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","value":{"active":false}}]}`), 200, "", "")

		// Discovery tells PATCH is supported.
		a = e.do("GET", "/scim/v2/ServiceProviderConfig", readTok, "")
		spc := want(t, a, 200, "", "")
		if p, _ := spc["patch"].(map[string]any); p["supported"] != true {
			t.Errorf("ServiceProviderConfig: %s", a.body)
		}
		if p, _ := spc["changePassword"].(map[string]any); p["supported"] != true {
			t.Errorf("ServiceProviderConfig: %s", a.body)
		}
	})
}
