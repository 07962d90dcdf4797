package adminui_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/adminui"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

const (
	adminToken  = "admin-secret-token"
	readerToken = "reader-secret-token"
)

func hashOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func people(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%05d,Given%d,Family%d,user%d,user%d@example.com,Team,\n", i, i, i, i, i)
	}
	return b.String()
}

// syncQueue is an admin.Queue that runs the sync in the request.
type syncQueue struct {
	e *env
}

func (q syncQueue) Enqueue(ctx context.Context, source, trigger string, force bool) (*store.Task, error) {
	res, err := q.e.runner().Sync(ctx, source, tasks.Options{Trigger: trigger, Force: force})
	if err != nil {
		return nil, err
	}
	return res.Task, nil
}

// env is the admin page on a real store, with a configuration that can be
// replaced as a reload would.
type env struct {
	t   *testing.T
	dir string
	st  *store.Store
	cfg atomic.Pointer[config.Config]
	srv *httptest.Server
}

func configYAML(tokens string) string {
	return `log:
  dir: log
limits:
  request_body: 4KiB
  push_body: 64KiB
attributes:
  custom: [{name: floor, type: integer}]
tokens:
` + tokens + `sources:
  - name: staff
    type: csv
    path: staff.csv
    watch: false
    extra_columns: [floor]
  - name: api
    type: push
`
}

var bothTokens = fmt.Sprintf("  - name: ops\n    hash: %s\n    scopes: [admin]\n  - name: reader\n    hash: %s\n    scopes: [scim:read]\n",
	hashOf(adminToken), hashOf(readerToken))

func newEnv(t *testing.T, st *store.Store) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), st: st}
	e.write("staff.csv", people(20))
	e.load(configYAML(bothTokens))
	if err := st.SyncSources(context.Background(), []string{"staff", "api"}, []string{"csv", "push"}); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(adminui.New(adminui.Options{Store: st, Config: e.cfg.Load, Queue: syncQueue{e}}))
	t.Cleanup(e.srv.Close)
	return e
}

// load replaces the configuration in force.
func (e *env) load(yaml string) {
	e.t.Helper()
	e.write("roster.yaml", yaml)
	cfg, err := config.Load(filepath.Join(e.dir, "roster.yaml"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.cfg.Store(cfg)
}

func (e *env) write(name, content string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) read(name string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func (e *env) runner() *tasks.Runner {
	return &tasks.Runner{Store: e.st, Config: e.cfg.Load()}
}

type response struct {
	code   int
	header http.Header
	body   string
}

// do sends a request without following redirects.
func (e *env) do(method, path, contentType string, body io.Reader, cookie *http.Cookie, hdr ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

func (e *env) get(path string, c *http.Cookie) response { return e.do("GET", path, "", nil, c) }

func (e *env) post(path string, form url.Values, c *http.Cookie, hdr ...string) response {
	return e.do("POST", path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), c, hdr...)
}

// login logs in with the admin token and returns the session cookie.
func (e *env) login() *http.Cookie {
	e.t.Helper()
	r := e.post("/admin/login", url.Values{"token": {adminToken}}, nil)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/admin" {
		e.t.Fatalf("login: %d %s", r.code, r.body)
	}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == adminui.CookieName {
			return c
		}
	}
	e.t.Fatal("login set no session cookie")
	return nil
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf reads the CSRF value from a page.
func (e *env) csrf(c *http.Cookie) string {
	e.t.Helper()
	r := e.get("/admin", c)
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil {
		e.t.Fatalf("no csrf field on the overview: %s", r.body)
	}
	return m[1]
}

func sqlite(t *testing.T) *store.Store { return storetest.Open(t, store.SQLite) }

func TestLogin(t *testing.T) {
	e := newEnv(t, sqlite(t))
	r := e.get("/admin", nil)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/admin/login" {
		t.Fatalf("GET /admin without a session: %d %v", r.code, r.header)
	}
	for _, p := range []string{"/admin/", "/admin/tasks", "/admin/tasks/1", "/admin/users"} {
		if r := e.get(p, nil); r.code != http.StatusSeeOther || r.header.Get("Location") != "/admin/login" {
			t.Errorf("GET %s without a session: %d", p, r.code)
		}
	}
	r = e.get("/admin/login", nil)
	if r.code != 200 || !strings.Contains(r.body, `name="token"`) || !strings.Contains(r.body, `name="viewport"`) {
		t.Fatalf("login form: %d %s", r.code, r.body)
	}
	wantHeaders(t, r)

	r = e.post("/admin/login", url.Values{"token": {"wrong"}}, nil)
	if r.code != http.StatusUnauthorized || !strings.Contains(r.body, "not valid") || !strings.Contains(r.body, `name="token"`) {
		t.Fatalf("a wrong token: %d %s", r.code, r.body)
	}
	if len(r.header.Values("Set-Cookie")) != 0 {
		t.Fatal("a wrong token got a cookie")
	}
	r = e.post("/admin/login", url.Values{"token": {readerToken}}, nil)
	if r.code != http.StatusForbidden || !strings.Contains(r.body, "lacks the scope admin") || len(r.header.Values("Set-Cookie")) != 0 {
		t.Fatalf("a token without the scope admin: %d %s", r.code, r.body)
	}
	// A login from another site.
	r = e.post("/admin/login", url.Values{"token": {adminToken}}, nil, "Origin", "https://evil.example")
	if r.code != http.StatusForbidden || len(r.header.Values("Set-Cookie")) != 0 {
		t.Fatalf("a cross-site login: %d", r.code)
	}

	r = e.post("/admin/login", url.Values{"token": {adminToken}}, nil)
	setCookie := r.header.Get("Set-Cookie")
	for _, want := range []string{adminui.CookieName + "=", "Path=/admin", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("Set-Cookie %q lacks %q", setCookie, want)
		}
	}
	if strings.Contains(setCookie, "Max-Age") || strings.Contains(setCookie, "Expires") {
		t.Errorf("the session cookie should end with the browser session: %q", setCookie)
	}
	c := e.login()
	r = e.get("/admin", c)
	if r.code != 200 || !strings.Contains(r.body, "staff") || !strings.Contains(r.body, "ops") {
		t.Fatalf("overview: %d %s", r.code, r.body)
	}
	wantHeaders(t, r)
	if strings.Contains(r.body, adminToken) {
		t.Fatal("the page shows the token")
	}
	// Logged in, the login form sends to the overview.
	if r := e.get("/admin/login", c); r.code != http.StatusSeeOther {
		t.Fatalf("login form with a session: %d", r.code)
	}

	// A cookie that is not a token of the configuration.
	if r := e.get("/admin", &http.Cookie{Name: adminui.CookieName, Value: "d3Jvbmc"}); r.code != http.StatusSeeOther {
		t.Fatalf("a forged cookie: %d", r.code)
	}
	// The cookie never holds the token, and its signature is checked.
	if strings.Contains(setCookie, adminToken) || strings.Contains(setCookie, base64.RawURLEncoding.EncodeToString([]byte(adminToken))) {
		t.Fatalf("the session cookie holds the token: %q", setCookie)
	}
	forged := *c
	forged.Value = c.Value[:strings.LastIndexByte(c.Value, '.')+1] + strings.Repeat("A", 43)
	if r := e.get("/admin", &forged); r.code != http.StatusSeeOther {
		t.Fatalf("a cookie with a forged signature: %d", r.code)
	}
	longer := *c
	parts := strings.Split(c.Value, ".")
	longer.Value = parts[0] + ".9999999999." + parts[2]
	if r := e.get("/admin", &longer); r.code != http.StatusSeeOther {
		t.Fatalf("a cookie whose expiry was pushed back: %d", r.code)
	}

	// Removing the token from the configuration logs the session out.
	e.load(configYAML(fmt.Sprintf("  - name: other\n    hash: %s\n    scopes: [admin]\n", hashOf("another-token"))))
	if r := e.get("/admin", c); r.code != http.StatusSeeOther || r.header.Get("Location") != "/admin/login" {
		t.Fatalf("after the token was removed: %d", r.code)
	}
	// Taking the scope admin away too.
	e.load(configYAML(fmt.Sprintf("  - name: ops\n    hash: %s\n    scopes: [scim:read]\n", hashOf(adminToken))))
	if r := e.get("/admin", c); r.code != http.StatusSeeOther {
		t.Fatalf("after the scope was removed: %d", r.code)
	}
	e.load(configYAML(bothTokens))
	if r := e.get("/admin", c); r.code != 200 {
		t.Fatalf("after the token came back: %d", r.code)
	}

	// Logout needs the CSRF value and clears the cookie.
	if r := e.post("/admin/logout", nil, c); r.code != http.StatusForbidden {
		t.Fatalf("logout without csrf: %d", r.code)
	}
	r = e.post("/admin/logout", url.Values{"csrf": {e.csrf(c)}}, c)
	if r.code != http.StatusSeeOther || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %v", r.code, r.header)
	}
}

func wantHeaders(t *testing.T, r response) {
	t.Helper()
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}
	if r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("Cache-Control") != "no-store" ||
		r.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("headers: %v", r.header)
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, sqlite(t))
	c := e.login()
	token := e.csrf(c)
	for name, form := range map[string]url.Values{
		"missing": {},
		"wrong":   {"csrf": {strings.Repeat("0", 64)}},
		"empty":   {"csrf": {""}},
	} {
		if r := e.post("/admin/sources/staff/sync", form, c); r.code != http.StatusForbidden {
			t.Errorf("sync with %s csrf: %d", name, r.code)
		}
	}
	// Another session's value does not fit.
	other := fmt.Sprintf("%x", sha256.Sum256([]byte("x")))
	if r := e.post("/admin/sources/staff/sync", url.Values{"csrf": {other}}, c); r.code != http.StatusForbidden {
		t.Errorf("sync with another value: %d", r.code)
	}
	if r := e.post("/admin/sources/staff/sync", url.Values{"csrf": {token}}, c, "Origin", "https://evil.example"); r.code != http.StatusForbidden {
		t.Errorf("sync from another origin: %d", r.code)
	}
	if tasks, _, _ := e.st.ListTasks(context.Background(), store.TaskFilter{}); len(tasks) != 0 {
		t.Fatalf("a refused request ran a task: %+v", tasks)
	}
	// Without a session, a POST goes to the login.
	if r := e.post("/admin/sources/staff/sync", url.Values{"csrf": {token}}, nil); r.code != http.StatusSeeOther || r.header.Get("Location") != "/admin/login" {
		t.Errorf("sync without a session: %d", r.code)
	}
	// An upload without the csrf field, or with it after the file.
	for name, fields := range map[string][][2]string{
		"missing":    {{"file", people(3)}},
		"after file": {{"file", people(3)}, {"csrf", token}},
		"wrong":      {{"csrf", "00"}, {"file", people(3)}},
	} {
		if r := e.upload("staff", c, fields...); r.code != http.StatusForbidden {
			t.Errorf("upload with %s csrf: %d", name, r.code)
		}
	}
	if e.read("staff.csv") != people(20) {
		t.Fatal("a refused upload changed the file")
	}

	r := e.post("/admin/sources/staff/sync", url.Values{"csrf": {token}}, c, "Origin", e.srv.URL)
	if r.code != http.StatusSeeOther || !regexp.MustCompile(`^/admin/tasks/\d+\?flash=synced$`).MatchString(r.header.Get("Location")) {
		t.Fatalf("sync: %d %v %s", r.code, r.header, r.body)
	}
	page := e.get(r.header.Get("Location"), c)
	if page.code != 200 || !strings.Contains(page.body, "succeeded") || !strings.Contains(page.body, "The sync has started") {
		t.Fatalf("the task page: %d %s", page.code, page.body)
	}
}

// upload posts a multipart form with the fields in order ("file" is sent
// as a file).
func (e *env) upload(source string, c *http.Cookie, fields ...[2]string) response {
	e.t.Helper()
	var b strings.Builder
	mw := multipart.NewWriter(&b)
	for _, f := range fields {
		var w io.Writer
		var err error
		if f[0] == "file" {
			w, err = mw.CreateFormFile("file", "staff.csv")
		} else {
			w, err = mw.CreateFormField(f[0])
		}
		if err != nil {
			e.t.Fatal(err)
		}
		io.WriteString(w, f[1])
	}
	mw.Close()
	return e.do("POST", "/admin/sources/"+source+"/file", mw.FormDataContentType(), strings.NewReader(b.String()), c)
}

func TestUpload(t *testing.T) {
	e := newEnv(t, sqlite(t))
	if _, err := (syncQueue{e}).Enqueue(context.Background(), "staff", tasks.TriggerManual, false); err != nil {
		t.Fatal(err)
	}
	c := e.login()
	token := e.csrf(c)
	bad := people(20) + "99,No,Login,,bad@,,\n" + "00001,Dup,Id,dup,,,\n"
	r := e.upload("staff", c, [2]string{"csrf", token}, [2]string{"file", bad})
	if r.code != http.StatusBadRequest || !strings.Contains(r.body, "invalid: 3 errors") {
		t.Fatalf("an invalid upload: %d %s", r.code, r.body)
	}
	for _, want := range []string{"line 21, column 4 (login)", "line 21, column 5 (email): &#34;bad@&#34; is not a valid e-mail address", "line 22"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the page lacks %q:\n%s", want, r.body)
		}
	}
	if e.read("staff.csv") != people(20) {
		t.Fatal("an invalid upload changed the file")
	}
	// A cell of an extra column is checked by its attribute's type: floor
	// (column 8) is a custom integer.
	r = e.upload("staff", c, [2]string{"csrf", token}, [2]string{"file", people(20) + "00021,Given21,Family21,user21,,,,third\n"})
	if r.code != http.StatusBadRequest || !strings.Contains(r.body, "invalid: 1 error") ||
		!strings.Contains(r.body, "line 21, column 8 (floor): &#34;third&#34; is not an integer") {
		t.Fatalf("an upload with a non-integer floor: %d %s", r.code, r.body)
	}
	if e.read("staff.csv") != people(20) {
		t.Fatal("an upload with a non-integer floor changed the file")
	}
	if r := e.upload("staff", c, [2]string{"csrf", token}); r.code != http.StatusBadRequest || !strings.Contains(r.body, "Choose a file") {
		t.Fatalf("an upload without a file: %d", r.code)
	}
	if r := e.upload("api", c, [2]string{"csrf", token}, [2]string{"file", people(2)}); r.code != http.StatusBadRequest || !strings.Contains(r.body, "only csv sources") {
		t.Fatalf("an upload to a push source: %d %s", r.code, r.body)
	}
	r = e.upload("staff", c, [2]string{"csrf", token}, [2]string{"file", people(3)})
	if r.code != http.StatusSeeOther || !strings.HasSuffix(r.header.Get("Location"), "?flash=uploaded") {
		t.Fatalf("a valid upload: %d %s", r.code, r.body)
	}
	if e.read("staff.csv") != people(3) {
		t.Fatal("a valid upload did not replace the file")
	}
	page := e.get(r.header.Get("Location"), c)
	// 17 of 20 removed: the safety valve holds the task.
	if !strings.Contains(page.body, "held") || !strings.Contains(page.body, "user20") || !strings.Contains(page.body, `id="approve"`) {
		t.Fatalf("the held task: %s", page.body)
	}
}

// TestPages walks every page on both stores: a succeeded, a failed and a
// held task, retry, reject and approve, the task list's filters and the
// user search, with data that must be escaped.
func TestPages(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		e.write("staff.csv", people(19)+"00020,<script>alert(1)</script>,O'Brien & Co,user20,user20@example.com,Team,,3\n")
		c := e.login()
		token := e.csrf(c)
		act := func(path string) string {
			t.Helper()
			r := e.post(path, url.Values{"csrf": {token}}, c)
			if r.code != http.StatusSeeOther {
				t.Fatalf("POST %s: %d %s", path, r.code, r.body)
			}
			return r.header.Get("Location")
		}
		page := func(path string, want ...string) string {
			t.Helper()
			r := e.get(path, c)
			if r.code != 200 {
				t.Fatalf("GET %s: %d %s", path, r.code, r.body)
			}
			for _, w := range want {
				if !strings.Contains(r.body, w) {
					t.Errorf("GET %s lacks %q:\n%s", path, w, r.body)
				}
			}
			if strings.Contains(r.body, "<script>") {
				t.Errorf("GET %s: unescaped data:\n%s", path, r.body)
			}
			return r.body
		}
		first := act("/admin/sources/staff/sync")
		page(first, "succeeded", "created", ">20<")
		page("/admin", "staff", "idle", "succeeded", "Upload and sync", "api", "never synced")
		page("/admin/users", "Users 1–20 of 20", "user7", "user7@example.com", "&lt;script&gt;alert(1)&lt;/script&gt; O&#39;Brien &amp; Co")
		page("/admin/users?q=USER1", "Users 1–11 of 11", "user19")
		page("/admin/users?q=%25", "No users match")
		page("/admin/users?limit=5&offset=5", "Users 6–10 of 20", `href="/admin/users?limit=5&amp;offset=10"`, `href="/admin/users?limit=5"`)

		// A user's page shows every attribute the directory holds.
		list := page("/admin/users?q=user20")
		i := strings.Index(list, `href="/admin/users/`)
		if i < 0 {
			t.Fatalf("the user list links no user page:\n%s", list)
		}
		link := list[i+len(`href="`):]
		link = link[:strings.IndexByte(link, '"')]
		page(link, "user20", "<code>userName</code>", "<code>name.familyName</code>", "O&#39;Brien &amp; Co",
			"<code>emails[0].value</code>", "user20@example.com", "<code>groups[0].display</code>", "Team",
			"<code>urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber</code>", "00020",
			// A custom attribute, named as declared under its schema's URN.
			"<code>urn:ietf:params:scim:schemas:extension:roster:2.0:User:floor</code>", "<td>3</td>")
		if r := e.get("/admin/users/no-such-user", c); r.code != http.StatusNotFound {
			t.Errorf("an unknown user's page: %d", r.code)
		}

		// A failed task lists its errors and can be retried once the file is fixed.
		e.write("staff.csv", people(20)+"21,Bad,Mail,user21,bob@,,\n")
		failed := act("/admin/sources/staff/sync")
		page(failed, "failed", `line 21, column 5 (email): &#34;bob@&#34; is not a valid e-mail address`, `id="retry"`)
		page("/admin/tasks?status=failed", "Tasks 1–1 of 1")
		page("/admin/tasks?source=staff&limit=1", "Tasks 1–1 of 2", `href="/admin/tasks?limit=1&amp;offset=1&amp;source=staff"`)
		e.write("staff.csv", people(21))
		retried := act(strings.Split(failed, "?")[0] + "/retry")
		if !strings.HasSuffix(retried, "?flash=retried") {
			t.Fatalf("retry went to %s", retried)
		}
		page(retried, "succeeded", "Retry of", "The failed task was retried")

		// A held task: reject, then approve.
		e.write("staff.csv", people(2))
		held := act("/admin/sources/staff/sync")
		page(held, "held", "Held plan", "user21", "00021", "deactivate", `id="approve"`, `id="reject"`)
		heldPath := strings.Split(held, "?")[0]
		rejected := act(heldPath + "/reject")
		page(rejected, "rejected", "Plan it was held with")
		if r := e.post(heldPath+"/approve", url.Values{"csrf": {token}}, c); r.code != http.StatusConflict || !strings.Contains(r.body, "only held tasks can be approved") {
			t.Fatalf("approving a rejected task: %d %s", r.code, r.body)
		}
		held = act("/admin/sources/staff/sync?force=0")
		approved := act(strings.Split(held, "?")[0] + "/approve")
		page(approved, "succeeded", "The held plan was approved")
		page("/admin/users?q=user21", "inactive", "orphan")
		if r := e.get("/admin/tasks/999999", c); r.code != http.StatusNotFound || !strings.Contains(r.body, "no task 999999") {
			t.Fatalf("an unknown task: %d %s", r.code, r.body)
		}
	})
}

// replicas opens the store of a fresh database twice, as two replicas
// sharing it would.
func replicas(t *testing.T, driver string) (*store.Store, *store.Store) {
	t.Helper()
	dsn := storetest.DSN(t, driver)
	var out [2]*store.Store
	for i := range out {
		st, err := store.Open(context.Background(), driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if _, err := st.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		out[i] = st
	}
	return out[0], out[1]
}

// TestLogoutEndsTheSession: after a logout the old cookie and its CSRF
// value are refused, on the replica that logged out and on another one on
// the same database; a new login works on both, and the old CSRF value
// does not fit it. Before, logging out only asked the browser to forget
// the cookie, which kept working for 12 hours.
func TestLogoutEndsTheSession(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			st1, st2 := replicas(t, driver)
			a, b := newEnv(t, st1), newEnv(t, st2)
			c := a.login()
			token := a.csrf(c)
			if r := b.get("/admin", c); r.code != 200 {
				t.Fatalf("the other replica refuses the session: %d", r.code)
			}
			if r := a.post("/admin/logout", url.Values{"csrf": {token}}, c); r.code != http.StatusSeeOther ||
				r.header.Get("Location") != "/admin/login?flash=loggedout" {
				t.Fatalf("logout: %d %v", r.code, r.header)
			}
			for name, e := range map[string]*env{"this replica": a, "the other replica": b} {
				if r := e.get("/admin", c); r.code != http.StatusSeeOther || r.header.Get("Location") != "/admin/login" {
					t.Errorf("%s: GET /admin with the logged-out cookie: %d %s", name, r.code, r.header.Get("Location"))
				}
				r := e.post("/admin/sources/staff/sync", url.Values{"csrf": {token}}, c)
				if r.code != http.StatusSeeOther || r.header.Get("Location") != "/admin/login" {
					t.Errorf("%s: a sync with the logged-out cookie and CSRF value: %d %s", name, r.code, r.header.Get("Location"))
				}
			}
			if list, _, _ := st1.ListTasks(context.Background(), store.TaskFilter{}); len(list) != 0 {
				t.Fatalf("a logged-out session ran a task: %+v", list)
			}
			fresh := b.login()
			if r := a.get("/admin", fresh); r.code != 200 {
				t.Fatalf("a new login on the other replica: %d", r.code)
			}
			if r := a.post("/admin/sources/staff/sync", url.Values{"csrf": {token}}, fresh); r.code != http.StatusForbidden {
				t.Fatalf("the old CSRF value with a new session: %d", r.code)
			}
			// RevokeSessions, as a reload that removes the token calls it.
			if err := adminui.RevokeSessions(context.Background(), st2, "ops"); err != nil {
				t.Fatal(err)
			}
			if r := a.get("/admin", fresh); r.code != http.StatusSeeOther {
				t.Fatalf("after RevokeSessions on the other replica: %d", r.code)
			}
		})
	}
}

// TestSessionCheckDuringWrite: while a sync holds a write transaction
// open (on SQLite the only write lock), a logged-in operator's pages, the
// login form and a login answer at once. Before, every session check
// wrote the session secret and waited for the writer 30 s, then sent the
// operator to the login form.
func TestSessionCheckDuringWrite(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		c := e.login()
		release := storetest.HoldWrite(t, st)
		defer release()
		for _, p := range []string{"/admin", "/admin/tasks", "/admin/users", "/admin/login"} {
			start := time.Now()
			r := e.get(p, c)
			if d := time.Since(start); d > time.Second {
				t.Errorf("GET %s during a write took %s", p, d)
			}
			want := 200
			if p == "/admin/login" {
				want = http.StatusSeeOther // logged in: on to the overview
			}
			if r.code != want {
				t.Errorf("GET %s during a write: %d, want %d: %s", p, r.code, want, r.body)
			}
		}
		start := time.Now()
		if again := e.login(); again == nil {
			t.Fatal("no cookie")
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("a login during a write took %s", d)
		}
	})
}

// TestUserButtonsAndGroups: the Users page's Activate and Deactivate
// buttons change a user only with the session's CSRF value and say what
// they did; the Groups page draws the groups with their member counts.
func TestUserButtonsAndGroups(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		e.write("staff.csv", people(3))
		c := e.login()
		token := e.csrf(c)
		if r := e.post("/admin/sources/staff/sync", url.Values{"csrf": {token}}, c); r.code != http.StatusSeeOther {
			t.Fatalf("sync: %d %s", r.code, r.body)
		}
		users, _, err := st.ListUsers(context.Background(), store.UserFilter{Search: "user2"})
		if err != nil || len(users) != 1 {
			t.Fatalf("user2: %+v %v", users, err)
		}
		id := users[0].ID
		state := func() store.UserRow {
			t.Helper()
			us, _, err := st.ListUsers(context.Background(), store.UserFilter{Search: "user2"})
			if err != nil || len(us) != 1 {
				t.Fatalf("user2: %+v %v", us, err)
			}
			return us[0]
		}
		if r := e.get("/admin/users", c); !strings.Contains(r.body, `id="deactivate-user2"`) || strings.Contains(r.body, `id="activate-user2"`) {
			t.Fatalf("the Users page lacks user2's Deactivate button:\n%s", r.body)
		}
		if r := e.post("/admin/users/"+id+"/active", url.Values{"active": {"false"}}, c); r.code != http.StatusForbidden || !state().Active {
			t.Fatalf("deactivate without csrf: %d, user %+v", r.code, state())
		}
		if r := e.post("/admin/users/"+id+"/active", url.Values{"csrf": {token}, "active": {"maybe"}}, c); r.code != http.StatusBadRequest {
			t.Errorf("active=maybe: %d", r.code)
		}
		if r := e.post("/admin/users/no-such-user/active", url.Values{"csrf": {token}, "active": {"false"}}, c); r.code != http.StatusNotFound {
			t.Errorf("an unknown user: %d", r.code)
		}
		r := e.post("/admin/users/"+id+"/active", url.Values{"csrf": {token}, "active": {"false"}, "q": {"user"}}, c)
		if loc := r.header.Get("Location"); r.code != http.StatusSeeOther || loc != "/admin/users?flash=deactivated&q=user" {
			t.Fatalf("deactivate: %d to %q", r.code, loc)
		}
		if u := state(); u.Active || u.StateReason != "admin" {
			t.Fatalf("user2 after Deactivate: %+v", u)
		}
		if r := e.get("/admin/users?flash=deactivated&q=user", c); !strings.Contains(r.body, "The user was deactivated") || !strings.Contains(r.body, `id="activate-user2"`) {
			t.Errorf("the Users page after Deactivate:\n%s", r.body)
		}
		if r := e.post("/admin/users/"+id+"/active", url.Values{"csrf": {token}, "active": {"true"}}, c); r.code != http.StatusSeeOther || !state().Active {
			t.Fatalf("activate: %d, user %+v", r.code, state())
		}
		if r := e.get("/admin/groups", c); r.code != 200 || !strings.Contains(r.body, `id="source-staff"`) ||
			!strings.Contains(r.body, "Team") || !strings.Contains(r.body, "3 members") {
			t.Errorf("the Groups page: %d\n%s", r.code, r.body)
		}
	})
}
