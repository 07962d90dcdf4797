// Package admin serves roster's admin API under /api/v1 (SPEC §7) to bearer tokens with the scope admin.
//
// Endpoints:
//
//	GET   /api/v1/sources                 the sources with their state and last task
//	POST  /api/v1/sources/{name}/sync     sync a source now (dry_run, force)
//	PUT   /api/v1/sources/{name}/file     upload a new CSV file and sync it (force)
//	GET   /api/v1/tasks                   tasks, newest first (source, status, limit, offset)
//	GET   /api/v1/tasks/{id}              one task; a held task with its plan
//	POST  /api/v1/tasks/{id}/retry        run a failed task's input again
//	POST  /api/v1/tasks/{id}/approve      apply a held task's plan
//	POST  /api/v1/tasks/{id}/reject       discard a held task's plan
//	GET   /api/v1/users/{id}              one user: its SCIM attributes, source and state
//	PATCH /api/v1/users/{id}              {"active": false} or {"active": true}
//	GET   /api/v1/sinks                   the sinks with their state, lag, queue and last run
//	GET   /api/v1/sinks/{name}            one sink with its runs, newest first (limit, offset)
//	GET   /api/v1/sinks/{name}/runs/{id}  one run of a sink with the resources the service refused
//	POST  /api/v1/sinks/{name}/approve    let a sink held by max_removals deliver its removals
//	POST  /api/v1/sinks/{name}/run        ask the replica delivering a sink to run it now (202)
//
// Every answer is JSON. A task is the object of SPEC §8.1 ([tasks.View]);
// lists are {"items": [...], "total": N}; errors are
// {"error": "what happened and what to do"} with a 4xx or 5xx status.
//
// Decisions where the specification leaves room:
//
//   - Routing comes before authentication: an unknown path is 404 and a
//     known path with another method 405 (with Allow) for anybody. Then a
//     missing or unknown token is 401 and a token without the scope admin
//     403, both with a WWW-Authenticate: Bearer header.
//   - Syncs and uploads go through the daemon's per-source queue
//     ([Queue]), so they never run beside the daemon's own tasks, and a
//     request that comes while a task of the source runs joins the
//     source's one follow-up. The answer is 202 with the task that serves
//     the request as soon as it is recorded (usually running: poll
//     GET /api/v1/tasks/{id} for its end). When that takes longer than
//     StartWait (2 s by default: a task of the source is still running, or
//     a `roster sync` holds the source's lock), the answer is 202
//     {"queued": true, "source": ...}, and the task appears in
//     GET /api/v1/tasks?source=NAME when it starts.
//   - A dry run is computed in the request and answered 200 with the plan
//     in the shape of `roster sync --dry-run --json`, also when the file is
//     invalid (then "errors" lists every problem).
//   - Retry, approve and reject run in the request, through the same
//     [tasks.Runner] calls as the CLI, under the source's lock: they wait
//     while another task of the source runs and answer 200 with the task
//     once it has ended. A client that hangs up does not cut them off.
//   - An upload is validated completely before anything changes: an
//     invalid file is 400 with every error and leaves the source's file as
//     it was; a valid one replaces the file (same folder, rename) and is
//     synced like POST .../sync. The replacement does not wait for a
//     running task of the source: that task finishes with the file it read
//     (or, when it was still reading, fails with "the file changed") and
//     the queued follow-up imports the new file.
//   - PATCH /api/v1/users/{id} records the operator's choice with the
//     reason "admin" (see store.SetActiveByAdmin), so that later syncs keep
//     it: a deactivated user stays inactive while it is in the source, and
//     an activated user stays active even if its source calls it inactive.
//     Like every change, it raises the owning source's revision, so a held
//     plan computed before can no longer be approved.
//   - Request bodies are bounded by limits.request_body, uploads by
//     limits.push_body (413 beyond), both read from the configuration in
//     force, as are the tokens, so a reload applies at once.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources"
)

// DefaultStartWait is how long a sync request waits for its task to be
// recorded before it answers {"queued": true}.
const DefaultStartWait = 2 * time.Second

// Queue runs syncs in the daemon's per-source queues; *daemon.Daemon is
// one. Enqueue returns the task that serves the request once it is
// recorded, or a nil task when ctx ends first (the request stays queued);
// errors wrapping tasks.ErrUsage mean the source cannot be synced.
type Queue interface {
	Enqueue(ctx context.Context, source, trigger string, force bool) (*store.Task, error)
}

// Options configure a Handler.
type Options struct {
	// Store is the directory. Required.
	Store *store.Store
	// Config returns the configuration in force (tokens, sources, limits);
	// it is called on every request, so that a reload applies at once.
	// Required.
	Config func() *config.Config
	// Queue runs syncs and uploads; without one they answer 503.
	Queue Queue
	// Finished, when set, hears of every task the handler ran itself
	// (retry, approve, reject), for metrics and automatic retries.
	Finished func(*store.Task)
	// Log receives one line per change an operator made, naming the token.
	Log *slog.Logger
	// StartWait bounds how long a sync waits for its task to be recorded;
	// 0 means DefaultStartWait.
	StartWait time.Duration
}

// Handler is the admin API. Mount it at /api/v1/.
type Handler struct {
	o   Options
	mux *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

// New builds the admin API.
func New(o Options) *Handler {
	if o.Store == nil || o.Config == nil {
		panic("admin: Options.Store and Options.Config are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.StartWait <= 0 {
		o.StartWait = DefaultStartWait
	}
	h := &Handler{o: o, mux: http.NewServeMux()}
	h.route("/api/v1/sources", bodySmall, method{http.MethodGet, h.listSources})
	h.route("/api/v1/sources/{name}/sync", bodySmall, method{http.MethodPost, h.syncSource})
	h.route("/api/v1/sources/{name}/file", bodyUpload, method{http.MethodPut, h.uploadFile})
	h.route("/api/v1/sources/{name}/retire", bodySmall, method{http.MethodPost, h.retireSource})
	h.route("/api/v1/tasks", bodySmall, method{http.MethodGet, h.listTasks})
	h.route("/api/v1/tasks/{id}", bodySmall, method{http.MethodGet, h.getTask})
	h.route("/api/v1/tasks/{id}/retry", bodySmall, method{http.MethodPost, h.retryTask})
	h.route("/api/v1/tasks/{id}/approve", bodySmall, method{http.MethodPost, h.approveTask})
	h.route("/api/v1/tasks/{id}/reject", bodySmall, method{http.MethodPost, h.rejectTask})
	h.route("/api/v1/users/{id}", bodySmall, method{http.MethodGet, h.getUser}, method{http.MethodPatch, h.patchUser})
	h.route("/api/v1/groups", bodySmall, method{http.MethodGet, h.listGroups})
	h.route("/api/v1/groups/{id}", bodySmall, method{http.MethodGet, h.getGroup})
	h.route("/api/v1/sinks", bodySmall, method{http.MethodGet, h.listSinks})
	h.route("/api/v1/sinks/{name}", bodySmall, method{http.MethodGet, h.getSink})
	h.route("/api/v1/sinks/{name}/runs/{id}", bodySmall, method{http.MethodGet, h.getSinkRun})
	h.route("/api/v1/sinks/{name}/approve", bodySmall, method{http.MethodPost, h.approveSink})
	h.route("/api/v1/sinks/{name}/run", bodySmall, method{http.MethodPost, h.runSink})
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound,
			Message: fmt.Sprintf("no admin API endpoint at %s: see the README's \"Admin API\" section", r.URL.Path)})
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// handlerFunc is an endpoint; an error it returns is answered by serve.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// call is what an endpoint knows of its request beyond the request.
type call struct {
	cfg   *config.Config
	token string // the name of the token, for the log
}

type method struct {
	name string
	fn   handlerFunc
}

// bodyKind says which limit bounds a request body.
type bodyKind int

const (
	bodySmall  bodyKind = iota // limits.request_body
	bodyUpload                 // limits.push_body
)

// route mounts the methods of path and answers every other method with
// 405 and the Allow header.
func (h *Handler) route(path string, body bodyKind, methods ...method) {
	var allow []string
	for _, m := range methods {
		h.mux.Handle(m.name+" "+path, h.serve(body, m.fn))
		allow = append(allow, m.name)
		if m.name == http.MethodGet {
			allow = append(allow, http.MethodHead)
		}
	}
	slices.Sort(allow)
	allowed := strings.Join(allow, ", ")
	h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allowed)
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed,
			Message: fmt.Sprintf("%s does not take %s; use %s", path, r.Method, allowed)})
	})
}

// serve authenticates the request, bounds its body, runs fn and answers
// the error it returns.
func (h *Handler) serve(body bodyKind, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := h.o.Config()
		name, err := authenticate(r, cfg.Tokens)
		if err == nil {
			err = limitBody(w, r, cfg, body)
		}
		if err == nil {
			err = fn(w, r, &call{cfg: cfg, token: name})
		}
		if err != nil {
			h.fail(w, r, err, body)
		}
	})
}

// fail answers err: an *apiError as it is, anything else as a server error.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, body bodyKind) {
	var e *apiError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &tooBig):
		e = bodyTooLarge(body, tooBig.Limit)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away
	case store.IsTransient(err):
		h.o.Log.Warn("admin API: the database is unreachable", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &apiError{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf("the database is unreachable; try again later: %v", err)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The daemon's read deadline: the client sent its body too slowly.
		e = &apiError{Status: http.StatusRequestTimeout, Message: err.Error()}
	default:
		h.o.Log.Error("admin API: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &apiError{Status: http.StatusInternalServerError, Message: err.Error()}
	}
	writeError(w, e)
}

// apiError is an answer other than success: {"error": Message}, with Errors
// when there are validation errors to list.
type apiError struct {
	Status  int
	Message string
	Errors  []sources.FieldError
	header  http.Header
}

func (e *apiError) Error() string { return e.Message }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{Status: status, Message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, e *apiError) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	body := map[string]any{"error": e.Message}
	if e.Errors != nil {
		body["errors"] = e.Errors
	}
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

// authenticate checks the bearer token (RFC 6750 §2.1) against the
// configured tokens, which are known only by their SHA-256: the presented
// token's hash is compared with every configured hash in constant time,
// so neither a match nor its position shows in the timing. It returns the
// token's name.
func authenticate(r *http.Request, tokens []config.Token) (string, error) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		e := errorf(http.StatusUnauthorized, "the admin API needs a bearer token with the scope admin: send Authorization: Bearer TOKEN")
		e.header = http.Header{"Www-Authenticate": {`Bearer realm="roster"`}}
		return "", e
	}
	found := FindToken(token, tokens)
	if found == nil {
		e := errorf(http.StatusUnauthorized, "the bearer token is not valid: it matches no token of the configuration (tokens[].hash)")
		e.header = http.Header{"Www-Authenticate": {`Bearer realm="roster", error="invalid_token"`}}
		return "", e
	}
	if !found.HasScope(config.ScopeAdmin) {
		e := errorf(http.StatusForbidden, "the token %q lacks the scope admin; add it to the token's scopes in the configuration", found.Name)
		e.header = http.Header{"Www-Authenticate": {`Bearer realm="roster", error="insufficient_scope", scope="admin"`}}
		return "", e
	}
	return found.Name, nil
}

// FindToken returns the configured token whose hash is the SHA-256 of
// token, or nil. The hash is compared with every configured hash in
// constant time, so neither a match nor its position shows in the timing.
// The admin page (package adminui) checks its session cookie with it.
func FindToken(token string, tokens []config.Token) *config.Token {
	sum := sha256.Sum256([]byte(token))
	var found *config.Token
	for i := range tokens {
		want, ok := tokenHash(tokens[i].Hash)
		if ok && subtle.ConstantTimeCompare(sum[:], want[:]) == 1 && found == nil {
			found = &tokens[i]
		}
	}
	return found
}

// tokenHash decodes "sha256:<64 hex digits>"; config.Load validates the
// form, so a bad one simply matches nothing.
func tokenHash(h string) ([sha256.Size]byte, bool) {
	var out [sha256.Size]byte
	digits, ok := strings.CutPrefix(h, "sha256:")
	if !ok || hex.DecodedLen(len(digits)) != sha256.Size {
		return out, false
	}
	if _, err := hex.Decode(out[:], []byte(strings.ToLower(digits))); err != nil {
		return out, false
	}
	return out, true
}

// limitBody bounds the request body by the configured limit; a body
// announced as larger is refused before it is read.
func limitBody(w http.ResponseWriter, r *http.Request, cfg *config.Config, body bodyKind) error {
	limit := int64(cfg.Limits.RequestBody)
	if body == bodyUpload {
		limit = int64(cfg.Limits.PushBody)
	}
	if r.ContentLength > limit {
		return bodyTooLarge(body, limit)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	return nil
}

func bodyTooLarge(body bodyKind, limit int64) *apiError {
	if body == bodyUpload {
		return errorf(http.StatusRequestEntityTooLarge, "the file is larger than limits.push_body (%s); nothing was changed", config.ByteSize(limit))
	}
	return errorf(http.StatusRequestEntityTooLarge, "the request body is larger than limits.request_body (%s)", config.ByteSize(limit))
}

// flexBool is a JSON boolean that identity platforms sometimes send as a
// string: true, false, "true", "false" (in any case).
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*b = flexBool(v)
		return nil
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			*b = true
			return nil
		case "false":
			*b = false
			return nil
		}
	}
	return fmt.Errorf("%s is not a boolean: use true or false", data)
}

// decodeBody decodes a JSON body into v, strictly: unknown keys and
// trailing data are errors. An empty body leaves v as it is and reports
// false.
func decodeBody(r *http.Request, v any) (bool, error) {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return false, err
		case errors.Is(err, io.EOF):
			return false, nil
		}
		return false, errorf(http.StatusBadRequest, "the request body is not valid JSON for this endpoint: %v", err)
	}
	if dec.More() {
		return false, errorf(http.StatusBadRequest, "the request body holds more than one JSON value")
	}
	return true, nil
}

// usageError maps a tasks.ErrUsage from the runner or the queue (the
// source or task is not in a state that allows the request) to 409, or to
// 404 when what it names does not exist.
func usageError(err error) error {
	if errors.Is(err, tasks.ErrUsage) {
		msg := strings.TrimPrefix(err.Error(), tasks.ErrUsage.Error()+": ")
		if errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusNotFound, "%s", msg)
		}
		return errorf(http.StatusConflict, "%s", msg)
	}
	return err
}
