package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rosterd/roster/scim/patch"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// GroupWriter is what the SCIM layer writes groups through (SPEC §3.4).
// A UserWriter given as Options.Writer that also implements GroupWriter
// makes /Groups writable. Each method is one transaction.
//
// Errors are those of UserWriter, and a *MemberError for a member the
// directory does not hold or a group listed as its own member.
type GroupWriter interface {
	// CreateGroup creates a group owned by source and returns it as
	// stored, with what inc asks for.
	CreateGroup(ctx context.Context, source string, g *GroupWrite, inc Include) (*Group, error)
	// ReplaceGroup replaces the displayName, externalId and members of a
	// group owned by source, writing only the memberships that change. A
	// non-empty ifMatch is an If-Match header value the group's current
	// version must match.
	ReplaceGroup(ctx context.Context, source, id string, g *GroupWrite, ifMatch string, inc Include) (*Group, error)
	// DeleteGroup deletes a group owned by source for good, with its
	// memberships and those that list it as a member.
	DeleteGroup(ctx context.Context, source, id string, ifMatch string) error
	// GroupOwner returns the name of the source that owns a group.
	GroupOwner(ctx context.Context, id string) (string, error)
}

// GroupWrite is a group as a client writes it.
type GroupWrite struct {
	DisplayName string
	ExternalID  string // "": keep the stored one
	Members     []MemberWrite
}

// MemberWrite is one member of a GroupWrite: the id of a user or group
// of any source, and its type, "User", "Group" or "" when the writer is
// to infer it from the id.
type MemberWrite struct {
	Value string
	Type  string
}

// MemberError is a member a GroupWriter refuses (400 invalidValue).
type MemberError struct{ Detail string }

func (e *MemberError) Error() string { return e.Detail }

// groupWriter is the GroupWriter behind Options.Writer, or nil.
func (h *Handler) groupWriter() GroupWriter {
	gw, _ := h.writer.(GroupWriter)
	return gw
}

// writeGroup routes a write on /Groups (id "" for POST).
func (h *Handler) writeGroup(w http.ResponseWriter, r *http.Request, p Principal, id string) {
	if !hasScope(p, writeScopes...) {
		e := scimerr.Forbidden("the token lacks the scope scim:write")
		e.Header = http.Header{"Www-Authenticate": {`Bearer realm="roster", error="insufficient_scope", scope="scim:write"`}}
		h.fail(w, r, e)
		return
	}
	gw := h.groupWriter()
	switch r.Method {
	case http.MethodPost:
		h.createGroup(w, r, gw)
	case http.MethodPut:
		h.replaceGroup(w, r, gw, id)
	case http.MethodPatch:
		h.patchGroup(w, r, gw, id)
	case http.MethodDelete:
		h.deleteGroup(w, r, gw, id)
	}
}

// groupWriteError turns what a GroupWriter returned into the SCIM error
// to send.
func (h *Handler) groupWriteError(err error, id string) error {
	var ue *UniquenessError
	var oe *OwnerError
	var me *MemberError
	if se, ok := noTargetError(err); ok {
		return se
	}
	switch {
	case errors.As(err, &ue):
		return scimerr.Uniqueness(ue.Detail)
	case errors.As(err, &oe):
		return h.ownerError(oe)
	case errors.As(err, &me):
		return scimerr.InvalidValue(me.Detail)
	case errors.Is(err, ErrPreconditionFailed):
		return scimerr.PreconditionFailed(fmt.Sprintf("group %q has changed since the version given in If-Match; read it again", id))
	}
	return h.directoryError(err, schema.Groups, id)
}

// checkGroupOwner answers whether the configured scim source owns the
// group.
func (h *Handler) checkGroupOwner(r *http.Request, gw GroupWriter, id string) error {
	owner, err := gw.GroupOwner(r.Context(), id)
	if err != nil {
		return h.groupWriteError(err, id)
	}
	if src := h.source(); src == "" || owner != src {
		return h.ownerError(&OwnerError{Resource: "group", ID: id, Owner: owner})
	}
	return nil
}

type memberBody struct {
	Value string `json:"value"`
	Type  string `json:"type"`
}

// groupBody is a Group resource as POST and PUT send it; read-only
// attributes (id, meta) and the members' display and $ref are ignored.
type groupBody struct {
	DisplayName *string      `json:"displayName"`
	ExternalID  string       `json:"externalId"`
	Members     []memberBody `json:"members"`
}

// decodeGroup reads a Group resource body into a GroupWrite.
func decodeGroup(b []byte) (*GroupWrite, error) {
	var body groupBody
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&body); err != nil {
		return nil, scimerr.InvalidSyntax("the body is not a Group resource: " + err.Error())
	}
	if dec.More() {
		return nil, scimerr.InvalidSyntax("the body has data after its JSON object")
	}
	g := &GroupWrite{ExternalID: strings.TrimSpace(body.ExternalID)}
	if body.DisplayName != nil {
		g.DisplayName = strings.TrimSpace(*body.DisplayName)
	}
	if g.DisplayName == "" {
		return nil, scimerr.InvalidValue("displayName is required")
	}
	seen := map[string]bool{}
	for _, m := range body.Members {
		mw, err := m.write()
		if err != nil {
			return nil, err
		}
		if seen[mw.Value] {
			continue
		}
		seen[mw.Value] = true
		g.Members = append(g.Members, mw)
	}
	return g, nil
}

// write checks a member as a client wrote it.
func (m memberBody) write() (MemberWrite, error) {
	value := strings.TrimSpace(m.Value)
	if value == "" {
		return MemberWrite{}, scimerr.InvalidValue("a value of members has no value")
	}
	var typ string
	switch t := strings.TrimSpace(m.Type); {
	case t == "":
	case strings.EqualFold(t, schema.Users.Name):
		typ = schema.Users.Name
	case strings.EqualFold(t, schema.Groups.Name):
		typ = schema.Groups.Name
	default:
		return MemberWrite{}, scimerr.InvalidValue(fmt.Sprintf("member %q has type %q; it is User or Group", value, t))
	}
	return MemberWrite{Value: value, Type: typ}, nil
}

// groupProjection is the projection the request's attributes and
// excludedAttributes ask for on a written group.
func groupProjection(r *http.Request) *projection {
	params := lowerKeys(r)
	return newProjection(schema.Groups, splitList(params.get("attributes")), splitList(params.get("excludedattributes")))
}

// answerGroup writes a stored group with its ETag (and Location on
// create).
func (h *Handler) answerGroup(w http.ResponseWriter, r *http.Request, proj *projection, g *Group, status int) {
	version := metaVersion(g.Meta)
	h.finishGroup(g, h.base(r))
	location := g.Meta.Location
	proj.group(g)
	if version != "" {
		w.Header().Set("ETag", version)
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", location)
	}
	h.answerOneGroup(w, r, status, proj, g)
}

// createGroup answers POST /Groups.
func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request, gw GroupWriter) {
	src := h.source()
	if src == "" {
		h.fail(w, r, scimerr.NotImplemented("no source of type scim is configured, so groups cannot be created through SCIM"))
		return
	}
	gwr, err := readBody(h, w, r, decodeGroup)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	proj := groupProjection(r)
	g, err := gw.CreateGroup(r.Context(), src, gwr, proj.include())
	if err != nil {
		h.fail(w, r, h.groupWriteError(err, ""))
		return
	}
	h.answerGroup(w, r, proj, g, http.StatusCreated)
}

// replaceGroup answers PUT /Groups/{id}.
func (h *Handler) replaceGroup(w http.ResponseWriter, r *http.Request, gw GroupWriter, id string) {
	if err := h.checkGroupOwner(r, gw, id); err != nil {
		h.fail(w, r, err)
		return
	}
	gwr, err := readBody(h, w, r, decodeGroup)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	proj := groupProjection(r)
	g, err := gw.ReplaceGroup(r.Context(), h.source(), id, gwr, r.Header.Get("If-Match"), proj.include())
	if err != nil {
		h.fail(w, r, h.groupWriteError(err, id))
		return
	}
	h.answerGroup(w, r, proj, g, http.StatusOK)
}

// deleteGroup answers DELETE /Groups/{id}.
func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request, gw GroupWriter, id string) {
	if err := h.checkGroupOwner(r, gw, id); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := gw.DeleteGroup(r.Context(), h.source(), id, r.Header.Get("If-Match")); err != nil {
		h.fail(w, r, h.groupWriteError(err, id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// patchWholeGroup answers PATCH /Groups/{id} when the writer cannot
// patch members or an operation needs the members' values (see
// patch.ApplyExcept): the group is loaded as a document with every
// member, the operations are applied to it, and the result is written as
// PUT would write it, guarded by the version read. The writer stores
// only the memberships that changed, but the group is held whole.
func (h *Handler) patchWholeGroup(w http.ResponseWriter, r *http.Request, gw GroupWriter, id string, req *patch.Request) {
	doc, version, err := h.groupDocument(r, id, true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := patch.Apply(doc, schema.Groups, req.Operations); err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := json.Marshal(doc)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	gwr, err := decodeGroup(out)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	proj := groupProjection(r)
	g, err := gw.ReplaceGroup(r.Context(), h.source(), id, gwr, version, proj.include())
	if err != nil {
		h.fail(w, r, h.groupWriteError(err, id))
		return
	}
	h.answerGroup(w, r, proj, g, http.StatusOK)
}

// jsonDocument is a resource as the JSON document scim/patch works on.
// groupDocument reads the group a PATCH applies to, as a JSON document,
// and its version, after checking If-Match; its members are read only
// when members is set (the whole-group path). Errors are the answers.
func (h *Handler) groupDocument(r *http.Request, id string, members bool) (map[string]any, string, error) {
	cur, err := h.dir.Group(r.Context(), id, Include{Members: members})
	if err == nil && members {
		err = h.readPendingMembers(r.Context(), cur)
	}
	if err != nil {
		return nil, "", h.directoryError(err, schema.Groups, id)
	}
	version := metaVersion(cur.Meta)
	if im := r.Header.Get("If-Match"); im != "" && !IfMatch(im, version) {
		return nil, "", h.groupWriteError(ErrPreconditionFailed, id)
	}
	h.finishGroup(cur, h.base(r))
	newProjection(schema.Groups, nil, nil).group(cur)
	if !members {
		cur.Members = nil
	}
	doc, err := jsonDocument(cur)
	return doc, version, err
}

func jsonDocument(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return doc, nil
}
