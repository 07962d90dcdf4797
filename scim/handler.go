// Package scim serves roster's directory as a SCIM 2.0 endpoint (RFC 7643, RFC 7644 and RFC 9865 cursors) over a storage-agnostic Directory.
//
// The Handler routes requests under its base path, authenticates bearer
// tokens, parses query parameters and SearchRequest bodies, checks
// filters against the schema (scim/schema), asks the Directory for
// resources, applies attributes and excludedAttributes, and answers with
// application/scim+json bodies or RFC 7644 §3.12 errors (scim/scimerr).
// It knows nothing of SQL: filters travel to the Directory as the AST of
// scim/filter.
//
// Decisions where the RFCs leave room:
//
//   - Every endpoint needs a bearer token with scope scim:read,
//     scim:write or admin, the discovery endpoints included.
//   - Query parameter names are matched case-insensitively, and unknown
//     ones, such as Entra ID's aadOptscim062020 flag, are ignored.
//   - count defaults to 100 and is capped at 1000; a negative count is
//     0, and a startIndex below 1 is 1 (RFC 7644 §3.4.2.4); an empty
//     one is taken as absent. A count or startIndex that is not an
//     integer is 400 invalidValue, as is a request with both startIndex
//     and cursor.
//   - Without sortBy, resources come in id order, which is creation
//     order for roster's UUIDv7 ids, so pages are stable. Sorting is
//     offered on every attribute with a value the filters compare
//     (custom attributes included); others are 400 invalidValue.
//   - The User resource type is Options.Users: with custom attributes
//     (SPEC §2.1) it has a third schema, an optional extension; a user
//     carries its URN in schemas when it has values there.
//   - Cursors never expire; see cursor.go.
//   - Lists are written resource by resource as they are encoded, so an
//     answer is never held whole (and carries no Content-Length). A
//     Directory that is a MemberReader may leave a group's members to be
//     read MemberPiece at a time while the group is written: every
//     member is answered, in bounded memory, however large the group.
//   - Unknown names in attributes and excludedAttributes are ignored.
//   - Writes (SPEC §3.4) need a UserWriter in Options and a token with
//     scope scim:write or admin (scim:read alone is 403). Users are
//     written, and groups when the UserWriter is also a GroupWriter;
//     otherwise POST on /Groups and PUT, PATCH and DELETE on a group
//     answer 501 Not Implemented rather than 405, because these methods
//     are part of the endpoints' contract and a 405 would tell clients,
//     through its Allow header, that they never will be. Without a
//     UserWriter, user writes answer 501 too.
//   - Groups are written like users: POST creates a group of the scim
//     source, PUT, PATCH and DELETE change only its groups (400
//     mutability otherwise). displayName is required and unique within
//     the source, case-insensitively (409 uniqueness). Members are users
//     or groups of any source, by id, with type User or Group or none;
//     an unknown id, or the group itself, is 400 invalidValue. PATCH
//     writes only the memberships that change. DELETE removes the group
//     for good, with its memberships in both directions. The answers of
//     POST, PUT and PATCH honour attributes and excludedAttributes.
//   - POST /Users creates a user owned by the configured scim source
//     (501 when there is none); PUT, PATCH and DELETE change only users
//     of that source, others answer 400 mutability naming their owner.
//     The exception is SPEC §4.4: a PATCH by an admin token that changes
//     nothing but active sets the flag on a user of any source, as an
//     operator's choice that later syncs keep.
//   - PUT replaces every writable attribute; an absent password keeps
//     the stored one (it is write-only, so no client can send it back),
//     and an absent externalId keeps the stored one. A user created
//     without externalId gets its id as externalId, since a source's
//     users are keyed by it. A POST whose externalId is that of a deleted
//     user of the scim source restores that user with the same id.
//   - PATCH loads the user, applies the operations (scim/patch) and
//     writes the result as PUT does. Passwords are at least 8
//     characters (400 invalidValue) and stored only as a hash.
//   - DELETE makes the user a tombstone (404 from then on, restorable)
//     and removes its group memberships.
//   - If-Match is honoured on PUT, PATCH and DELETE (412 when stale).
package scim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// DefaultBasePath is where SPEC §6 serves SCIM.
const DefaultBasePath = "/scim/v2"

// DefaultMaxBodyBytes bounds a SearchRequest body when Options has no
// limit: the default of limits.request_body.
const DefaultMaxBodyBytes = 10 << 20

// Options configure a Handler.
type Options struct {
	// Directory answers the queries. Required.
	Directory Directory
	// Authenticator checks bearer tokens (see Tokens). Required.
	Authenticator Authenticator
	// BaseURL is the absolute URL of the endpoint, such as
	// "https://roster.example.com/scim/v2", used in meta.location and
	// $ref. Empty: derived from each request's Host, with https when the
	// request came over TLS (forwarding headers are not trusted).
	BaseURL string
	// BasePath is the path the Handler is mounted at; default
	// DefaultBasePath.
	BasePath string
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes. A
	// body that a caller has already bounded with http.MaxBytesReader
	// keeps the smaller limit, and either answers 413.
	MaxBodyBytes int64
	// Config is what /ServiceProviderConfig advertises, and its
	// pagination sizes are the ones applied; nil means
	// schema.DefaultConfigOptions(), with PATCH and changePassword
	// advertised only when Writer is set.
	Config *schema.ConfigOptions
	// Writer writes users (SPEC §3.4), and groups when it is also a
	// GroupWriter; nil answers every write with 501.
	Writer UserWriter
	// Source returns the name of the configured source of type scim, or
	// "" when there is none. It is called on every write, so one that
	// reads the live configuration follows reloads. nil means none.
	Source func() string
	// Logger receives the errors that answer 500; nil discards them.
	Logger *slog.Logger
	// Users is the User resource type served, with the schema of the
	// configured custom attributes (schema.NewUsers); the zero value is
	// schema.Users, which has none. The Directory must filter and sort by
	// the same type.
	Users schema.ResourceType
	// Observe, when set, is called once per request with the method, the
	// resource endpoint ("Users", "Groups", "ServiceProviderConfig",
	// "ResourceTypes", "Schemas" or "other"), the status and the time
	// taken, for the roster_scim_requests_total and
	// roster_scim_request_duration_seconds metrics.
	Observe func(method, resource string, status int, elapsed time.Duration)
}

// Handler is the SCIM endpoint, an http.Handler for everything under its
// base path.
type Handler struct {
	users      schema.ResourceType
	dir        Directory
	writer     UserWriter
	sourceName func() string
	auth       Authenticator
	baseURL    string
	basePath   string
	maxBody    int64
	cfg        schema.ConfigOptions
	log        *slog.Logger
	observe    func(string, string, int, time.Duration)
	defCount   int
	maxCount   int
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the SCIM endpoint. It panics when Directory or
// Authenticator is missing, which is a wiring mistake.
func NewHandler(o Options) *Handler {
	if o.Directory == nil || o.Authenticator == nil {
		panic("scim.NewHandler: Options.Directory and Options.Authenticator are required")
	}
	h := &Handler{
		users:      o.Users,
		dir:        o.Directory,
		writer:     o.Writer,
		sourceName: o.Source,
		auth:       o.Authenticator,
		baseURL:    strings.TrimRight(o.BaseURL, "/"),
		basePath:   "/" + strings.Trim(o.BasePath, "/"),
		maxBody:    o.MaxBodyBytes,
		log:        o.Logger,
		observe:    o.Observe,
		defCount:   schema.DefaultCount,
		maxCount:   schema.MaxResults,
	}
	if o.BasePath == "" {
		h.basePath = DefaultBasePath
	}
	if h.users.ID == "" {
		h.users = schema.Users
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if o.Config != nil {
		h.cfg = *o.Config
	} else {
		h.cfg = schema.DefaultConfigOptions()
		// Without a writer this Handler takes no PATCH (see the package
		// comment), and discovery must be truthful (SPEC §6).
		h.cfg.Patch = o.Writer != nil
		// A writer sets passwords through PUT and PATCH.
		h.cfg.ChangePassword = o.Writer != nil
	}
	if p := h.cfg.Pagination; p != nil {
		if p.DefaultPageSize > 0 {
			h.defCount = p.DefaultPageSize
		}
		if p.MaxPageSize > 0 {
			h.maxCount = p.MaxPageSize
		}
	}
	return h
}

// statusWriter remembers the status for Observe.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP routes a request under the base path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	rest, ok := strings.CutPrefix(r.URL.Path, h.basePath)
	var segs []string
	if ok && (rest == "" || rest[0] == '/') {
		if rest = strings.Trim(rest, "/"); rest != "" {
			segs = strings.Split(rest, "/")
		}
	}
	resource := "other"
	if len(segs) > 0 {
		resource = endpointName(segs[0])
	}
	if h.observe != nil {
		defer func() { h.observe(r.Method, resource, sw.status, time.Since(start)) }()
	}
	p, err := h.authenticate(r)
	if err != nil {
		h.fail(sw, r, err)
		return
	}
	if !ok || len(segs) == 0 {
		h.fail(sw, r, &scimerr.Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("no SCIM endpoint at %s", r.URL.Path)})
		return
	}
	h.route(sw, r, p, resource, segs)
}

// validID reports whether id may name a resource: valid UTF-8 without
// NUL, as every stored id is.
func validID(id string) bool {
	return utf8.ValidString(id) && !strings.ContainsRune(id, 0)
}

// endpointName matches an endpoint name case-insensitively, as some
// clients lower-case paths; it returns "other" for anything else.
func endpointName(seg string) string {
	for _, name := range []string{"Users", "Groups", "ServiceProviderConfig", "ResourceTypes", "Schemas"} {
		if strings.EqualFold(seg, name) {
			return name
		}
	}
	return "other"
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request, p Principal, resource string, segs []string) {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	switch resource {
	case "Users", "Groups":
		rt := h.users
		if resource == "Groups" {
			rt = schema.Groups
		}
		switch {
		case len(segs) == 1:
			switch method {
			case http.MethodGet:
				h.list(w, r, rt, nil)
			case http.MethodPost:
				if rt.ID == schema.Users.ID && h.writer != nil {
					h.writeUser(w, r, p, "")
					return
				}
				if rt.ID == schema.Groups.ID && h.groupWriter() != nil {
					h.writeGroup(w, r, p, "")
					return
				}
				h.fail(w, r, notYet(rt))
			default:
				h.fail(w, r, scimerr.MethodNotAllowed(r.Method, "GET", "HEAD", "POST"))
			}
		case len(segs) == 2 && segs[1] == ".search":
			if method != http.MethodPost {
				h.fail(w, r, scimerr.MethodNotAllowed(r.Method, "POST"))
				return
			}
			h.search(w, r, rt)
		case len(segs) == 2 && !validID(segs[1]):
			// No resource has such an id, and PostgreSQL would refuse to
			// look for it.
			h.fail(w, r, scimerr.NotFound(rt.Name, segs[1]))
		case len(segs) == 2:
			switch method {
			case http.MethodGet:
				h.get(w, r, rt, segs[1])
			case http.MethodPut, http.MethodPatch, http.MethodDelete:
				if rt.ID == schema.Users.ID && h.writer != nil {
					h.writeUser(w, r, p, segs[1])
					return
				}
				if rt.ID == schema.Groups.ID && h.groupWriter() != nil {
					h.writeGroup(w, r, p, segs[1])
					return
				}
				h.fail(w, r, notYet(rt))
			default:
				h.fail(w, r, scimerr.MethodNotAllowed(r.Method, "GET", "HEAD", "PUT", "PATCH", "DELETE"))
			}
		default:
			h.notFound(w, r)
		}
	case "ServiceProviderConfig", "ResourceTypes", "Schemas":
		if method != http.MethodGet {
			h.fail(w, r, scimerr.MethodNotAllowed(r.Method, "GET", "HEAD"))
			return
		}
		h.discovery(w, r, resource, segs[1:])
	default:
		switch {
		case len(segs) == 1 && (strings.EqualFold(segs[0], "Bulk") || strings.EqualFold(segs[0], "Me")):
			h.fail(w, r, scimerr.NotImplemented(fmt.Sprintf("roster does not offer the /%s endpoint", segs[0])))
		case len(segs) == 1 && segs[0] == ".search":
			h.fail(w, r, scimerr.NotImplemented("roster does not search across resource types; use /Users/.search or /Groups/.search"))
		default:
			h.notFound(w, r)
		}
	}
}

func notYet(rt schema.ResourceType) error {
	return scimerr.NotImplemented(fmt.Sprintf("roster serves %s read-only for now; provisioning through SCIM comes with the scim source type", rt.Endpoint))
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, &scimerr.Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("no SCIM endpoint at %s", r.URL.Path)})
}

// fail answers with err as a SCIM error; errors that are not a
// *scimerr.Error answer 500 and are logged, since their text is not for
// the client.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var se *scimerr.Error
	var down interface{ Unavailable() bool } // the database is out of reach (store.ErrUnavailable)
	if !errors.As(err, &se) && errors.As(err, &down) && down.Unavailable() {
		h.log.Warn("scim request failed: the database is unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		err = scimerr.Unavailable()
	}
	if !errors.As(err, &se) {
		if errors.Is(err, context.Canceled) {
			h.log.Debug("scim request canceled", "method", r.Method, "path", r.URL.Path)
		} else {
			h.log.Error("scim request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	scimerr.Write(w, err)
}

// base is the absolute URL that locations and references start with.
func (h *Handler) base(r *http.Request) string {
	if h.baseURL != "" {
		return h.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + h.basePath
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		scimerr.Write(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", scimerr.ContentType)
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// get answers GET /Users/{id} and GET /Groups/{id}, with the ETag header
// and If-None-Match (RFC 7644 §3.14).
func (h *Handler) get(w http.ResponseWriter, r *http.Request, rt schema.ResourceType, id string) {
	params := lowerKeys(r)
	proj := newProjection(rt, splitList(params.get("attributes")), splitList(params.get("excludedattributes")))
	var (
		res     any
		group   *Group
		version string
		err     error
	)
	if rt.ID == schema.Users.ID {
		var u *User
		if u, err = h.dir.User(r.Context(), id, proj.include()); err == nil {
			version = metaVersion(u.Meta)
			h.finishUser(u, h.base(r))
			proj.user(u)
			res = u
		}
	} else {
		var g *Group
		if g, err = h.dir.Group(r.Context(), id, proj.include()); err == nil {
			version = metaVersion(g.Meta)
			h.finishGroup(g, h.base(r))
			proj.group(g)
			res, group = g, g
		}
	}
	if err != nil {
		h.fail(w, r, h.directoryError(err, rt, id))
		return
	}
	w.Header().Set("Content-Type", scimerr.ContentType)
	if version != "" {
		w.Header().Set("ETag", version)
		if im := r.Header.Get("If-Match"); im != "" && !etagMatch(im, version) {
			// RFC 7232 §3.1: If-Match holds on every method.
			h.fail(w, r, scimerr.PreconditionFailed(fmt.Sprintf("%s %q has changed since the version given in If-Match", strings.ToLower(rt.Name), id)))
			return
		}
		if etagMatch(r.Header.Get("If-None-Match"), version) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if group != nil {
		h.answerOneGroup(w, r, http.StatusOK, proj, group)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func metaVersion(m *Meta) string {
	if m == nil {
		return ""
	}
	return m.Version
}

// etagMatch applies the weak comparison RFC 7232 §3.2 prescribes for
// If-None-Match to a header value listing entity tags, or "*".
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == want {
			return true
		}
	}
	return false
}

// directoryError turns what a Directory returned into the SCIM error to
// send.
func (h *Handler) directoryError(err error, rt schema.ResourceType, id string) error {
	var fe *FilterError
	switch {
	case errors.Is(err, ErrNotFound):
		return scimerr.NotFound(rt.Name, id)
	case errors.Is(err, ErrInvalidSort):
		return scimerr.InvalidValue("cannot sort by that attribute: " + err.Error())
	case errors.Is(err, ErrInvalidCursor):
		return invalidCursor("the cursor is not one this server issued; start again with an empty cursor")
	case errors.As(err, &fe):
		return scimerr.InvalidFilter(fe.Error())
	}
	return err
}

// finishUser fills in what depends on the endpoint's URL.
func (h *Handler) finishUser(u *User, base string) {
	if u.Meta == nil {
		u.Meta = &Meta{}
	}
	u.Meta.ResourceType = schema.Users.Name
	u.Meta.Location = base + "/Users/" + u.ID
	for i := range u.Groups {
		u.Groups[i].Ref = base + "/Groups/" + u.Groups[i].Value
	}
	if e := u.Enterprise; e != nil && e.Manager != nil && e.Manager.DisplayName != "" {
		e.Manager.Ref = base + "/Users/" + e.Manager.Value
	}
}

func (h *Handler) finishGroup(g *Group, base string) {
	if g.Meta == nil {
		g.Meta = &Meta{}
	}
	g.Meta.ResourceType = schema.Groups.Name
	g.Meta.Location = base + "/Groups/" + g.ID
	for i := range g.Members {
		m := &g.Members[i]
		if m.Type == schema.Groups.Name {
			m.Ref = base + "/Groups/" + m.Value
		} else {
			m.Ref = base + "/Users/" + m.Value
		}
	}
	if g.Roster != nil {
		for i := range g.Roster.Owners {
			g.Roster.Owners[i].Ref = base + "/Users/" + g.Roster.Owners[i].Value
		}
	}
}

// discovery answers the endpoints of RFC 7644 §4. Query parameters are
// ignored there.
func (h *Handler) discovery(w http.ResponseWriter, r *http.Request, endpoint string, rest []string) {
	base := h.base(r)
	var docs []map[string]any
	switch endpoint {
	case "ServiceProviderConfig":
		if len(rest) > 0 {
			h.notFound(w, r)
			return
		}
		writeJSON(w, http.StatusOK, schema.ServiceProviderConfig(base, h.cfg))
		return
	case "ResourceTypes":
		docs = schema.ResourceTypesDocument(base, h.users, schema.Groups)
	default:
		docs = schema.SchemasDocument(base, h.users, schema.Groups)
	}
	switch len(rest) {
	case 0:
		writeJSON(w, http.StatusOK, listResponse(len(docs), 1, docs, len(docs)))
	case 1:
		for _, d := range docs {
			if id, _ := d["id"].(string); strings.EqualFold(id, rest[0]) {
				writeJSON(w, http.StatusOK, d)
				return
			}
		}
		what := "resource type"
		if endpoint == "Schemas" {
			what = "schema"
		}
		h.fail(w, r, &scimerr.Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("%s %q not found", what, rest[0])})
	default:
		h.notFound(w, r)
	}
}

// search answers POST /Users/.search and POST /Groups/.search.
func (h *Handler) search(w http.ResponseWriter, r *http.Request, rt schema.ResourceType) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != scimerr.ContentType && mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			h.fail(w, r, &scimerr.Error{Status: http.StatusUnsupportedMediaType,
				Detail: fmt.Sprintf("send the SearchRequest as %s or application/json, not %q", scimerr.ContentType, ct)})
			return
		}
	}
	body := http.MaxBytesReader(w, r.Body, h.maxBody)
	dec := json.NewDecoder(body)
	var req SearchRequest
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.fail(w, r, scimerr.PayloadTooLarge(tooBig.Limit))
			return
		}
		h.fail(w, r, scimerr.InvalidSyntax(fmt.Sprintf("the body is not a SearchRequest: %v", err)))
		return
	}
	if req.Schemas != nil && !containsFold(req.Schemas, schema.SearchRequestURN) {
		h.fail(w, r, scimerr.InvalidSyntax(fmt.Sprintf("a SearchRequest lists the schema %s", schema.SearchRequestURN)))
		return
	}
	h.list(w, r, rt, &req)
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// params are a request's query parameters with lower-cased names.
type params map[string][]string

func lowerKeys(r *http.Request) params {
	query := r.URL.Query()
	// In name order, so that of "filter" and "Filter" the same one wins
	// every time.
	names := make([]string, 0, len(query))
	for k := range query {
		names = append(names, k)
	}
	slices.Sort(names)
	p := params{}
	for _, k := range names {
		lk := strings.ToLower(k)
		p[lk] = append(p[lk], query[k]...)
	}
	return p
}

func (p params) get(name string) string {
	if vs := p[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (p params) has(name string) bool { _, ok := p[name]; return ok }

// listRequest is a list or search request, from query parameters or a
// SearchRequest body.
type listRequest struct {
	filter     string
	sortBy     string
	sortOrder  string
	startIndex *string // as sent; nil when absent
	count      *string
	cursor     *string
	attributes []string
	excluded   []string
}

func fromQuery(r *http.Request) listRequest {
	p := lowerKeys(r)
	l := listRequest{
		filter:     p.get("filter"),
		sortBy:     p.get("sortby"),
		sortOrder:  p.get("sortorder"),
		attributes: splitList(p.get("attributes")),
		excluded:   splitList(p.get("excludedattributes")),
	}
	// An empty startIndex or count is taken as absent; an empty cursor
	// asks for the first page (RFC 9865 §2).
	for name, dst := range map[string]**string{"startindex": &l.startIndex, "count": &l.count, "cursor": &l.cursor} {
		if v := p.get(name); p.has(name) && (v != "" || name == "cursor") {
			*dst = &v
		}
	}
	return l
}

func fromBody(req *SearchRequest) listRequest {
	l := listRequest{
		filter:    req.Filter,
		sortBy:    req.SortBy,
		sortOrder: req.SortOrder,
		cursor:    req.Cursor,
	}
	for _, a := range req.Attributes {
		l.attributes = append(l.attributes, splitList(a)...)
	}
	for _, a := range req.ExcludedAttributes {
		l.excluded = append(l.excluded, splitList(a)...)
	}
	if req.StartIndex != nil {
		s := strconv.Itoa(*req.StartIndex)
		l.startIndex = &s
	}
	if req.Count != nil {
		s := strconv.Itoa(*req.Count)
		l.count = &s
	}
	return l
}

// query turns a list request into a Directory query.
func (h *Handler) query(rt schema.ResourceType, l listRequest, proj *projection) (Query, error) {
	q := Query{Count: h.defCount, Include: proj.include()}
	if text := strings.TrimSpace(l.filter); text != "" {
		f, err := filter.Parse(text)
		if err != nil {
			return q, scimerr.InvalidFilter(err.Error())
		}
		if err := checkFilter(rt, text, f); err != nil {
			return q, scimerr.InvalidFilter(err.Error())
		}
		q.Filter = f
	}
	if s := strings.TrimSpace(l.sortBy); s != "" {
		by, err := sortKey(rt, s)
		if err != nil {
			return q, err
		}
		q.SortBy = by
		switch o := strings.TrimSpace(l.sortOrder); {
		case o == "" || strings.EqualFold(o, "ascending"):
		case strings.EqualFold(o, "descending"):
			q.Descending = true
		default:
			return q, scimerr.InvalidValue(fmt.Sprintf("sortOrder is %q; use ascending or descending", o))
		}
	}
	if l.count != nil {
		n, err := strconv.Atoi(strings.TrimSpace(*l.count))
		if err != nil {
			return q, scimerr.InvalidValue(fmt.Sprintf("count is %q; it must be an integer from 0 to %d", *l.count, h.maxCount))
		}
		q.Count = min(max(n, 0), h.maxCount)
	}
	if l.startIndex != nil {
		if l.cursor != nil {
			return q, scimerr.InvalidValue("use either startIndex (index pagination) or cursor (cursor pagination), not both")
		}
		n, err := strconv.Atoi(strings.TrimSpace(*l.startIndex))
		if err != nil {
			return q, scimerr.InvalidValue(fmt.Sprintf("startIndex is %q; it must be an integer, 1 for the first result", *l.startIndex))
		}
		q.Offset = max(n, 1) - 1
	}
	if l.cursor != nil {
		after, err := decodeCursor(*l.cursor, queryPrint(rt.ID, q.Filter, q.SortBy, q.Descending))
		if err != nil {
			return q, err
		}
		q.Cursor, q.After = true, after
	}
	return q, nil
}

// sortKey resolves sortBy to the canonical path of an attribute of the
// resource type: the schema's spelling, extension attributes prefixed
// with their URN. Whether it has an order is the Directory's to say.
func sortKey(rt schema.ResourceType, s string) (string, error) {
	urn, name, sub := schema.SplitPath(s)
	a, owner, ok := rt.Lookup(urn, name, "")
	if ok && a.Returned != schema.ReturnedNever {
		key := a.Name
		if sub != "" {
			sa, ok := a.Sub(sub)
			if !ok {
				return "", badSort(rt, s)
			}
			if !(a.MultiValued && sa.Name == "value") { // a multi-valued attribute sorts by its (primary) value
				key += "." + sa.Name
			}
		}
		if owner != rt.Schema {
			key = owner + ":" + key
		}
		return key, nil
	}
	return "", badSort(rt, s)
}

func badSort(rt schema.ResourceType, s string) error {
	return scimerr.InvalidValue(fmt.Sprintf("cannot sort %s by %q: sortBy takes an attribute of %s with a value, such as userName",
		rt.Endpoint[1:], s, rt.Name))
}

// list answers GET /Users, GET /Groups and their .search forms (body is
// then the SearchRequest).
func (h *Handler) list(w http.ResponseWriter, r *http.Request, rt schema.ResourceType, body *SearchRequest) {
	var l listRequest
	if body != nil {
		l = fromBody(body)
	} else {
		l = fromQuery(r)
	}
	proj := newProjection(rt, l.attributes, l.excluded)
	q, err := h.query(rt, l, proj)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	base := h.base(r)
	var (
		n, total int
		next     *Position
	)
	var write func(bw *bufio.Writer, e *encoder, i int) error
	if rt.ID == schema.Users.ID {
		var page *Page[User]
		if page, err = h.dir.Users(r.Context(), q); err == nil {
			for _, u := range page.Resources {
				h.finishUser(u, base)
				proj.user(u)
			}
			n, total, next = len(page.Resources), page.Total, page.Next
			write = func(bw *bufio.Writer, e *encoder, i int) error {
				b, err := e.marshal(page.Resources[i])
				if err == nil {
					_, err = bw.Write(b)
				}
				page.Resources[i] = nil // written: the collector may have it
				return err
			}
		}
	} else {
		var page *Page[Group]
		if page, err = h.dir.Groups(r.Context(), q); err == nil {
			for _, g := range page.Resources {
				h.finishGroup(g, base)
				proj.group(g)
			}
			n, total, next = len(page.Resources), page.Total, page.Next
			write = func(bw *bufio.Writer, e *encoder, i int) error {
				err := h.encodeGroup(r.Context(), bw, e, proj, page.Resources[i], base)
				page.Resources[i] = nil
				return err
			}
		}
	}
	if err != nil {
		h.fail(w, r, h.directoryError(err, rt, ""))
		return
	}
	resp := listResponse(total, q.Offset+1, nil, n)
	if q.Cursor {
		resp.StartIndex = 0
		if next != nil && q.Count > 0 {
			resp.NextCursor = encodeCursor(next, queryPrint(rt.ID, q.Filter, q.SortBy, q.Descending))
		}
	}
	h.writeList(w, r, resp, n, write)
}
