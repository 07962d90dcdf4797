package admin

import (
	"errors"
	"net/http"

	"github.com/rosterd/roster/daemon/store"
)

// listGroups answers GET /api/v1/groups: every group (departments and
// the groups of csv, http and SCIM sources), with its parent, member
// counts and owners; ?source= narrows it to one source.
func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request, _ *call) error {
	q := r.URL.Query()
	f := store.GroupFilter{Source: q.Get("source"), Limit: DefaultLimit}
	if !validText(f.Source) {
		return errorf(http.StatusBadRequest, "source=%q is not a source name: it is not valid UTF-8 or holds NUL", f.Source)
	}
	if err := paging(q, &f.Limit, &f.Offset); err != nil {
		return err
	}
	items, total, err := h.o.Store.ListGroups(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": total, "limit": f.Limit, "offset": f.Offset})
	return nil
}

// getGroup answers GET /api/v1/groups/{id}: the group with its members,
// sub-groups and owners.
func (h *Handler) getGroup(w http.ResponseWriter, r *http.Request, _ *call) error {
	id := r.PathValue("id")
	var g *store.GroupDetail
	err := store.ErrNotFound
	if validText(id) {
		g, err = h.o.Store.GetGroup(r.Context(), id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "no group %q in the directory", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}
