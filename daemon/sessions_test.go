package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/adminui"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// adminLogin logs in to the admin page at base with token and returns the
// session cookie.
func adminLogin(t *testing.T, base, token string) *http.Cookie {
	t.Helper()
	code, hdr := adminDo(t, "POST", base+"/admin/login", url.Values{"token": {token}}, nil)
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == adminui.CookieName && code == http.StatusSeeOther {
			return c
		}
	}
	t.Fatalf("login at %s: %d, no session cookie", base, code)
	return nil
}

// adminDo sends a request to the admin page without following redirects
// and returns the status and, for a redirect, where it goes.
func adminDo(t *testing.T, method, u string, form url.Values, c *http.Cookie) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c != nil {
		req.AddCookie(c)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestReloadEndsRemovedTokensSessions: a reload that removes an admin
// token ends its admin page sessions, here and on a replica that still
// runs the old configuration, and bringing the token back does not revive
// them. Before, the session worked again as soon as the token came back,
// and at once on any replica that had not reloaded.
func TestReloadEndsRemovedTokensSessions(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			dsn := storetest.DSN(t, driver)
			open := func() *store.Store {
				st, err := store.Open(context.Background(), driver, dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				if _, err := st.Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
				return st
			}
			dir := t.TempDir()
			sum := sha256.Sum256([]byte("admin-token"))
			withToken := "tokens:\n  - name: ops\n    hash: sha256:" + hex.EncodeToString(sum[:]) + "\n    scopes: [admin]\n"
			cfg := loadConfig(t, dir, withToken)
			h := startConfig(t, open(), cfg)
			// Another replica on the same database that keeps the token.
			replica := httptest.NewServer(adminui.New(adminui.Options{Store: open(), Config: func() *config.Config { return cfg }}))
			defer replica.Close()

			c := adminLogin(t, h.base, "admin-token")
			for _, base := range []string{h.base, replica.URL} {
				if code, _ := adminDo(t, "GET", base+"/admin", nil, c); code != 200 {
					t.Fatalf("GET %s/admin with a session: %d", base, code)
				}
			}
			reload := func(yaml string) {
				t.Helper()
				if err := h.d.Reload(t.Context(), func() (*config.Config, error) {
					writeFile(t, filepath.Join(dir, "roster.yaml"), "listen: 127.0.0.1:0\nlog:\n  dir: log\n"+yaml)
					return config.Load(filepath.Join(dir, "roster.yaml"))
				}); err != nil {
					t.Fatal(err)
				}
			}
			reload("")
			for _, base := range []string{h.base, replica.URL} {
				if code, hdr := adminDo(t, "GET", base+"/admin", nil, c); code != http.StatusSeeOther || hdr.Get("Location") != "/admin/login" {
					t.Errorf("GET %s/admin after the token was removed: %d", base, code)
				}
			}
			reload(withToken)
			if code, _ := adminDo(t, "GET", h.base+"/admin", nil, c); code != http.StatusSeeOther {
				t.Errorf("the old session came back with the token: %d", code)
			}
			fresh := adminLogin(t, h.base, "admin-token")
			if code, _ := adminDo(t, "GET", replica.URL+"/admin", nil, fresh); code != 200 {
				t.Errorf("a new login after the token came back: %d", code)
			}
		})
	}
}
