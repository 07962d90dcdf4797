// Package pushapi serves the inbound push API of SPEC §3.3 over HTTP:
//
//	POST /api/v1/sources/{name}/push   roster's own path and answers
//	POST /api/userData:push            NocoBase's path and answer shape
//
// A push is validated completely first (400 with every problem, each
// naming the record index and field, and nothing stored), then stored
// durably with its raw record, and only then answered: 202 with the queued
// task on roster's path. The daemon applies it in the background, in the
// order pushes were accepted.
//
// NocoBase's clients expect the outcome in the answer, so on its path the
// handler waits (up to limits.push_wait, 30s by default) for the push to be
// applied and answers with what happened, in NocoBase's envelope
// {"code", "message", "result": [summary]}: the summary has the task id and
// status, the counts per action, one result per record (index, uid,
// status "applied", "failed" or "not_applied", and its errors) and the
// failed records (index, uid, field, message). "code" is 0 only when the
// push was applied (HTTP 200). A push whose task failed is answered 422
// (503 when it failed for a transient reason and is queued again), "code"
// the same and "message" the first error. A push not applied within the
// wait is answered 202, "code" 202, with its task id; it is applied all
// the same, and /api/v1/tasks/{id} follows it. The wait polls the task's
// row in the store, so it sees the outcome whichever replica applies the
// push. Errors before the push is stored keep the shape, with "code" the
// HTTP status and "message" the reason. The body's "sourceName" names the
// source there (default "api").
//
// Tokens need the scope push:NAME or push:*. An unknown source is 404; a
// source that is disabled or not a push source refuses with 409. A push
// that would take the records a source has accepted and not applied yet
// beyond limits.push_queue is refused with 503 and Retry-After (nothing
// stored), so that a client faster than the directory slows down instead
// of piling up work that would be applied minutes after its 202.
package pushapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/admin"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/push"
)

// DefaultSource is the source of a NocoBase push without "sourceName".
const DefaultSource = "api"

// Options connect the handler to the daemon.
type Options struct {
	// Config returns the configuration in force (tokens, sources, limits).
	Config func() *config.Config
	// Accept stores a validated push durably and returns its queued task.
	Accept func(ctx context.Context, source string, p *push.Payload) (*store.Task, error)
	// Applied is called after a push was accepted, to start applying it.
	Applied func(source string)
	// Task reads a task, for the NocoBase path's wait.
	Task func(ctx context.Context, id int64) (*store.Task, error)
	// Wait, when not 0, overrides limits.push_wait: how long the NocoBase
	// path waits for the outcome.
	Wait time.Duration
	// Observe, when set, counts every answer by source and status code;
	// source is "" when the request named no configured source.
	Observe func(source string, code int)
	Log     *slog.Logger
}

// RetryAfter is the Retry-After, in seconds, of a push refused because
// the source has too many records waiting (limits.push_queue).
const RetryAfter = 2

// New returns the push API; mount it for both paths.
func New(o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	h := &handler{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/sources/{name}/push", func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, r.PathValue("name"), false)
	})
	mux.HandleFunc("POST /api/userData:push", func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, "", true)
	})
	return mux
}

type handler struct{ o Options }

// failure is an answer other than success.
type failure struct {
	code    int
	message string
	errors  []push.RecordError
	header  http.Header
}

func fail(code int, format string, args ...any) *failure {
	return &failure{code: code, message: fmt.Sprintf(format, args...)}
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, source string, nocobase bool) {
	cfg := h.o.Config()
	known := ""
	task, p, f := h.accept(r, cfg, &source, nocobase)
	if src, ok := cfg.Source(source); ok {
		known = src.Name
	}
	code := http.StatusAccepted
	defer func() {
		if h.o.Observe != nil {
			h.o.Observe(known, code)
		}
	}()
	if f != nil {
		code = f.code
		for k, v := range f.header {
			w.Header()[k] = v
		}
		if nocobase {
			writeJSON(w, f.code, nocobaseAnswer{Code: f.code, Message: f.message, Result: []summary{{Failed: nonNil(f.errors)}}})
			return
		}
		body := map[string]any{"error": f.message}
		if f.errors != nil {
			body["errors"] = f.errors
		}
		writeJSON(w, f.code, body)
		return
	}
	h.o.Log.Info("push accepted", "source", source, "task", task.ID, "records", len(p.Users)+len(p.Departments), "data_type", p.DataType)
	if h.o.Applied != nil {
		h.o.Applied(source)
	}
	w.Header().Set("Location", "/api/v1/tasks/"+strconv.FormatInt(task.ID, 10))
	if !nocobase {
		writeJSON(w, http.StatusAccepted, tasks.ViewOf(task, nil))
		return
	}
	wait := h.o.Wait
	if wait == 0 {
		wait = time.Duration(cfg.Limits.PushWait)
	}
	done := h.wait(r.Context(), task, wait)
	s := summarize(done, p)
	var a nocobaseAnswer
	switch done.Status {
	case store.StatusSucceeded:
		code, a = http.StatusOK, nocobaseAnswer{Code: 0, Message: "success"}
	case store.StatusFailed:
		code = http.StatusUnprocessableEntity
		msg := fmt.Sprintf("the push was stored as task %d, and its task failed: %s", done.ID, firstError(s))
		if done.Transient {
			code = http.StatusServiceUnavailable
			msg += "; it failed for a transient reason and is applied again automatically"
		}
		a = nocobaseAnswer{Code: code, Message: msg}
	default:
		code = http.StatusAccepted
		a = nocobaseAnswer{Code: code, Message: fmt.Sprintf("accepted but not applied within limits.push_wait (%s): "+
			"task %d is %s; follow it at /api/v1/tasks/%d", wait, done.ID, done.Status, done.ID)}
	}
	a.Result = []summary{s}
	writeJSON(w, code, a)
}

// firstError is the message of a failed task's first error.
func firstError(s summary) string {
	switch len(s.Failed) {
	case 0:
		return "no error was recorded"
	case 1:
		return s.Failed[0].Message
	}
	return fmt.Sprintf("%s (and %s)", s.Failed[0].Message, sources.Plural(len(s.Failed)-1, "more error"))
}

// accept authenticates, reads, validates and stores one push.
func (h *handler) accept(r *http.Request, cfg *config.Config, source *string, nocobase bool) (*store.Task, *push.Payload, *failure) {
	tok, f := h.token(r, cfg)
	if f != nil {
		return nil, nil, f
	}
	// A body announced as larger than the limit is refused before a byte
	// of it is read; a chunked one is read up to the limit (the daemon
	// bounds it), as its size is known only then.
	if limit := int64(cfg.Limits.PushBody); r.ContentLength > limit {
		return nil, nil, fail(http.StatusRequestEntityTooLarge, "the payload is larger than limits.push_body (%s); nothing was stored", config.ByteSize(limit))
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, nil, fail(http.StatusRequestEntityTooLarge, "the payload is larger than limits.push_body (%s); nothing was stored", config.ByteSize(tooLarge.Limit))
		}
		return nil, nil, fail(http.StatusBadRequest, "the payload could not be read: %v", err)
	}
	p, err := push.Decode(body)
	if nocobase {
		// The source is named in the body; it is read even from a bad
		// payload, so that a token for another source learns nothing about it.
		*source = sourceName(p, body)
	}
	if f := h.source(cfg, *source, tok); f != nil {
		return nil, nil, f
	}
	if err != nil {
		var perr *push.Error
		if errors.As(err, &perr) {
			return nil, nil, &failure{code: http.StatusBadRequest, message: perr.Error() + "; nothing was stored", errors: perr.Errors}
		}
		return nil, nil, fail(http.StatusBadRequest, "%v", err)
	}
	src, _ := cfg.Source(*source)
	if _, errs := push.MapFields(p, src.Fields, cfg.Attributes.Model().Check); len(errs) > 0 {
		perr := &push.Error{Errors: errs}
		return nil, nil, &failure{code: http.StatusBadRequest, message: perr.Error() + "; nothing was stored", errors: errs}
	}
	task, err := h.o.Accept(r.Context(), *source, p)
	if err != nil {
		var busy *tasks.BusyError
		switch {
		case errors.Is(err, tasks.ErrUsage):
			return nil, nil, fail(http.StatusConflict, "%v", err)
		case errors.As(err, &busy):
			f := fail(http.StatusServiceUnavailable, "%v; nothing was stored", err)
			f.header = http.Header{"Retry-After": {strconv.Itoa(RetryAfter)}}
			return nil, nil, f
		}
		// The driver's words name the database's host, user and name: the
		// log has them, the client learns only what to do.
		h.o.Log.Error("push not stored", "source", *source, "err", err)
		// Other causes (an unwritable raw record folder) say what to fix.
		f := fail(http.StatusServiceUnavailable, "the push could not be stored, nothing was accepted: %v", err)
		if store.IsUnavailable(err) {
			f = fail(http.StatusServiceUnavailable, "the database is unavailable, nothing was accepted; send the push again later")
			f.header = http.Header{"Retry-After": {strconv.Itoa(RetryAfter)}}
		}
		return nil, nil, f
	}
	return task, p, nil
}

// sourceName is NocoBase's "sourceName", DefaultSource when absent; the
// body is read again only when it did not decode as a payload.
func sourceName(p *push.Payload, body []byte) string {
	name := ""
	if p != nil {
		name = p.SourceName
	} else {
		var top struct {
			SourceName string `json:"sourceName"`
		}
		if json.Unmarshal(body, &top) == nil {
			name = strings.TrimSpace(top.SourceName)
		}
	}
	if name == "" {
		return DefaultSource
	}
	return name
}

func (h *handler) token(r *http.Request, cfg *config.Config) (*config.Token, *failure) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		f := fail(http.StatusUnauthorized, "the push API needs a bearer token with the scope push:SOURCE or push:*: send Authorization: Bearer TOKEN")
		f.header = http.Header{"Www-Authenticate": {`Bearer realm="roster"`}}
		return nil, f
	}
	found := admin.FindToken(token, cfg.Tokens)
	if found == nil {
		f := fail(http.StatusUnauthorized, "the bearer token is not valid: it matches no token of the configuration (tokens[].hash)")
		f.header = http.Header{"Www-Authenticate": {`Bearer realm="roster", error="invalid_token"`}}
		return nil, f
	}
	return found, nil
}

// source checks that tok may push to the source and the source takes pushes.
func (h *handler) source(cfg *config.Config, name string, tok *config.Token) *failure {
	scope := config.ScopePushPrefix + name
	if !tok.HasScope(scope) {
		f := fail(http.StatusForbidden, "the token %q lacks the scope %s (or push:*)", tok.Name, scope)
		f.header = http.Header{"Www-Authenticate": {`Bearer realm="roster", error="insufficient_scope", scope="` + scope + `"`}}
		return f
	}
	src, ok := cfg.Source(name)
	switch {
	case !ok:
		return fail(http.StatusNotFound, "no source %q is configured", name)
	case src.Type != config.TypePush:
		return fail(http.StatusConflict, "source %q is a %s source; only push sources take pushes", name, src.Type)
	case !src.Enabled:
		return fail(http.StatusConflict, "source %q is disabled (enabled: false) and refuses pushes", name)
	}
	return nil
}

// wait polls the task until it ends, the wait is over or the client left.
// Polling the store works whichever replica applies the push.
func (h *handler) wait(ctx context.Context, t *store.Task, wait time.Duration) *store.Task {
	deadline := time.Now().Add(wait)
	tick := 10 * time.Millisecond
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return t
		case <-time.After(tick):
		}
		cur, err := h.o.Task(ctx, t.ID)
		if err == nil {
			t = cur
			if t.Status != store.StatusQueued && t.Status != store.StatusRunning {
				return t
			}
		}
		tick = min(2*tick, 250*time.Millisecond)
	}
	return t
}

type nocobaseAnswer struct {
	Code    int       `json:"code"`
	Message string    `json:"message"`
	Result  []summary `json:"result"`
}

// summary is the outcome of one push in NocoBase's answer.
type summary struct {
	TaskID   int64              `json:"taskId,omitempty"`
	Status   string             `json:"status,omitempty"`
	DataType string             `json:"dataType,omitempty"`
	Counts   json.RawMessage    `json:"counts,omitempty"`
	Records  []recordResult     `json:"records,omitempty"`
	Failed   []push.RecordError `json:"failed"`
}

// recordResult is the outcome of one record of a push. A push is applied
// in one transaction: when any record fails, the others are not applied.
type recordResult struct {
	Index  int      `json:"index"`
	UID    string   `json:"uid"`
	Status string   `json:"status"`
	Errors []string `json:"errors,omitempty"`
}

// Record outcomes in a summary.
const (
	recordApplied    = "applied"
	recordFailed     = "failed"
	recordNotApplied = "not_applied"
	recordWaiting    = "queued"
)

func summarize(t *store.Task, p *push.Payload) summary {
	s := summary{TaskID: t.ID, Status: t.Status, DataType: p.DataType, Failed: []push.RecordError{}}
	if t.Counts != "" && t.Counts != "{}" {
		s.Counts = json.RawMessage(t.Counts)
	}
	var errs []sources.FieldError
	if json.Unmarshal([]byte(t.Errors), &errs) == nil {
		for _, e := range errs {
			s.Failed = append(s.Failed, push.RecordError{Index: recordIndex(e.Message), Field: e.Field, Message: e.Message})
		}
	}
	byIndex := map[int][]string{}
	for _, f := range s.Failed {
		if f.Index >= 0 {
			byIndex[f.Index] = append(byIndex[f.Index], f.Message)
		}
	}
	status := recordWaiting
	switch t.Status {
	case store.StatusSucceeded:
		status = recordApplied
	case store.StatusFailed:
		status = recordNotApplied
	}
	add := func(index int, uid string) {
		r := recordResult{Index: index, UID: uid, Status: status, Errors: byIndex[index]}
		if len(r.Errors) > 0 {
			r.Status = recordFailed
		}
		s.Records = append(s.Records, r)
	}
	for _, u := range p.Users {
		add(u.Index, u.UID)
	}
	for _, d := range p.Departments {
		add(d.Index, d.UID)
	}
	return s
}

// recordIndex reads the index out of "records[N] ...", -1 when absent.
func recordIndex(msg string) int {
	rest, ok := strings.CutPrefix(msg, "records[")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, ']'), 0)])
	if err != nil {
		return -1
	}
	return n
}

func nonNil(e []push.RecordError) []push.RecordError {
	if e == nil {
		return []push.RecordError{}
	}
	return e
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
