package admin

import (
	"errors"
	"net/http"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/scim"
)

// userPatch is the body of PATCH /api/v1/users/{id}: only active can be
// changed here; every other attribute belongs to the user's source.
type userPatch struct {
	Active *flexBool `json:"active"`
}

// userView is the answer of PATCH /api/v1/users/{id}.
type userView struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	Source   string `json:"source"`
	Active   bool   `json:"active"`
	State    string `json:"state"`
}

// getUser answers GET /api/v1/users/{id}: every attribute of the user
// as the admin page shows it (store.UserDetail), with its source and
// state.
func (h *Handler) getUser(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	var d *store.UserDetail
	err := store.ErrNotFound // no user has an id that is not valid text
	if validText(id) {
		d, err = h.o.Store.UserDetail(r.Context(), id, scim.UserType(&c.cfg.Attributes))
	}
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "no user %q in the directory (deleted users are not shown)", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (h *Handler) patchUser(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	var p userPatch
	if _, err := decodeBody(r, &p); err != nil {
		return err
	}
	if p.Active == nil {
		return errorf(http.StatusBadRequest, `send {"active": false} to deactivate the user or {"active": true} to activate it; other attributes belong to the user's source`)
	}
	var u *store.User
	err := store.ErrNotFound // no user has an id that is not valid text
	if validText(id) {
		u, err = h.o.Store.SetActiveByAdmin(r.Context(), id, bool(*p.Active))
	}
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "no user %q in the directory (deleted users cannot be changed)", id)
	}
	if err != nil {
		return err
	}
	h.o.Log.Info("admin API: user's active flag set", "user", u.ID, "source", u.Source, "active", u.Active, "token", c.token)
	writeJSON(w, http.StatusOK, userView{ID: u.ID, UserName: u.UserName, Source: u.Source, Active: u.Active, State: u.State})
	return nil
}
