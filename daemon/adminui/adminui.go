// Package adminui serves roster's admin web page at /admin (SPEC §7): the
// sources with their state, a Sync button (with force), a Dry run button
// that shows a sync's plan person by person and, for csv sources, a file
// upload; the tasks with their status, counts and errors, a Retry button on
// failed tasks and the plan of a held task with Approve and Reject; the
// directory's users with a search box; and the sinks with their state and
// runs, with Run now and, for a held sink, Approve.
//
// The page is rendered on the server with html/template and works without
// JavaScript. Its actions are the admin API's (package admin), through the
// same calls: syncs and uploads go through the daemon's per-source queue
// ([admin.Queue]), dry runs, retry, approve and reject through
// [tasks.Runner], and the lists come from the store. docs/admin.md lists
// what the page does and what only the API does.
//
// # Sessions
//
// An operator logs in with an admin token (a token of the configuration
// with the scope admin). The session cookie (HttpOnly, Secure,
// SameSite=Strict, Path=/admin) never holds the token: it names the token
// and an expiry (SessionLife after the login) and is signed with
// HMAC-SHA256 under a key derived from a random secret kept in the
// database (shared by every replica), the token's configured hash and the
// token's session epoch. It is checked against the configuration in force
// on every request: removing the token, rotating it (a new hash) or taking
// its scope admin away and reloading logs the session out at once, and any
// replica accepts it. Reading the configuration is not enough to forge
// one. Because it is Secure, browsers send it only over HTTPS or to a
// loopback address: serve TLS (tls:) or put roster behind a TLS proxy to
// use the page from another machine.
//
// Logging out renews the token's session epoch, a random value kept in
// the database's secrets (see [RevokeSessions]); so does a reload that
// takes the token away. Every session of that token then fails its
// signature check, in every browser and on every replica, at once: the
// epoch is read from the database on every request, never cached, so no
// replica honours a revoked cookie for even a moment. That read is the
// only query of the session check (the shared secret is read once and
// kept), and it never writes: a sync holding SQLite's write lock does not
// hold up the page. A logout ends every session of its token, not only
// the browser's own: sessions are not recorded one by one.
//
// # Protection
//
//   - Every state-changing request is a POST carrying the form field csrf,
//     the hex HMAC-SHA256 of a fixed label keyed by the session's key;
//     a missing or wrong value is 403. A POST whose Origin header names
//     another host is 403 too.
//   - Every answer carries a Content-Security-Policy without scripts
//     (default-src 'none'), frame-ancestors 'none' and X-Frame-Options:
//     DENY, and Cache-Control: no-store.
//   - After a POST the page redirects (303) to what it changed, with a
//     message chosen by a code in the query string (flash=...): the query
//     string never carries text that is shown.
//   - Uploads are bounded by limits.push_body (the daemon mounts the upload
//     with HandleUpload), other requests by limits.request_body. In an
//     upload form the csrf field must come before the file, as the page's
//     form sends it, so that the file is streamed to the validation without
//     being buffered first.
package adminui

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/admin"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
)

//go:embed templates/*.html static/*
var files embed.FS

// CookieName is the session cookie.
const CookieName = "roster_admin"

// SessionLife is how long a login lasts; the cookie itself ends with the
// browser session.
const SessionLife = 12 * time.Hour

// secretName is the store secret sessions are signed with.
const secretName = "admin-session"

// epochName is the store secret holding a token's session epoch. The
// token's name is hashed so that any name makes a short, plain key.
func epochName(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "admin-session-epoch/" + hex.EncodeToString(sum[:16])
}

// RevokeSessions ends every session of the token called name on every
// replica sharing st: it renews the token's session epoch, which every
// session key is derived from. It writes, so it belongs to logouts and
// reloads, never to a request's session check.
func RevokeSessions(ctx context.Context, st *store.Store, name string) error {
	if _, err := st.RenewSecret(ctx, epochName(name)); err != nil {
		return fmt.Errorf("end the admin sessions of token %s: %w", name, err)
	}
	return nil
}

// csrfLabel is the message whose HMAC, keyed by the session's token, is the
// CSRF field of every form.
const csrfLabel = "roster admin page: csrf v1"

// Options configure a Handler.
type Options struct {
	// Store is the directory. Required.
	Store *store.Store
	// Config returns the configuration in force; called on every request.
	// Required.
	Config func() *config.Config
	// Queue runs syncs and uploads; without one they show an error.
	Queue admin.Queue
	// Finished, when set, hears of every task the page ran itself (retry,
	// approve, reject), for metrics and automatic retries.
	Finished func(*store.Task)
	// Log receives one line per change an operator made, naming the token.
	Log *slog.Logger
	// StartWait bounds how long a sync waits for its task to be recorded
	// before the page shows it as queued; 0 means admin.DefaultStartWait.
	StartWait time.Duration
}

// Handler is the admin page. Mount it at /admin and /admin/.
type Handler struct {
	o     Options
	mux   *http.ServeMux
	pages map[string]*template.Template
	// secret is the sessions' secret once read: it never changes, so the
	// session check reads it only once.
	secret atomic.Pointer[[]byte]
}

var _ http.Handler = (*Handler)(nil)

// New builds the admin page.
func New(o Options) *Handler {
	if o.Store == nil || o.Config == nil {
		panic("adminui: Options.Store and Options.Config are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.StartWait <= 0 {
		o.StartWait = admin.DefaultStartWait
	}
	h := &Handler{o: o, mux: http.NewServeMux(), pages: parsePages()}
	static, _ := fs.Sub(files, "static")
	h.mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /admin/login", h.loginForm)
	h.mux.HandleFunc("POST /admin/login", h.login)
	h.mux.Handle("POST /admin/logout", h.action(h.logout))
	h.mux.Handle("GET /admin", h.page(h.overview))
	h.mux.Handle("GET /admin/{$}", h.page(h.overview))
	h.mux.Handle("POST /admin/sources/{name}/sync", h.action(h.syncSource))
	h.mux.Handle("POST /admin/sources/{name}/dryrun", h.action(h.dryRunSource))
	h.mux.Handle("POST /admin/sources/{name}/retire", h.action(h.retireSource))
	h.mux.Handle("POST /admin/sources/{name}/file", h.session(h.upload))
	h.mux.Handle("GET /admin/tasks", h.page(h.taskList))
	h.mux.Handle("GET /admin/tasks/{id}", h.page(h.taskPage))
	h.mux.Handle("POST /admin/tasks/{id}/{action}", h.action(h.taskAction))
	h.mux.Handle("GET /admin/users", h.page(h.userList))
	h.mux.Handle("GET /admin/users/{id}", h.page(h.userPage))
	h.mux.Handle("POST /admin/users/{id}/active", h.action(h.setActive))
	h.mux.Handle("GET /admin/groups", h.page(h.groupTree))
	h.mux.Handle("GET /admin/sinks", h.page(h.sinkList))
	h.mux.Handle("GET /admin/sinks/{name}", h.page(h.sinkPage))
	h.mux.Handle("POST /admin/sinks/{name}/{action}", h.action(h.sinkAction))
	h.mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found", Error: "There is no page at this address."})
	})
	return h
}

// contentSecurityPolicy allows the page's own style sheet and nothing else:
// no scripts, no frames, forms only to this origin.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// sess is a request's valid session.
type sess struct {
	cfg  *config.Config
	key  string // the session cookie's value, which CSRF values are bound to
	name string // the token's name, for the log and the header
	csrf string
}

// pageFunc serves a request of a logged-in operator.
type pageFunc func(w http.ResponseWriter, r *http.Request, s *sess)

// current returns the request's session, or nil when its cookie is
// missing, expired, badly signed or names no admin token of the
// configuration in force.
func (h *Handler) current(r *http.Request) *sess {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 {
		return nil
	}
	name, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil
	}
	expiry, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || time.Now().Unix() > expiry {
		return nil
	}
	cfg := h.o.Config()
	var tok *config.Token
	for i := range cfg.Tokens {
		if cfg.Tokens[i].Name == string(name) {
			tok = &cfg.Tokens[i]
		}
	}
	if tok == nil || !tok.HasScope(config.ScopeAdmin) {
		return nil
	}
	key, err := h.sessionKey(r.Context(), tok, false)
	if err != nil {
		if !errors.Is(err, errNoSecret) {
			h.o.Log.Warn("admin page: cannot check sessions", "err", err)
		}
		return nil
	}
	want := sign(key, parts[0]+"."+parts[1])
	if !hmac.Equal([]byte(want), []byte(parts[2])) {
		return nil
	}
	return &sess{cfg: cfg, key: c.Value, name: tok.Name, csrf: csrfToken(c.Value)}
}

// errNoSecret: no session was ever started on this database, so no cookie
// can be valid.
var errNoSecret = errors.New("no admin session was ever started")

// sessionKey is the signing key of a token's sessions: the store's secret
// bound to the token's hash and session epoch, so that a new hash or a
// new epoch ends the old sessions. Only a login creates the secret
// (create); the session check only reads.
func (h *Handler) sessionKey(ctx context.Context, tok *config.Token, create bool) ([]byte, error) {
	secret, err := h.loadSecret(ctx, create)
	if err != nil {
		return nil, err
	}
	epoch, _, err := h.o.Store.ReadSecret(ctx, epochName(tok.Name))
	if err != nil {
		return nil, err
	}
	if epoch == "" {
		// Tokens never logged out of sign as before epochs existed, so
		// that an upgrade keeps their sessions.
		return []byte(sign(secret, tok.Hash)), nil
	}
	return []byte(sign(secret, tok.Hash+"\n"+epoch)), nil
}

// loadSecret returns the sessions' secret, read from the store the first
// time and kept; create lets it be created when missing.
func (h *Handler) loadSecret(ctx context.Context, create bool) ([]byte, error) {
	if p := h.secret.Load(); p != nil {
		return *p, nil
	}
	var b []byte
	if create {
		var err error
		if b, err = h.o.Store.Secret(ctx, secretName); err != nil {
			return nil, err
		}
	} else {
		v, ok, err := h.o.Store.ReadSecret(ctx, secretName)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errNoSecret
		}
		if b, err = hex.DecodeString(v); err != nil {
			return nil, fmt.Errorf("secret %s is damaged: %w", secretName, err)
		}
	}
	h.secret.Store(&b)
	return b, nil
}

func sign(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// session runs fn for a logged-in operator and sends anybody else to the
// login form.
func (h *Handler) session(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := h.current(r)
		if s == nil {
			http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !sameOrigin(r) {
			h.render(w, r, http.StatusForbidden, "error", &view{Title: "Forbidden", Error: "This request came from another site (its Origin header names another host); nothing was changed."})
			return
		}
		fn(w, r, s)
	})
}

// page is session for GET pages.
func (h *Handler) page(fn pageFunc) http.Handler { return h.session(fn) }

// action is session for form POSTs: the form must carry the session's
// CSRF value.
func (h *Handler) action(fn pageFunc) http.Handler {
	return h.session(func(w http.ResponseWriter, r *http.Request, s *sess) {
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				h.render(w, r, http.StatusRequestEntityTooLarge, "error", &view{Title: "Too large", Error: "The form is larger than limits.request_body."})
				return
			}
			h.render(w, r, http.StatusBadRequest, "error", &view{Title: "Bad request", Error: "The form could not be read."})
			return
		}
		if !validCSRF(s.key, r.PostForm.Get("csrf")) {
			h.csrfFailed(w, r)
			return
		}
		fn(w, r, s)
	})
}

func (h *Handler) csrfFailed(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusForbidden, "error", &view{Title: "Forbidden",
		Error: "The form's security token is missing or does not match your session (was it sent from another page, or did you log in again meanwhile?). Nothing was changed; reload the page and try again."})
}

// csrfToken is the CSRF value of a session (its cookie value).
func csrfToken(key string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(csrfLabel))
	return hex.EncodeToString(m.Sum(nil))
}

func validCSRF(key, got string) bool {
	if got == "" {
		return false
	}
	return hmac.Equal([]byte(csrfToken(key)), []byte(got))
}

// sameOrigin reports whether the request's Origin header, when it has
// one, names this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	if h.current(r) != nil {
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "login", &view{Title: "Log in", Flash: flash(r)})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		h.render(w, r, http.StatusForbidden, "login", &view{Title: "Log in", Error: "This login came from another site; log in on this page."})
		return
	}
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.render(w, r, http.StatusRequestEntityTooLarge, "login", &view{Title: "Log in", Error: "The form is larger than limits.request_body."})
			return
		}
		h.render(w, r, http.StatusBadRequest, "login", &view{Title: "Log in", Error: "The form could not be read."})
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	tok := admin.FindToken(token, h.o.Config().Tokens)
	switch {
	case token == "" || tok == nil:
		h.o.Log.Info("admin page: login refused: unknown token")
		h.render(w, r, http.StatusUnauthorized, "login", &view{Title: "Log in", Error: "This token is not valid: it matches no token of the configuration."})
		return
	case !tok.HasScope(config.ScopeAdmin):
		h.o.Log.Info("admin page: login refused: the token lacks the scope admin", "token", tok.Name)
		h.render(w, r, http.StatusForbidden, "login", &view{Title: "Log in", Error: fmt.Sprintf("The token %q lacks the scope admin; add it to the token's scopes in the configuration.", tok.Name)})
		return
	}
	key, err := h.sessionKey(r.Context(), tok, true)
	if err != nil {
		h.o.Log.Error("admin page: cannot sign the session", "err", err)
		h.render(w, r, http.StatusServiceUnavailable, "login", &view{Title: "Log in", Error: "The session could not be started: the database is not reachable. Try again."})
		return
	}
	expiry := time.Now().Add(SessionLife)
	payload := base64.RawURLEncoding.EncodeToString([]byte(tok.Name)) + "." + strconv.FormatInt(expiry.Unix(), 10)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: payload + "." + sign(key, payload),
		Path: "/admin", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	h.o.Log.Info("admin page: logged in", "token", tok.Name)
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *sess) {
	if err := RevokeSessions(r.Context(), h.o.Store, s.name); err != nil {
		// The cookie stays: clearing it would look like a logout while
		// the session still works wherever the cookie was copied.
		h.o.Log.Error("admin page: logout failed", "token", s.name, "err", err)
		h.render(w, r, http.StatusServiceUnavailable, "error", &view{Title: "Not logged out", s: s,
			Error: "The session could not be ended: the database did not answer. You are still logged in; try again."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/admin", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	h.o.Log.Info("admin page: logged out", "token", s.name)
	http.Redirect(w, r, "/admin/login?flash=loggedout", http.StatusSeeOther)
}

// runner is the task runner for the configuration in force.
func (h *Handler) runner(cfg *config.Config) *tasks.Runner {
	return &tasks.Runner{Store: h.o.Store, Config: cfg, Log: h.o.Log}
}

// fail shows an unexpected error.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *sess, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	status, msg := http.StatusInternalServerError, err.Error()
	if store.IsTransient(err) {
		status, msg = http.StatusServiceUnavailable, "The database is unreachable; try again later: "+err.Error()
		h.o.Log.Warn("admin page: the database is unreachable", "path", r.URL.Path, "err", err)
	} else {
		h.o.Log.Error("admin page: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	h.render(w, r, status, "error", &view{Title: "Error", Error: msg, s: s})
}
