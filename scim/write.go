package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/scim/patch"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// UserWriter is what the SCIM layer writes users through (SPEC §3.4).
// Each method is one transaction. The store implements it.
//
// Errors: an unknown id or a tombstone wraps ErrNotFound; a stale
// ifMatch wraps ErrPreconditionFailed; a userName held by another live
// user is a *UniquenessError, one the directory refuses a *ValueError; a
// user owned by another source than the one named is an *OwnerError.
type UserWriter interface {
	// CreateUser creates a user owned by source and returns it as
	// stored. A tombstone of source with the same externalId is restored
	// instead, keeping its id.
	CreateUser(ctx context.Context, source string, u *UserWrite) (*User, error)
	// ReplaceUser replaces every attribute of a user owned by source. A
	// non-empty ifMatch is an If-Match header value the user's current
	// version must match.
	ReplaceUser(ctx context.Context, source, id string, u *UserWrite, ifMatch string) (*User, error)
	// DeleteUser makes a user owned by source a tombstone and removes its
	// memberships.
	DeleteUser(ctx context.Context, source, id string, ifMatch string) error
	// SetUserActive sets the active flag of any user, whatever its owner,
	// as an operator's choice (SPEC §4.4).
	SetUserActive(ctx context.Context, id string, active bool) (*User, error)
	// UserOwner returns the name of the source that owns a live user.
	UserOwner(ctx context.Context, id string) (string, error)
}

// UserWrite is a user as a client writes it: every writable attribute of
// the User resource and its enterprise extension, in wire form. ID,
// Groups, Meta and the manager's displayName and $ref are empty; an
// attribute the client left out is empty, except Active, which is nil
// then (a write that does not name active keeps the stored state; a
// created user is active). ExternalID is only what the client sent,
// never invented (RFC 7643 §3.1). Name.Formatted and DisplayName are
// stored as sent; the UserWriter derives them when they are empty.
type UserWrite struct {
	User
	// Password is the new password in clear text, "" to keep the stored
	// one. The UserWriter hashes it; it is never stored, logged or
	// returned as given.
	Password string
}

// MinPasswordLength is the shortest password a SCIM write may set.
const MinPasswordLength = 8

// ErrPreconditionFailed is wrapped by the errors a UserWriter returns
// when If-Match names a version that is no longer current.
var ErrPreconditionFailed = errors.New("the resource changed since the version given in If-Match")

// ValueError is a value a UserWriter refuses (400 invalidValue), such as
// a userName outside the directory's identifier profile.
type ValueError struct{ Detail string }

func (e *ValueError) Error() string { return e.Detail }

// UniquenessError is a value another resource holds already (409).
type UniquenessError struct{ Detail string }

func (e *UniquenessError) Error() string { return e.Detail }

// OwnerError is a write to a resource that another source owns.
type OwnerError struct {
	Resource string // "user"
	ID       string
	Owner    string
}

func (e *OwnerError) Error() string {
	return fmt.Sprintf("%s %q is owned by source %q; only that source changes it", e.Resource, e.ID, e.Owner)
}

// IfMatch reports whether an If-Match header value lists etag (weak
// comparison, as SCIM versions are weak tags) or is "*".
func IfMatch(header, etag string) bool { return etagMatch(header, etag) }

// writeScopes grant the writes.
var writeScopes = []string{config.ScopeSCIMWrite, config.ScopeAdmin}

func hasScope(p Principal, scopes ...string) bool {
	for _, s := range p.Scopes {
		if slices.Contains(scopes, s) {
			return true
		}
	}
	return false
}

// source is the name of the configured scim source, "" when there is none.
func (h *Handler) source() string {
	if h.sourceName == nil {
		return ""
	}
	return h.sourceName()
}

// writeUser routes a write on /Users (id "" for POST).
func (h *Handler) writeUser(w http.ResponseWriter, r *http.Request, p Principal, id string) {
	if !hasScope(p, writeScopes...) {
		e := scimerr.Forbidden("the token lacks the scope scim:write")
		e.Header = http.Header{"Www-Authenticate": {`Bearer realm="roster", error="insufficient_scope", scope="scim:write"`}}
		h.fail(w, r, e)
		return
	}
	switch r.Method {
	case http.MethodPost:
		h.createUser(w, r)
	case http.MethodPut:
		h.replaceUser(w, r, id)
	case http.MethodPatch:
		h.patchUser(w, r, p, id)
	case http.MethodDelete:
		h.deleteUser(w, r, id)
	}
}

// writeError turns what a UserWriter returned into the SCIM error to send.
func (h *Handler) writeError(err error, id string) error {
	var ue *UniquenessError
	var oe *OwnerError
	var ve *ValueError
	switch {
	case errors.As(err, &ve):
		return scimerr.InvalidValue(ve.Detail)
	case errors.As(err, &ue):
		return scimerr.Uniqueness(ue.Detail)
	case errors.As(err, &oe):
		return h.ownerError(oe)
	case errors.Is(err, ErrPreconditionFailed):
		return scimerr.PreconditionFailed(fmt.Sprintf("user %q has changed since the version given in If-Match; read it again", id))
	}
	return h.directoryError(err, h.users, id)
}

func (h *Handler) ownerError(oe *OwnerError) error {
	detail := oe.Error()
	if h.source() == "" {
		detail += " (no source of type scim is configured)"
	}
	return scimerr.Mutability(detail)
}

// checkOwner answers whether the configured scim source owns the user.
func (h *Handler) checkOwner(r *http.Request, id string) error {
	owner, err := h.writer.UserOwner(r.Context(), id)
	if err != nil {
		return h.writeError(err, id)
	}
	if src := h.source(); src == "" || owner != src {
		return h.ownerError(&OwnerError{Resource: "user", ID: id, Owner: owner})
	}
	return nil
}

// readBody reads a JSON request body within the size limit.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != scimerr.ContentType && mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, &scimerr.Error{Status: http.StatusUnsupportedMediaType,
				Detail: fmt.Sprintf("send the body as %s or application/json, not %q", scimerr.ContentType, ct)}
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, scimerr.PayloadTooLarge(tooBig.Limit)
		}
		return nil, err
	}
	if err := checkText(b); err != nil {
		return nil, err
	}
	return b, nil
}

// MaxValueBytes bounds every string of a written resource, as the push
// API bounds its fields: longer values are refused (400 invalidValue), so
// that no client can store values that no index can hold.
const MaxValueBytes = 1024

// checkText refuses a body that encoding/json would silently alter or a
// store cannot hold: invalid UTF-8 (which the decoder replaces with
// U+FFFD) is 400 invalidSyntax; a string with NUL (which PostgreSQL
// refuses) or longer than MaxValueBytes is 400 invalidValue. A body that
// is not JSON is left to the decoder, which reports where.
func checkText(b []byte) error {
	if !utf8.Valid(b) {
		return scimerr.InvalidSyntax("the request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		s, ok := tok.(string)
		switch {
		case !ok:
		case strings.ContainsRune(s, 0):
			// The value is not echoed: it may be a password.
			return scimerr.InvalidValue("a value holds the character U+0000 (NUL), which no attribute can hold")
		case len(s) > MaxValueBytes:
			return scimerr.InvalidValue(fmt.Sprintf("a value of %d bytes is longer than the %d bytes an attribute can hold", len(s), MaxValueBytes))
		}
	}
}

// decodeUser reads a User resource body into a UserWrite. The body is
// checked against the published schemas (patch.Resource): an attribute
// none of them has is refused, never dropped.
func decodeUser(b []byte, rt schema.ResourceType) (*UserWrite, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil || doc == nil {
		detail := "the body is not a User resource"
		if err != nil {
			detail += ": " + err.Error()
		}
		return nil, scimerr.InvalidSyntax(detail)
	}
	if dec.More() {
		return nil, scimerr.InvalidSyntax("the body has data after its JSON object")
	}
	return userFromDocument(doc, false, rt)
}

// userFromDocument turns a User resource, as encoding/json decodes it,
// into a UserWrite. patched says the document is the result of a PATCH,
// where a remove of a value's "value" (Entra ID clears
// phoneNumbers[type eq "mobile"].value so) leaves the rest of the value
// behind: such values are dropped, where a POST or PUT sending one is
// refused.
func userFromDocument(doc map[string]any, patched bool, rt schema.ResourceType) (*UserWrite, error) {
	canon, err := patch.Resource(doc, rt)
	if err != nil {
		return nil, err
	}
	u := &UserWrite{}
	if u.Custom, err = customValues(canon, rt); err != nil {
		return nil, err
	}
	if pw, ok := canon["password"].(string); ok {
		delete(canon, "password")
		if len([]rune(pw)) < MinPasswordLength {
			return nil, scimerr.InvalidValue(fmt.Sprintf("password is shorter than %d characters", MinPasswordLength))
		}
		u.Password = pw
	}
	out, err := json.Marshal(canon)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(out, &u.User); err != nil {
		return nil, scimerr.InvalidValue("the body is not a User resource: " + err.Error())
	}
	u.tidy()
	if u.UserName == "" {
		return nil, scimerr.InvalidValue("userName is required")
	}
	for _, mv := range []struct {
		name   string
		values *[]MultiValue
	}{
		{"emails", &u.Emails}, {"phoneNumbers", &u.PhoneNumbers}, {"ims", &u.Ims}, {"photos", &u.Photos},
		{"entitlements", &u.Entitlements}, {"roles", &u.Roles}, {"x509Certificates", &u.X509Certificates},
	} {
		if *mv.values, err = multiValues(mv.name, *mv.values, patched); err != nil {
			return nil, err
		}
	}
	u.Addresses = addresses(u.Addresses)
	if e := u.Enterprise; e != nil {
		if e.Manager != nil {
			e.Manager.Ref, e.Manager.DisplayName = "", ""
			if e.Manager.Value == "" {
				e.Manager = nil
			}
		}
		if e.empty() {
			u.Enterprise = nil
		}
	}
	return u, nil
}

// tidy trims the white space around every string value, as sources' values
// are trimmed, and drops what is left empty.
func (u *UserWrite) tidy() {
	for _, p := range []*string{&u.ExternalID, &u.UserName, &u.DisplayName, &u.NickName, &u.ProfileURL, &u.Title,
		&u.UserType, &u.PreferredLanguage, &u.Locale, &u.Timezone} {
		*p = strings.TrimSpace(*p)
	}
	if n := u.Name; n != nil {
		for _, p := range []*string{&n.Formatted, &n.GivenName, &n.FamilyName, &n.MiddleName, &n.HonorificPrefix, &n.HonorificSuffix} {
			*p = strings.TrimSpace(*p)
		}
		if n.empty() {
			u.Name = nil
		}
	}
	if e := u.Enterprise; e != nil {
		for _, p := range []*string{&e.EmployeeNumber, &e.CostCenter, &e.Organization, &e.Division, &e.Department} {
			*p = strings.TrimSpace(*p)
		}
		if e.Manager != nil {
			e.Manager.Value = strings.TrimSpace(e.Manager.Value)
		}
	}
}

// multiValues checks the values of a multi-valued attribute of the common
// shape: every value has a value, no value comes twice, and at most one
// is primary (a later primary wins, RFC 7643 §2.4).
func multiValues(attr string, in []MultiValue, dropEmpty bool) ([]MultiValue, error) {
	var out []MultiValue
	seen := map[string]bool{}
	for _, v := range in {
		v.Value, v.Display, v.Type = strings.TrimSpace(v.Value), strings.TrimSpace(v.Display), strings.TrimSpace(v.Type)
		if v.Value == "" && dropEmpty {
			continue
		}
		if v.Value == "" {
			return nil, scimerr.InvalidValue(fmt.Sprintf("a value of %s has no value", attr))
		}
		if seen[v.Value] {
			continue
		}
		seen[v.Value] = true
		if v.Primary != nil && *v.Primary {
			for i := range out {
				out[i].Primary = nil
			}
		} else {
			v.Primary = nil
		}
		out = append(out, v)
	}
	return out, nil
}

// addresses trims addresses, drops empty ones and keeps one primary.
func addresses(in []Address) []Address {
	var out []Address
	for _, a := range in {
		for _, p := range []*string{&a.Formatted, &a.StreetAddress, &a.Locality, &a.Region, &a.PostalCode, &a.Country, &a.Type} {
			*p = strings.TrimSpace(*p)
		}
		if a.Primary != nil && *a.Primary {
			for i := range out {
				out[i].Primary = nil
			}
		} else {
			a.Primary = nil
		}
		if !a.empty() {
			out = append(out, a)
		}
	}
	return out
}

// answerUser writes a stored user with its ETag (and Location on create).
func (h *Handler) answerUser(w http.ResponseWriter, r *http.Request, u *User, status int) {
	version := metaVersion(u.Meta)
	h.finishUser(u, h.base(r))
	newProjection(h.users, nil, nil).user(u)
	if version != "" {
		w.Header().Set("ETag", version)
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", u.Meta.Location)
	}
	writeJSON(w, status, u)
}

// createUser answers POST /Users.
func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	src := h.source()
	if src == "" {
		h.fail(w, r, scimerr.NotImplemented("no source of type scim is configured, so users cannot be created through SCIM"))
		return
	}
	uw, err := readBody(h, w, r, h.decodeUser)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.writer.CreateUser(r.Context(), src, uw)
	if err != nil {
		h.fail(w, r, h.writeError(err, ""))
		return
	}
	h.answerUser(w, r, u, http.StatusCreated)
}

// replaceUser answers PUT /Users/{id}.
func (h *Handler) replaceUser(w http.ResponseWriter, r *http.Request, id string) {
	if err := h.checkOwner(r, id); err != nil {
		h.fail(w, r, err)
		return
	}
	uw, err := readBody(h, w, r, h.decodeUser)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.writer.ReplaceUser(r.Context(), h.source(), id, uw, r.Header.Get("If-Match"))
	if err != nil {
		h.fail(w, r, h.writeError(err, id))
		return
	}
	h.answerUser(w, r, u, http.StatusOK)
}

// deleteUser answers DELETE /Users/{id}.
func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request, id string) {
	if err := h.checkOwner(r, id); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.writer.DeleteUser(r.Context(), h.source(), id, r.Header.Get("If-Match")); err != nil {
		h.fail(w, r, h.writeError(err, id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxPatchOps bounds the operations of one PATCH request.
const maxPatchOps = 1000

// patchUser answers PATCH /Users/{id}: the user is loaded as a document,
// the operations are applied to it, and the result is written as a PUT
// would write it. A PatchOp of an admin token that changes nothing but
// active sets the flag as an operator's choice, whatever the owner.
func (h *Handler) patchUser(w http.ResponseWriter, r *http.Request, p Principal, id string) {
	req, err := readBody(h, w, r, decodePatch)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	cur, err := h.dir.User(r.Context(), id, All)
	if err != nil {
		h.fail(w, r, h.directoryError(err, h.users, id))
		return
	}
	version := metaVersion(cur.Meta)
	if im := r.Header.Get("If-Match"); im != "" && !IfMatch(im, version) {
		h.fail(w, r, h.writeError(ErrPreconditionFailed, id))
		return
	}
	h.finishUser(cur, h.base(r))
	newProjection(h.users, nil, nil).user(cur)
	derived := ""
	if n := cur.Name; n != nil && n.Derived {
		// A derived name.formatted is not the client's: it follows the
		// name parts the operations may change.
		derived, n.Formatted = n.Formatted, ""
	}
	before, err := jsonDocument(cur)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	doc, err := jsonDocument(cur)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := patch.Apply(doc, h.users, req.Operations); err != nil {
		h.fail(w, r, err)
		return
	}
	if reflect.DeepEqual(before, doc) {
		// RFC 7644 §3.5.2: a PATCH that changes nothing leaves the
		// resource, its version and lastModified as they are.
		if err := h.checkOwner(r, id); err != nil && !hasScope(p, config.ScopeAdmin) {
			h.fail(w, r, err)
			return
		}
		if derived != "" {
			cur.Name.Formatted = derived
		}
		h.answerUser(w, r, cur, http.StatusOK)
		return
	}
	if hasScope(p, config.ScopeAdmin) {
		if active, ok := onlyActive(before, doc); ok {
			u, err := h.writer.SetUserActive(r.Context(), id, active)
			if err != nil {
				h.fail(w, r, h.writeError(err, id))
				return
			}
			h.answerUser(w, r, u, http.StatusOK)
			return
		}
	}
	if err := h.checkOwner(r, id); err != nil {
		h.fail(w, r, err)
		return
	}
	uw, err := userFromDocument(doc, true, h.users)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// The version read above guards against a change in between.
	u, err := h.writer.ReplaceUser(r.Context(), h.source(), id, uw, version)
	if err != nil {
		h.fail(w, r, h.writeError(err, id))
		return
	}
	h.answerUser(w, r, u, http.StatusOK)
}

// onlyActive reports whether after differs from before in active alone
// (or not at all), and the active flag after.
func onlyActive(before, after map[string]any) (bool, bool) {
	active, ok := after["active"].(bool)
	if !ok {
		return false, false
	}
	b, a := make(map[string]any, len(before)), make(map[string]any, len(after))
	for k, v := range before {
		if k != "active" {
			b[k] = v
		}
	}
	for k, v := range after {
		if k != "active" {
			a[k] = v
		}
	}
	return active, reflect.DeepEqual(a, b)
}

// decodeUser is decodeUser for the Handler's User resource type.
func (h *Handler) decodeUser(b []byte) (*UserWrite, error) { return decodeUser(b, h.users) }

// readBody reads a write's body within the size limit and decodes it.
func readBody[T any](h *Handler, w http.ResponseWriter, r *http.Request, decode func([]byte) (T, error)) (T, error) {
	b, err := h.readBody(w, r)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(b)
}

func decodePatch(b []byte) (*patch.Request, error) {
	return patch.Decode(bytes.NewReader(b), maxPatchOps)
}
