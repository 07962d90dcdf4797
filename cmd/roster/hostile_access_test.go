package main

// Tokens of the wrong scope on every route, slow clients, and the search
// for leaked secrets.

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostileScopes sends every route every kind of token: 401 (with
// WWW-Authenticate) without a token or with an unknown one, 403 with a
// valid token that lacks the scope, the route's success otherwise.
func hostileScopes(t *testing.T, h *hostileEnv) {
	u, g := h.victims(t)
	tokens := []struct{ name, tok string }{
		{"none", ""}, {"unknown", hTokUnknown}, {"scim:read", hTokRead}, {"scim:write", hTokWrite},
		{"admin", hTokAdmin}, {"push:api", hTokPushAPI}, {"push:*", hTokPushAll},
	}
	// want per token, in the order above; 0 is "any 2xx".
	scimRead := []int{401, 401, 200, 200, 200, 403, 403}
	scimWrite := func(ok int) []int { return []int{401, 401, 403, ok, ok, 403, 403} }
	adminAPI := func(ok int) []int { return []int{401, 401, 403, 403, ok, 403, 403} }
	push := func(ok int) []int { return []int{401, 401, 403, 403, 403, ok, ok} }
	n := 0
	fresh := func() string { // a new SCIM user to delete
		n++
		r := h.do(t, "POST", "/scim/v2/Users", hTokWrite, scimUser(fmt.Sprintf("doomed%d", n), ""), nil)
		var x struct{ ID string }
		if r.code != 201 || json.Unmarshal(r.body, &x) != nil {
			t.Fatalf("create a user: %s", r)
		}
		return x.ID
	}
	type route struct {
		method, path string
		body         func() string
		want         []int
		shape        string
	}
	none := func() string { return "" }
	fixed := func(s string) func() string { return func() string { return s } }
	search := fixed(`{"schemas":["` + srchSchema + `"],"count":1}`)
	pushBody := fixed(`{"dataType":"user","records":[{"uid":"scope1","username":"scope1","email":"scope1@example.com"}]}`)
	var routes []route
	for _, p := range []string{"/scim/v2/Users", "/scim/v2/Groups", "/scim/v2/Users/" + u, "/scim/v2/Groups/" + g,
		"/scim/v2/ServiceProviderConfig", "/scim/v2/ResourceTypes", "/scim/v2/ResourceTypes/User", "/scim/v2/Schemas",
		"/scim/v2/Schemas/" + userSchema} {
		routes = append(routes, route{"GET", p, none, scimRead, "scim"})
	}
	routes = append(routes,
		route{"POST", "/scim/v2/Users/.search", search, scimRead, "scim"},
		route{"POST", "/scim/v2/Groups/.search", search, scimRead, "scim"},
		route{"POST", "/scim/v2/Users", func() string { n++; return scimUser(fmt.Sprintf("scoped%d", n), "") }, scimWrite(201), "scim"},
		route{"PUT", "/scim/v2/Users/" + u, fixed(scimUser("victim", `,"name":{"givenName":"Vic","familyName":"Tim"}`)), scimWrite(200), "scim"},
		route{"PATCH", "/scim/v2/Users/" + u, fixed(scimPatch("displayName", `"Target"`)), scimWrite(200), "scim"},
		route{"DELETE", "/scim/v2/Users/{fresh}", none, scimWrite(204), "scim"},
		route{"POST", "/scim/v2/Groups", func() string { n++; return fmt.Sprintf(`{"schemas":["%s"],"displayName":"team%d"}`, groupSchema, n) }, scimWrite(201), "scim"},
		route{"PATCH", "/scim/v2/Groups/" + g, fixed(scimPatch("displayName", `"victims"`)), scimWrite(200), "scim"},
		route{"GET", "/api/v1/sources", none, adminAPI(200), "api"},
		route{"GET", "/api/v1/tasks", none, adminAPI(200), "api"},
		route{"GET", "/api/v1/tasks/1", none, adminAPI(200), "api"},
		route{"POST", "/api/v1/sources/staff/sync", none, adminAPI(0), "api"},
		route{"PUT", "/api/v1/sources/staff/file", fixed(hostileStaff()), adminAPI(0), "api"},
		route{"POST", "/api/v1/tasks/1/retry", none, adminAPI(409), "api"},
		route{"POST", "/api/v1/tasks/1/approve", none, adminAPI(409), "api"},
		route{"POST", "/api/v1/tasks/1/reject", none, adminAPI(409), "api"},
		route{"PATCH", "/api/v1/users/" + u, fixed(`{"active":true}`), adminAPI(200), "api"},
		route{"POST", "/api/v1/sources/api/push", pushBody, push(202), "api"},
		route{"POST", "/api/userData:push", pushBody, push(0), "nocobase"},
	)
	for _, rt := range routes {
		for i, tk := range tokens {
			hostileTried.Add(1)
			path := rt.path
			if strings.Contains(path, "{fresh}") {
				id := fresh()
				path = strings.Replace(path, "{fresh}", id, 1)
			}
			var body any
			if b := rt.body(); b != "" {
				body = b
			}
			r := h.do(t, rt.method, path, tk.tok, body, nil)
			want := rt.want[i]
			what := fmt.Sprintf("%s %s with token %s", rt.method, rt.path, tk.name)
			switch {
			case want == 0:
				if r.code < 200 || r.code > 299 {
					t.Errorf("%s: got %s, want 2xx", what, r)
				}
			case want >= 400:
				refused(t, what, bodyRoute{shape: rt.shape}, r, want, "")
				if want == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: 401 without WWW-Authenticate: Bearer (%q)", what, r.header.Get("WWW-Authenticate"))
				}
				if want == 403 && !strings.Contains(r.header.Get("WWW-Authenticate"), "insufficient_scope") {
					t.Errorf("%s: 403 without WWW-Authenticate error=\"insufficient_scope\" (%q)", what, r.header.Get("WWW-Authenticate"))
				}
			case r.code != want:
				t.Errorf("%s: got %s, want %d", what, r, want)
			}
		}
	}
	// The admin page: the login form takes only admin tokens, and only
	// its session cookie opens the page; a bearer header does not.
	loginWant := []int{401, 401, 403, 403, 303, 403, 403}
	for i, tk := range tokens {
		hostileTried.Add(3)
		r := h.do(t, "POST", "/admin/login", "", "token="+url.QueryEscape(tk.tok), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		if r.code != loginWant[i] {
			t.Errorf("POST /admin/login with token %s: got %d, want %d", tk.name, r.code, loginWant[i])
		}
		if r = h.do(t, "GET", "/admin", tk.tok, nil, nil); r.code != 303 || r.header.Get("Location") != "/admin/login" {
			t.Errorf("GET /admin with a bearer %s: got %d to %q, want 303 to /admin/login", tk.name, r.code, r.header.Get("Location"))
		}
		// A cookie made of the token itself is no session.
		cookie := "roster_admin=" + base64.RawURLEncoding.EncodeToString([]byte(tk.tok))
		if r = h.do(t, "GET", "/admin", "", nil, map[string]string{"Cookie": cookie}); r.code != 303 {
			t.Errorf("GET /admin with the encoded token %s as cookie: got %d, want 303", tk.name, r.code)
		}
	}
	login := h.do(t, "POST", "/admin/login", "", "token="+url.QueryEscape(hTokAdmin), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	session, _, _ := strings.Cut(login.header.Get("Set-Cookie"), ";")
	if r := h.do(t, "GET", "/admin", "", nil, map[string]string{"Cookie": session}); r.code != 200 {
		t.Errorf("GET /admin with the admin's session: got %d, want 200", r.code)
	}
	// Health and metrics are open to all.
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		for _, tk := range tokens {
			if r := h.do(t, "GET", p, tk.tok, nil, nil); r.code != 200 {
				t.Errorf("GET %s with token %s: %s", p, tk.name, r)
			}
		}
	}
}

// hostileSlowClients: a client that sends its headers a byte at a time
// is cut off by the header timeout (10s), while others are served.
func hostileSlowClients(t *testing.T, h *hostileEnv) {
	hostileTried.Add(1)
	addr := strings.TrimPrefix(h.p.base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, bufio.NewReader(conn))
		closed <- err
	}()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: roster\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			d := time.Since(start)
			t.Logf("the slow client was cut off after %s", d.Round(time.Millisecond))
			if d < 9*time.Second || d > 20*time.Second {
				t.Errorf("the slow client was cut off after %s, want the 10s header timeout", d)
			}
			return
		case <-tick.C:
			if time.Since(start) > 30*time.Second {
				t.Fatal("a client sending its headers a byte at a time is still connected after 30s")
			}
			conn.Write([]byte("a")) //nolint:errcheck // the server may have closed it
		}
	}
}

// hostileSecrets runs writes that carry passwords, then looks for clear
// passwords, password hashes and tokens in every answer of the suite, in
// the daemon's log and in the raw records.
func hostileSecrets(t *testing.T, h *hostileEnv) {
	u, _ := h.victims(t)
	// Passwords through every door.
	if r := h.do(t, "PATCH", "/scim/v2/Users/"+u, hTokWrite, scimPatch("password", `"`+hPwSCIMv2+`"`), nil); r.code != 200 {
		t.Errorf("PATCH password: %s", r)
	}
	if r := h.do(t, "GET", "/scim/v2/Users/"+u+"?attributes=password,userName", hTokRead, nil, nil); r.code != 200 || strings.Contains(string(r.body), "password") {
		t.Errorf("GET with attributes=password: %s", r)
	}
	if r := h.do(t, "POST", "/scim/v2/Users/.search", hTokRead, `{"schemas":["`+srchSchema+`"],"filter":"password eq \"`+hPwSCIM+`\""}`, nil); r.code != 400 {
		t.Errorf("a filter on password: %s", r)
	}
	upload := hostileStaff() + csvOf([]person{{ID: "00004", First: "Up", Last: "Load", Login: "upload", Password: hPwUpload}})
	r := h.do(t, "PUT", "/api/v1/sources/staff/file", hTokAdmin, upload, nil)
	if r.code/100 != 2 {
		t.Fatalf("upload with a password: %s", r)
	}
	if st := h.waitTaskDone(t, taskIDOf(t, r)); st != "succeeded" {
		t.Errorf("the upload's task: %s", st)
	}
	// A too-short password is refused without being echoed.
	if r := h.do(t, "PUT", "/api/v1/sources/staff/file", hTokAdmin, upload+"5,Short,Pw,short,,,Kurz7!\n", nil); r.code != 400 || strings.Contains(string(r.body), "Kurz7!") {
		t.Errorf("a short password: %s", r)
	}
	if r := h.do(t, "POST", "/scim/v2/Users", hTokWrite, scimUser("shorty", `,"password":"Kurz8?"`), nil); r.code != 400 || strings.Contains(string(r.body), "Kurz8?") {
		t.Errorf("a short SCIM password: %s", r)
	}
	// A SCIM write with a bad field next to a password.
	if r := h.do(t, "POST", "/scim/v2/Users", hTokWrite, scimUser("badmail", `,"password":"`+hPwSCIM+`","emails":[{"value":"not an address"}],"active":"maybe"`), nil); r.code != 400 {
		t.Errorf("a bad SCIM write with a password: %s", r)
	}

	needles := []string{hPwCSV1, hPwCSV2, hPwSCIM, hPwSCIMv2, hPwUpload, "Kurz7!", "Kurz8?",
		hTokRead, hTokWrite, hTokAdmin, hTokPushAPI, hTokPushAll, hTokUnknown}
	hashes := []string{"$argon2id$", "$argon2i$", "$2a$", "$2b$", "$2y$", "$scrypt$", "$pbkdf2"}
	h.mu.Lock()
	transcript := h.transcript.String()
	h.mu.Unlock()
	logs := h.p.stderr.String()
	for _, s := range append(needles, hashes...) {
		hostileTried.Add(1)
		if strings.Contains(transcript, s) {
			t.Errorf("%q appears in an HTTP answer", s)
		}
		if strings.Contains(logs, s) {
			t.Errorf("%q appears in the daemon's log", s)
		}
	}
	// Nor encoded: the admin page's session cookie is signed, not the token.
	for _, tok := range []string{hTokAdmin} {
		if enc := base64.RawURLEncoding.EncodeToString([]byte(tok)); strings.Contains(transcript, enc) {
			t.Errorf("the token appears base64-encoded in an HTTP answer")
		}
	}
	raws := 0
	err := filepath.WalkDir(h.w.path("log"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		raws++
		for _, s := range needles {
			if strings.Contains(string(b), s) {
				t.Errorf("%q appears in %s", s, path)
			}
		}
		if !strings.HasSuffix(path, ".csv") { // raw CSV records keep hashes by design (SPEC §5)
			for _, s := range hashes {
				if strings.Contains(string(b), s) {
					t.Errorf("the hash prefix %q appears in %s", s, path)
				}
			}
		} else if strings.Contains(string(b), "upload,") && !strings.Contains(string(b), "$argon2id$") {
			t.Errorf("the raw record %s of the upload does not hold the password's hash", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if raws < 3 {
		t.Errorf("only %d raw records: the check proves little", raws)
	}
}
