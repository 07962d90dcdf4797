package scim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/rosterd/roster/scim/patch"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// GroupPatcher is a GroupWriter that applies a PATCH's member operations
// to the stored memberships without reading them, so that a PATCH of a
// group costs memory bounded by the PATCH, not by the group (issue 16).
type GroupPatcher interface {
	// PatchGroup sets the displayName and externalId of a group owned by
	// source and carries out p.Members in order, in one transaction. A
	// PATCH that changes nothing leaves the version alone (RFC 7644
	// §3.5.2). A non-empty ifMatch is an If-Match header value the
	// group's current version must match. Errors are ReplaceGroup's, and
	// a MemberEdit's NoTarget.
	PatchGroup(ctx context.Context, source, id string, p *GroupPatch, ifMatch string, inc Include) (*Group, error)
}

// GroupPatch is what a PATCH of a group changes.
type GroupPatch struct {
	DisplayName string
	ExternalID  string // "": keep the stored one
	Members     []MemberEdit
}

// MemberEdit is one operation of a PATCH on a group's members.
type MemberEdit struct {
	// Op is patch.OpAdd (add the Members that are not members yet),
	// patch.OpReplace (the members become Members, never empty) or
	// patch.OpRemove (remove Members, compared by Value, or the members
	// Where selects, or every member when All).
	Op      string
	Members []MemberWrite
	All     bool
	// Where, for a remove through a value filter other than value eq,
	// selects the members to remove; the writer runs it over the members,
	// as GET answers them, a piece at a time.
	Where func(Reference) bool
	// NoTarget, for a remove through a value filter, is the error to
	// return when none of Members is a member (RFC 7644 §3.5.2); nil when
	// removing non-members is no error.
	NoTarget error
}

// patchGroup answers PATCH /Groups/{id}. Operations on members become
// MemberEdits that the writer applies to the memberships (add and remove
// by id, replace and remove of all in pieces in SQL); the others are
// applied to the group without its members. Memory is bounded by the
// PATCH whatever the size of the group; the answer streams the members,
// when asked for, as GET does. A request whose member operations need
// the members held together (a sub-attribute path, an add or replace
// through a filter) is applied to the whole group instead.
func (h *Handler) patchGroup(w http.ResponseWriter, r *http.Request, gw GroupWriter, id string) {
	if err := h.checkGroupOwner(r, gw, id); err != nil {
		h.fail(w, r, err)
		return
	}
	req, err := readBody(h, w, r, decodePatch)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	gp, ok := gw.(GroupPatcher)
	if !ok {
		h.patchWholeGroup(w, r, gw, id, req)
		return
	}
	doc, version, err := h.groupDocument(r, id, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	edits, split, err := patch.ApplyExcept(doc, schema.Groups, req.Operations, "members")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !split {
		h.patchWholeGroup(w, r, gw, id, req)
		return
	}
	out, err := json.Marshal(doc)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	g, err := decodeGroup(out)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p := &GroupPatch{DisplayName: g.DisplayName, ExternalID: g.ExternalID}
	base := h.base(r)
	for _, e := range edits {
		me, err := h.memberEdit(e, base)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		p.Members = append(p.Members, me)
	}
	proj := groupProjection(r)
	res, err := gp.PatchGroup(r.Context(), h.source(), id, p, version, proj.include())
	if err != nil {
		h.fail(w, r, h.groupWriteError(err, id))
		return
	}
	h.answerGroup(w, r, proj, res, http.StatusOK)
}

// memberEdit turns a patch.Edit on members into a MemberEdit, checking
// each member as a PUT's members are checked.
func (h *Handler) memberEdit(e patch.Edit, base string) (MemberEdit, error) {
	me := MemberEdit{Op: e.Op, All: e.Op == patch.OpRemove && len(e.Values) == 0 && e.Match == nil}
	if e.Filtered {
		me.NoTarget = e.NoTarget()
	}
	if match := e.Match; match != nil {
		me.Where = func(m Reference) bool {
			g := Group{Members: []Reference{m}}
			h.finishGroup(&g, base)
			m = g.Members[0]
			v := map[string]any{"value": m.Value, "$ref": m.Ref, "type": m.Type}
			if m.Display != "" {
				v["display"] = m.Display
			}
			return match(v)
		}
	}
	seen := map[string]bool{}
	for _, v := range e.Values {
		b, err := json.Marshal(v)
		if err != nil {
			return MemberEdit{}, err
		}
		var m memberBody
		if err := json.Unmarshal(b, &m); err != nil {
			return MemberEdit{}, scimerr.InvalidValue("a value of members is not a member: " + err.Error())
		}
		var mw MemberWrite
		if e.Op == patch.OpRemove {
			// A remove compares values only; the type it names is not
			// checked, as Apply compares members by value.
			mw.Value = m.Value
		} else if mw, err = m.write(); err != nil {
			return MemberEdit{}, err
		}
		if seen[mw.Value] {
			continue
		}
		seen[mw.Value] = true
		me.Members = append(me.Members, mw)
	}
	return me, nil
}

// noTargetError is a MemberEdit's NoTarget, which groupWriteError passes
// through.
func noTargetError(err error) (*scimerr.Error, bool) {
	var se *scimerr.Error
	if errors.As(err, &se) && se.ScimType == scimerr.TypeNoTarget {
		return se, true
	}
	return nil, false
}
