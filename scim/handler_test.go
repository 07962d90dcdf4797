package scim_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimtest"
)

// The Handler's tests run over a real store, SQLite and PostgreSQL,
// through a real HTTP server, mounted the way the daemon mounts it.

const (
	readToken  = "okta-reads-the-directory"
	writeToken = "entra-writes-the-directory"
	adminToken = "the-operator"
	pushToken  = "the-hr-system"
	base       = "https://roster.example.com/scim/v2"
	enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

func hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// spy records what the Handler asks the Directory to load.
type spy struct {
	scim.Directory
	mu       sync.Mutex
	includes []scim.Include
}

func (s *spy) record(inc scim.Include) {
	s.mu.Lock()
	s.includes = append(s.includes, inc)
	s.mu.Unlock()
}

func (s *spy) Users(ctx context.Context, q scim.Query) (*scim.Page[scim.User], error) {
	s.record(q.Include)
	return s.Directory.Users(ctx, q)
}

func (s *spy) Groups(ctx context.Context, q scim.Query) (*scim.Page[scim.Group], error) {
	s.record(q.Include)
	return s.Directory.Groups(ctx, q)
}

func (s *spy) Group(ctx context.Context, id string, inc scim.Include) (*scim.Group, error) {
	s.record(inc)
	return s.Directory.Group(ctx, id, inc)
}

func (s *spy) last() scim.Include {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.includes[len(s.includes)-1]
}

type env struct {
	t      *testing.T
	srv    *httptest.Server
	store  *store.Store
	spy    *spy
	mu     sync.Mutex
	tokens []config.Token
}

// newEnv serves the store's directory as the daemon does.
func newEnv(t *testing.T, s *store.Store, opts ...func(*scim.Options)) *env {
	e := &env{t: t, store: s, spy: &spy{Directory: s.SCIM()}}
	e.tokens = []config.Token{
		{Name: "okta", Hash: hash(readToken), Scopes: []string{config.ScopeSCIMRead}},
		{Name: "entra", Hash: hash(writeToken), Scopes: []string{config.ScopeSCIMWrite}},
		{Name: "operator", Hash: hash(adminToken), Scopes: []string{config.ScopeAdmin}},
		{Name: "hr", Hash: hash(pushToken), Scopes: []string{"push:api"}},
	}
	o := scim.Options{
		Directory: e.spy,
		Authenticator: scim.Tokens(func() []config.Token {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.tokens
		}),
		BaseURL: base,
	}
	for _, f := range opts {
		f(&o)
	}
	mux := http.NewServeMux()
	mux.Handle("/scim/v2/", scim.NewHandler(o))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// object decodes the body as a JSON object.
func (r *response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// list decodes a ListResponse.
func (r *response) list(t *testing.T) listResponse {
	t.Helper()
	var l listResponse
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatalf("body is not a ListResponse: %v\n%s", err, r.body)
	}
	if l.Resources == nil {
		t.Fatalf("Resources is missing or null: %s", r.body)
	}
	return l
}

type listResponse struct {
	Schemas      []string         `json:"schemas"`
	TotalResults *int             `json:"totalResults"`
	ItemsPerPage int              `json:"itemsPerPage"`
	StartIndex   int              `json:"startIndex"`
	NextCursor   string           `json:"nextCursor"`
	Resources    []map[string]any `json:"Resources"`
}

func (l listResponse) ids() []string {
	var ids []string
	for _, r := range l.Resources {
		ids = append(ids, r["id"].(string))
	}
	return ids
}

func names(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if n, ok := scimtest.Names[id]; ok {
			out[i] = n
		} else {
			out[i] = id
		}
	}
	return strings.Join(out, ",")
}

// do sends a request with the token (none when empty) and checks what
// every answer must have: the SCIM content type, and neither a password
// hash nor a password attribute.
func (e *env) do(method, path, token string, body []byte, header ...string) *response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
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
	// A 304 has no body, and so no Content-Type (RFC 7232 §4.1).
	if ct := res.Header.Get("Content-Type"); ct != "application/scim+json" && res.StatusCode != http.StatusNotModified {
		e.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	// The schema describes password; nothing else may mention it.
	if bytes.Contains(b, []byte("argon2")) ||
		!strings.Contains(path, "/Schemas") && bytes.Contains(bytes.ToLower(b), []byte(`"password"`)) {
		e.t.Errorf("%s %s: the answer holds a password: %s", method, path, b)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) get(path string) *response {
	e.t.Helper()
	return e.do("GET", path, readToken, nil)
}

// wantError checks a SCIM error answer (RFC 7644 §3.12).
func wantError(t *testing.T, r *response, status int, scimType string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	m := r.object(t)
	if m["status"] != strconv.Itoa(status) {
		t.Errorf("error status %v, want %q", m["status"], itoa(status))
	}
	if got, _ := m["scimType"].(string); got != scimType {
		t.Errorf("scimType %q, want %q: %s", got, scimType, r.body)
	}
	if s, _ := m["schemas"].([]any); len(s) != 1 || s[0] != schema.ErrorURN {
		t.Errorf("schemas %v", m["schemas"])
	}
	return m
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func q(s string) string { return url.QueryEscape(s) }

func TestListPaging(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		scimtest.Seed(t, s)
		e := newEnv(t, s)
		var all []string
		for start := 1; start <= 9; start += 3 {
			l := e.get("/scim/v2/Users?startIndex=" + itoa(start) + "&count=3").list(t)
			if *l.TotalResults != 8 || l.StartIndex != start || l.ItemsPerPage != len(l.Resources) || l.NextCursor != "" {
				t.Errorf("page at %d: total %d, startIndex %d, itemsPerPage %d for %d resources", start, *l.TotalResults, l.StartIndex, l.ItemsPerPage, len(l.Resources))
			}
			all = append(all, l.ids()...)
		}
		if got := names(all); got != "anna,bob,carl,dora,eve,gina,hans,jurgen" {
			t.Errorf("index pages: %s", got)
		}
		// Defaults, and what RFC 7644 §3.4.2.4 makes of odd values.
		for path, want := range map[string]struct{ total, n, start int }{
			"/scim/v2/Users":                          {8, 8, 1},
			"/scim/v2/Users?startIndex=0&count=2":     {8, 2, 1},
			"/scim/v2/Users?startIndex=-5":            {8, 8, 1},
			"/scim/v2/Users?count=-1":                 {8, 0, 1},
			"/scim/v2/Users?count=0":                  {8, 0, 1},
			"/scim/v2/Users?startIndex=9":             {8, 0, 9},
			"/scim/v2/Users?startIndex=100&count=10":  {8, 0, 100},
			"/scim/v2/Users?STARTINDEX=8&Count=5":     {8, 1, 8},
			"/scim/v2/Users?startIndex=&count=":       {8, 8, 1},
			"/scim/v2/Users?filter=" + q(`id eq "x"`): {0, 0, 1},
			"/scim/v2/Groups?count=2":                 {4, 2, 1},
		} {
			r := e.get(path)
			if r.status != http.StatusOK {
				t.Fatalf("%s: %d %s", path, r.status, r.body)
			}
			l := r.list(t)
			if *l.TotalResults != want.total || len(l.Resources) != want.n || l.ItemsPerPage != want.n || l.StartIndex != want.start {
				t.Errorf("%s: total %d, %d resources, itemsPerPage %d, startIndex %d; want %+v", path, *l.TotalResults, len(l.Resources), l.ItemsPerPage, l.StartIndex, want)
			}
			if !slices.Equal(l.Schemas, []string{schema.ListResponseURN}) {
				t.Errorf("%s: schemas %v", path, l.Schemas)
			}
		}
		for _, path := range []string{"/scim/v2/Users?count=ten", "/scim/v2/Users?startIndex=1.5", "/scim/v2/Users?count=99999999999999999999"} {
			wantError(t, e.get(path), 400, "invalidValue")
		}
	})
}

func TestCountIsCapped(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	scimtest.SeedMany(t, s, "bulk", 1005)
	e := newEnv(t, s)
	l := e.get("/scim/v2/Users?count=5000").list(t)
	if *l.TotalResults != 1005 || len(l.Resources) != 1000 {
		t.Errorf("count=5000: total %d, %d resources; want 1005 and at most 1000", *l.TotalResults, len(l.Resources))
	}
	if l := e.get("/scim/v2/Users?startIndex=101").list(t); len(l.Resources) != 100 || *l.TotalResults != 1005 {
		t.Errorf("default count: %d resources, total %d", len(l.Resources), *l.TotalResults)
	}
}

func TestCursorPaging(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		scimtest.SeedMany(t, s, "bulk", 250)
		e := newEnv(t, s)
		for _, sort := range []string{"", "&sortBy=userName", "&sortBy=meta.created&sortOrder=descending"} {
			seen := map[string]bool{}
			var ids []string
			cursor, pages := "", 0
			for {
				l := e.get("/scim/v2/Users?count=100&cursor=" + q(cursor) + sort).list(t)
				pages++
				if *l.TotalResults != 250 || l.StartIndex != 0 || l.ItemsPerPage != len(l.Resources) {
					t.Fatalf("page %d: total %d, startIndex %d, itemsPerPage %d", pages, *l.TotalResults, l.StartIndex, l.ItemsPerPage)
				}
				for _, id := range l.ids() {
					if seen[id] {
						t.Fatalf("sort %q: %s twice", sort, id)
					}
					seen[id] = true
				}
				ids = append(ids, l.ids()...)
				if l.NextCursor == "" {
					break
				}
				if strings.Trim(l.NextCursor, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != "" {
					t.Errorf("cursor %q has characters outside RFC 3986's unreserved set", l.NextCursor)
				}
				cursor = l.NextCursor
			}
			if pages != 3 || len(ids) != 250 {
				t.Errorf("sort %q: %d pages, %d users; want 3 and 250", sort, pages, len(ids))
			}
			if strings.Contains(sort, "descending") {
				slices.Reverse(ids)
			}
			for i, id := range ids {
				if want := "01900000-0000-7000-8000-" + strings.Repeat("0", 9) + itoa3(i+1); id != want {
					t.Fatalf("sort %q: user %d is %s, want %s", sort, i, id, want)
				}
			}
		}
		// A cursor must come from this server, and from the same query.
		wantError(t, e.get("/scim/v2/Users?cursor=not-a-cursor"), 400, "invalidCursor")
		l := e.get("/scim/v2/Users?cursor=&count=10").list(t)
		wantError(t, e.get("/scim/v2/Users?count=10&sortBy=userName&cursor="+q(l.NextCursor)), 400, "invalidCursor")
		wantError(t, e.get("/scim/v2/Users?count=10&filter="+q("userName pr")+"&cursor="+q(l.NextCursor)), 400, "invalidCursor")
		wantError(t, e.get("/scim/v2/Users?cursor=&startIndex=1"), 400, "invalidValue")
		// The same cursor with another count is fine.
		if l2 := e.get("/scim/v2/Users?count=5&cursor=" + q(l.NextCursor)).list(t); l2.ids()[0] != "01900000-0000-7000-8000-000000000011" {
			t.Errorf("second page starts at %s", l2.ids()[0])
		}
		// count=0 asks for the total only.
		if l := e.get("/scim/v2/Users?cursor=&count=0").list(t); *l.TotalResults != 250 || len(l.Resources) != 0 || l.NextCursor != "" {
			t.Errorf("count=0: %+v", l)
		}
	})
}

func itoa3(n int) string {
	s := itoa(n)
	return strings.Repeat("0", 3-len(s)) + s
}

func TestSorting(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		scimtest.Seed(t, s)
		e := newEnv(t, s)
		for path, want := range map[string]string{
			"/scim/v2/Users?sortBy=userName":                                   "anna,bob,carl,dora,eve,gina,hans,jurgen",
			"/scim/v2/Users?sortBy=userName&sortOrder=descending":              "jurgen,hans,gina,eve,dora,carl,bob,anna",
			"/scim/v2/Users?sortBy=name.familyName":                            "anna,hans,jurgen,gina,carl,bob,dora,eve",
			"/scim/v2/Users?sortBy=NAME.FAMILYNAME&sortOrder=Descending":       "eve,dora,bob,carl,gina,jurgen,hans,anna",
			"/scim/v2/Users?sortBy=emails":                                     "anna,bob,carl,dora,gina,jurgen,eve,hans",
			"/scim/v2/Users?sortBy=emails.value":                               "anna,bob,carl,dora,gina,jurgen,eve,hans",
			"/scim/v2/Users?sortBy=meta.lastModified":                          "anna,bob,dora,eve,hans,jurgen,carl,gina",
			"/scim/v2/Users?sortBy=" + q(schema.UserURN+":externalId"):         "anna,bob,dora,eve,gina,jurgen,hans,carl",
			"/scim/v2/Users?sortOrder=descending":                              "anna,bob,carl,dora,eve,gina,hans,jurgen",
			"/scim/v2/Users?sortBy=displayName&count=3&startIndex=4":           "dora,eve,gina",
			"/scim/v2/Groups?sortBy=displayName":                               "berlin,empty,research,sales",
			"/scim/v2/Groups?sortBy=externalId&sortOrder=descending":           "berlin,empty,sales,research",
			"/scim/v2/Users?filter=" + q("department pr") + "&sortBy=userName": "anna,bob,carl,eve,gina,jurgen",
			"/scim/v2/Users?sortBy=phoneNumbers":                               "bob,eve,anna,carl,dora,gina,hans,jurgen",
			"/scim/v2/Users?sortBy=" + q(enterprise+":department"):             "jurgen,eve,anna,carl,gina,bob,dora,hans",
		} {
			r := e.get(path)
			if r.status != 200 {
				t.Fatalf("%s: %d %s", path, r.status, r.body)
			}
			if got := names(r.list(t).ids()); got != want {
				t.Errorf("%s\n got  %s\n want %s", path, got, want)
			}
		}
		for _, path := range []string{
			"/scim/v2/Users?sortBy=" + q("userName;DROP TABLE users"),
			"/scim/v2/Users?sortBy=password",
			"/scim/v2/Users?sortBy=groups",
			"/scim/v2/Users?sortBy=meta.location",
			"/scim/v2/Users?sortBy=name",
			"/scim/v2/Users?sortBy=shoeSize",
			"/scim/v2/Groups?sortBy=userName",
			"/scim/v2/Users?sortBy=userName&sortOrder=sideways",
		} {
			m := wantError(t, e.get(path), 400, "invalidValue")
			if !strings.Contains(m["detail"].(string), "sort") {
				t.Errorf("%s: detail %q", path, m["detail"])
			}
		}
		if l := e.get("/scim/v2/Users").list(t); *l.TotalResults != 8 {
			t.Fatalf("the users table suffered: %+v", l)
		}
	})
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

func TestAttributes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		scimtest.Seed(t, s)
		e := newEnv(t, s)
		anna := "/scim/v2/Users/" + scimtest.Anna
		for path, want := range map[string]string{
			anna:                          "active,displayName,emails,externalId,groups,id,meta,name,phoneNumbers,schemas," + enterprise + ",userName",
			anna + "?attributes=userName": "id,schemas,userName",
			anna + "?attributes=USERNAME,id,password":                                     "id,schemas,userName",
			anna + "?attributes=" + q(schema.UserURN+":userName"):                         "id,schemas,userName",
			anna + "?attributes=name.givenName,emails.value":                              "emails,id,name,schemas",
			anna + "?attributes=" + q(enterprise):                                         "id,schemas," + enterprise,
			anna + "?attributes=" + q(enterprise+":department"):                           "id,schemas," + enterprise,
			anna + "?attributes=meta.version":                                             "id,meta,schemas",
			anna + "?attributes=nickName":                                                 "id,schemas",
			anna + "?excludedAttributes=emails,meta,groups,phoneNumbers," + q(enterprise): "active,displayName,externalId,id,name,schemas,userName",
			anna + "?excludedAttributes=id,schemas,password":                              "active,displayName,emails,externalId,groups,id,meta,name,phoneNumbers,schemas," + enterprise + ",userName",
		} {
			r := e.get(path)
			if r.status != 200 {
				t.Fatalf("%s: %d %s", path, r.status, r.body)
			}
			if got := keys(r.object(t)); got != want {
				t.Errorf("%s\n got  %s\n want %s", path, got, want)
			}
		}
		m := e.get(anna + "?attributes=name.givenName,emails.value," + q(enterprise+":department")).object(t)
		if got := keys(m["name"].(map[string]any)); got != "givenName" {
			t.Errorf("name: %s", got)
		}
		for _, em := range m["emails"].([]any) {
			if got := keys(em.(map[string]any)); got != "value" {
				t.Errorf("email: %s", got)
			}
		}
		if got := keys(m[enterprise].(map[string]any)); got != "department" {
			t.Errorf("enterprise: %s", got)
		}
		if got := m["schemas"].([]any); len(got) != 2 || got[1] != enterprise {
			t.Errorf("schemas %v: the extension's URN belongs there when the extension is", got)
		}
		m = e.get(anna + "?attributes=userName").object(t)
		if got := m["schemas"].([]any); len(got) != 1 || got[0] != schema.UserURN {
			t.Errorf("schemas %v: the extension's URN does not belong there without the extension", got)
		}
		m = e.get(anna + "?excludedAttributes=name.familyName,meta.location").object(t)
		if got := keys(m["name"].(map[string]any)); got != "formatted,givenName" {
			t.Errorf("name without familyName: %s", got)
		}
		if _, ok := m["meta"].(map[string]any)["location"]; ok {
			t.Errorf("meta.location was excluded: %v", m["meta"])
		}
		// Lists and searches apply them too.
		l := e.get("/scim/v2/Users?attributes=userName&count=2").list(t)
		for _, r := range l.Resources {
			if got := keys(r); got != "id,schemas,userName" {
				t.Errorf("list with attributes=userName: %s", got)
			}
		}
		if inc := e.spy.last(); inc.Emails || inc.Groups || inc.PhoneNumbers {
			t.Errorf("attributes=userName loaded %+v", inc)
		}

		// excludedAttributes=members does not even load them.
		r := e.get("/scim/v2/Groups?excludedAttributes=members")
		for _, g := range r.list(t).Resources {
			if _, ok := g["members"]; ok {
				t.Errorf("group %v has members", g["displayName"])
			}
		}
		if e.spy.last().Members {
			t.Error("excludedAttributes=members loaded the members")
		}
		r = e.get("/scim/v2/Groups/" + scimtest.Research + "?excludedAttributes=members")
		if _, ok := r.object(t)["members"]; ok || e.spy.last().Members {
			t.Errorf("excludedAttributes=members on one group: %s", r.body)
		}
		if e.get("/scim/v2/Groups?attributes=displayName").status != 200 || e.spy.last().Members {
			t.Error("attributes=displayName loaded the members")
		}
		m = e.get("/scim/v2/Groups/" + scimtest.Research).object(t)
		members := m["members"].([]any)
		if len(members) != 4 {
			t.Fatalf("research members: %v", members)
		}
		nested := members[3].(map[string]any)
		if nested["type"] != "Group" || nested["$ref"] != base+"/Groups/"+scimtest.BerlinLab || nested["display"] != "Berlin Lab" {
			t.Errorf("nested member %v", nested)
		}
		if first := members[0].(map[string]any); first["$ref"] != base+"/Users/"+scimtest.Anna || first["type"] != "User" {
			t.Errorf("member %v", first)
		}
	})
}

func TestETag(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		scimtest.Seed(t, s)
		e := newEnv(t, s)
		for path, etag := range map[string]string{
			"/scim/v2/Users/" + scimtest.Anna: `W/"3"`, "/scim/v2/Groups/" + scimtest.Empty: `W/"2"`,
		} {
			r := e.get(path)
			if r.status != 200 || r.header.Get("ETag") != etag {
				t.Fatalf("%s: %d, ETag %q", path, r.status, r.header.Get("ETag"))
			}
			if v := r.object(t)["meta"].(map[string]any)["version"]; v != etag {
				t.Errorf("%s: meta.version %v, ETag %s", path, v, etag)
			}
			strong := strings.TrimPrefix(etag, "W/")
			for inm, status := range map[string]int{
				etag: 304, strong: 304, `W/"1", ` + etag: 304, "*": 304, `W/"9"`: 200, `"9"`: 200,
			} {
				r := e.do("GET", path, readToken, nil, "If-None-Match", inm)
				if r.status != status {
					t.Errorf("%s If-None-Match %s: %d, want %d", path, inm, r.status, status)
				}
				if status == 304 && (len(r.body) != 0 || r.header.Get("ETag") != etag) {
					t.Errorf("%s: 304 with body %q and ETag %q", path, r.body, r.header.Get("ETag"))
				}
			}
			if r := e.do("HEAD", path, readToken, nil); r.status != 200 || len(r.body) != 0 || r.header.Get("ETag") != etag {
				t.Errorf("HEAD %s: %d, ETag %q, %d bytes", path, r.status, r.header.Get("ETag"), len(r.body))
			}
		}
	})
}

func TestNotFoundAndMethods(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		scimtest.Seed(t, s)
		e := newEnv(t, s)
		for _, path := range []string{
			"/scim/v2/Users/" + scimtest.Frank, // a tombstone
			"/scim/v2/Users/no-such-user",
			"/scim/v2/Groups/" + scimtest.Anna,
			"/scim/v2/Nothing",
			"/scim/v2/Users/" + scimtest.Anna + "/emails",
			"/scim/v2/",
			"/scim/v2/Schemas/urn:nope",
			"/scim/v2/ResourceTypes/Device",
		} {
			m := wantError(t, e.get(path), 404, "")
			if d, _ := m["detail"].(string); d == "" {
				t.Errorf("%s: no detail", path)
			}
		}
		// An inactive user is still there.
		if r := e.get("/scim/v2/Users/" + scimtest.Bob); r.status != 200 || r.object(t)["active"] != false {
			t.Errorf("inactive user: %d %s", r.status, r.body)
		}
		for _, tc := range []struct {
			method, path string
			status       int
			allow        string
		}{
			{"DELETE", "/scim/v2/ServiceProviderConfig", 405, "GET, HEAD"},
			{"POST", "/scim/v2/Schemas", 405, "GET, HEAD"},
			{"PUT", "/scim/v2/Users", 405, "GET, HEAD, POST"},
			{"DELETE", "/scim/v2/Groups", 405, "GET, HEAD, POST"},
			{"GET", "/scim/v2/Users/.search", 405, "POST"},
			{"POST", "/scim/v2/Users/" + scimtest.Anna, 405, "GET, HEAD, PUT, PATCH, DELETE"},
			{"POST", "/scim/v2/Users", 501, ""},
			{"PUT", "/scim/v2/Users/" + scimtest.Anna, 501, ""},
			{"PATCH", "/scim/v2/Groups/" + scimtest.Research, 501, ""},
			{"DELETE", "/scim/v2/Users/" + scimtest.Anna, 501, ""},
			{"POST", "/scim/v2/Bulk", 501, ""},
			{"GET", "/scim/v2/Me", 501, ""},
		} {
			r := e.do(tc.method, tc.path, writeToken, []byte(`{}`))
			wantError(t, r, tc.status, "")
			if r.header.Get("Allow") != tc.allow {
				t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, r.header.Get("Allow"), tc.allow)
			}
		}
		// Nothing was written.
		if l := e.get("/scim/v2/Users").list(t); *l.TotalResults != 8 {
			t.Errorf("%d users", *l.TotalResults)
		}
	})
}

func TestInvalidFilter(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		scimtest.Seed(t, s)
		e := newEnv(t, s)
		for f, detail := range map[string]string{
			`userName eq`:                     "position 11",
			`userName eq "x" and`:             "position",
			`(userName eq "x"`:                "position",
			`shoeSize eq "x"`:                 `position 0: User has no attribute "shoeSize"`,
			`userName eq "x" or shoeSize pr`:  `position 19`,
			`password eq "secret"`:            "write-only",
			`active eq "yes"`:                 "boolean",
			`active gt true`:                  "position",
			`meta.created gt "last tuesday"`:  "dateTime",
			`name eq "Anna"`:                  "complex",
			`emails[label eq "x"]`:            `"emails" has no sub-attribute "label"`,
			`userName[value eq "x"]`:          "not a complex attribute",
			`meta.location eq "x"`:            "cannot be used in a filter",
			`groups.$ref eq "x"`:              "cannot be used in a filter",
			`userName eq "x" and not (pr pr)`: "position",
		} {
			m := wantError(t, e.get("/scim/v2/Users?filter="+q(f)), 400, "invalidFilter")
			if d, _ := m["detail"].(string); !strings.Contains(d, detail) {
				t.Errorf("filter %s: detail %q, want it to hold %q", f, d, detail)
			}
		}
		wantError(t, e.get("/scim/v2/Groups?filter="+q(`userName eq "x"`)), 400, "invalidFilter")
		// Filters of the kind identity providers send work.
		for f, want := range map[string]string{
			`userName eq "ANNA.BERG"`:                            "anna",
			`emails[type eq "work" and value ew "@example.com"]`: "anna,bob,carl,gina",
			enterprise + `:department eq "Research"`:             "anna,carl",
			`active eq false`:                                    "bob",
			`userName eq "x\" or 1=1 --"`:                        "",
			`userName eq "x' OR '1'='1"`:                         "",
			`displayName co "%"`:                                 "dora",
		} {
			if got := names(e.get("/scim/v2/Users?filter=" + q(f)).list(t).ids()); got != want {
				t.Errorf("filter %s: %s, want %s", f, got, want)
			}
		}
		if l := e.get("/scim/v2/Users?filter=").list(t); *l.TotalResults != 8 {
			t.Errorf("an empty filter selects everything: %d", *l.TotalResults)
		}
	})
}

func TestDiscovery(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	e := newEnv(t, s)
	m := e.get("/scim/v2/ServiceProviderConfig").object(t)
	if p := m["pagination"].(map[string]any); p["cursor"] != true || p["index"] != true {
		t.Errorf("pagination %v", p)
	}
	if m["patch"].(map[string]any)["supported"] != false {
		t.Errorf("patch %v: PATCH answers 501 for now", m["patch"])
	}
	if m["meta"].(map[string]any)["location"] != base+"/ServiceProviderConfig" {
		t.Errorf("meta %v", m["meta"])
	}
	l := e.get("/scim/v2/ResourceTypes").list(t)
	if *l.TotalResults != 2 || l.Resources[0]["id"] != "User" || l.Resources[1]["endpoint"] != "/Groups" {
		t.Errorf("ResourceTypes %+v", l)
	}
	if m := e.get("/scim/v2/ResourceTypes/Group").object(t); m["schema"] != schema.GroupURN {
		t.Errorf("ResourceTypes/Group %v", m)
	}
	l = e.get("/scim/v2/Schemas").list(t)
	if *l.TotalResults != 4 || l.Resources[1]["id"] != enterprise || l.Resources[3]["id"] != schema.RosterGroupURN {
		t.Errorf("Schemas %+v", l)
	}
	for _, id := range []string{schema.UserURN, strings.ToLower(enterprise), schema.GroupURN, schema.RosterGroupURN} {
		if m := e.get("/scim/v2/Schemas/" + id).object(t); !strings.EqualFold(m["id"].(string), id) {
			t.Errorf("Schemas/%s: %v", id, m["id"])
		}
	}
	// Lower-case endpoint names and a trailing slash are understood.
	if r := e.get("/scim/v2/serviceproviderconfig/"); r.status != 200 {
		t.Errorf("lower-case endpoint: %d", r.status)
	}
}

func TestEntraQueryFlagIgnored(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		scimtest.Seed(t, s)
		e := newEnv(t, s)
		plain := e.get("/scim/v2/Users?filter=" + q(`userName eq "carl"`))
		flagged := e.get("/scim/v2/Users?aadOptscim062020&filter=" + q(`userName eq "carl"`))
		if plain.status != 200 || !bytes.Equal(plain.body, flagged.body) {
			t.Errorf("?aadOptscim062020 changed the answer:\n%s\n%s", plain.body, flagged.body)
		}
		if r := e.get("/scim/v2/Users/" + scimtest.Carl + "?aadOptscim062020"); r.status != 200 {
			t.Errorf("GET one user with the flag: %d", r.status)
		}
	})
}

func TestSearch(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		scimtest.Seed(t, s)
		e := newEnv(t, s, func(o *scim.Options) { o.MaxBodyBytes = 4096 })
		body := `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
			"attributes": ["displayName", "userName"], "filter": "department eq \"Research\" or active eq false",
			"sortBy": "userName", "sortOrder": "descending", "startIndex": 1, "count": 10}`
		r := e.do("POST", "/scim/v2/Users/.search", readToken, []byte(body))
		if r.status != 200 {
			t.Fatalf("search: %d %s", r.status, r.body)
		}
		l := r.list(t)
		if got := names(l.ids()); got != "carl,bob,anna" || *l.TotalResults != 3 {
			t.Errorf("search: %s, total %d", got, *l.TotalResults)
		}
		for _, res := range l.Resources {
			if got := keys(res); got != "displayName,id,schemas,userName" {
				t.Errorf("search with attributes: %s", got)
			}
		}
		// The same as GET with query parameters.
		g := e.get("/scim/v2/Users?attributes=displayName,userName&sortBy=userName&sortOrder=descending&startIndex=1&count=10&filter=" +
			q(`department eq "Research" or active eq false`))
		if !bytes.Equal(g.body, r.body) {
			t.Errorf("POST .search and GET differ:\n%s\n%s", r.body, g.body)
		}
		// application/json is fine, a cursor too; groups can be searched.
		r = e.do("POST", "/scim/v2/Groups/.search", readToken, []byte(`{"cursor": "", "count": 2, "excludedAttributes": ["members"]}`),
			"Content-Type", "application/json")
		if l := r.list(t); r.status != 200 || names(l.ids()) != "research,sales" || l.NextCursor == "" || e.spy.last().Members {
			t.Errorf("group search: %d %s", r.status, r.body)
		}
		wantError(t, e.do("POST", "/scim/v2/Users/.search", readToken, []byte(`{"filter": "userName eq"}`)), 400, "invalidFilter")
		wantError(t, e.do("POST", "/scim/v2/Users/.search", readToken, []byte(`{"filter": `)), 400, "invalidSyntax")
		wantError(t, e.do("POST", "/scim/v2/Users/.search", readToken, []byte(`{"count": "ten"}`)), 400, "invalidSyntax")
		wantError(t, e.do("POST", "/scim/v2/Users/.search", readToken, []byte(`{"schemas": ["urn:x"]}`)), 400, "invalidSyntax")
		wantError(t, e.do("POST", "/scim/v2/Users/.search", readToken, []byte(`{}`), "Content-Type", "text/plain"), 415, "")
		big := `{"filter": "userName eq \"` + strings.Repeat("x", 5000) + `\""}`
		m := wantError(t, e.do("POST", "/scim/v2/Users/.search", readToken, []byte(big)), 413, "")
		if !strings.Contains(m["detail"].(string), "4 KiB") {
			t.Errorf("413 detail %q", m["detail"])
		}
	})
}

// TestBodyLimitFromCaller: a body bounded by the daemon's
// http.MaxBytesReader is answered with 413 too.
func TestBodyLimitFromCaller(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	h := scim.NewHandler(scim.Options{
		Directory:     s.SCIM(),
		Authenticator: func(string) (scim.Principal, bool) { return scim.Principal{Scopes: []string{"scim:read"}}, true },
	})
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 100)
		h.ServeHTTP(w, r)
	})
	req := httptest.NewRequest("POST", "/scim/v2/Users/.search", strings.NewReader(`{"filter": "`+strings.Repeat("a", 200)+`"}`))
	req.Header.Set("Authorization", "Bearer x")
	rec := httptest.NewRecorder()
	limited.ServeHTTP(rec, req)
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), `"413"`) {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

// TestLocationFromRequest: without a configured BaseURL, locations come
// from the request.
func TestLocationFromRequest(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	scimtest.Seed(t, s)
	var observed []string
	h := scim.NewHandler(scim.Options{
		Directory:     s.SCIM(),
		Authenticator: func(string) (scim.Principal, bool) { return scim.Principal{Scopes: []string{"scim:read"}}, true },
		Observe: func(method, resource string, status int, _ time.Duration) {
			observed = append(observed, method+" "+resource+" "+itoa(status))
		},
	})
	req := httptest.NewRequest("GET", "http://roster.internal:8080/scim/v2/Users/"+scimtest.Anna, nil)
	req.Header.Set("Authorization", "Bearer x")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var u scim.User
	if err := json.Unmarshal(rec.Body.Bytes(), &u); err != nil {
		t.Fatal(err)
	}
	if u.Meta.Location != "http://roster.internal:8080/scim/v2/Users/"+scimtest.Anna ||
		u.Groups[0].Ref != "http://roster.internal:8080/scim/v2/Groups/"+scimtest.Research {
		t.Errorf("location %q, group $ref %q", u.Meta.Location, u.Groups[0].Ref)
	}
	if !slices.Equal(observed, []string{"GET Users 200"}) {
		t.Errorf("observed %q", observed)
	}
}
