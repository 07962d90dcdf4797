package adminui

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources"
)

// maxDryRunRows bounds the changes a dry run's page lists: the page is
// rendered whole before it is sent, and a plan can name hundreds of
// thousands of people (issue 16). The counts cover every change; the CLI
// and the admin API list every one.
const maxDryRunRows = 1000

// dryRunData is the page of a dry run: what POST
// /api/v1/sources/{name}/sync?dry_run=true answers, for people.
type dryRunData struct {
	Source string
	// Errors are the input's validation errors: a sync would fail.
	Errors []sources.FieldError
	// Planned says a plan was made (the input was valid); the rest is
	// its content.
	Planned  bool
	Counts   reconcile.Counts
	Warnings []string
	Hold     string
	Changes  []changeRow
	// Listed and More are how many changes the page lists and how many
	// more the plan has.
	Listed, More                 int
	GroupsCreated, GroupsDeleted []reconcile.Group
}

// changeRow is one person of a plan, as `roster sync --dry-run` prints it.
type changeRow struct {
	Action                            reconcile.Action
	Line                              int
	ExternalID, UserName, DisplayName string
	// Detail is what else the change says: the attributes an update
	// changes, why a record is skipped, whom an adoption takes over.
	Detail string
}

func rowOf(c *reconcile.Change) changeRow {
	u := c.After
	var detail []string
	if len(c.Fields) > 0 {
		detail = append(detail, "changes "+strings.Join(c.Fields, ", "))
	}
	if c.Reason != "" {
		detail = append(detail, c.Reason)
	}
	if c.Action == reconcile.Adopt && c.Before != nil {
		detail = append(detail, fmt.Sprintf("from source %s (id %s)", c.Before.Source, u.ID))
	}
	return changeRow{Action: c.Action, Line: c.Line, ExternalID: u.ExternalID, UserName: u.UserName, DisplayName: u.DisplayName,
		Detail: strings.Join(detail, "; ")}
}

// dryRunSource shows what a sync of the source would do now, person by
// person, writing nothing: POST /api/v1/sources/{name}/sync?dry_run=true
// (and `roster sync NAME --dry-run`) for the page, through the same
// tasks.Runner call. It is a POST with the CSRF value like the other
// actions, although it changes nothing: it reads the source (an http or
// ldap source's server too), which a link followed from another site
// must not set off.
func (h *Handler) dryRunSource(w http.ResponseWriter, r *http.Request, s *sess) {
	name := r.PathValue("name")
	src, ok := h.enabledSource(w, r, s, name)
	switch {
	case !ok:
		return
	case !src.Pulled():
		h.showOverview(w, r, s, http.StatusBadRequest, fmt.Sprintf("Source %s is a %s source; only csv, http and ldap sources sync (push and scim sources receive their changes over HTTP).", name, src.Type), nil)
		return
	}
	h.o.Log.Info("admin page: dry run requested", "source", name, "token", s.name)
	res, err := h.runner(s.cfg).Sync(r.Context(), name, tasks.Options{Trigger: tasks.TriggerManual, DryRun: true})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h.showOverview(w, r, s, http.StatusConflict, fmt.Sprintf("%v: the source's file is missing; upload one.", err), nil)
		return
	case errors.Is(err, tasks.ErrUsage):
		h.showOverview(w, r, s, http.StatusConflict, usageMessage(err), nil)
		return
	case err != nil:
		h.fail(w, r, s, err)
		return
	}
	defer res.Close()
	d := dryRunData{Source: name, Errors: res.Errors}
	if p := res.Plan; p != nil && len(res.Errors) == 0 {
		d.Planned, d.Counts, d.Warnings, d.Hold = true, p.Counts, p.Warnings, p.Hold
		d.GroupsCreated, d.GroupsDeleted = p.GroupCreates, p.GroupDeletes
		err := res.EachChange(func(c *reconcile.Change) error {
			if len(d.Changes) < maxDryRunRows {
				d.Changes = append(d.Changes, rowOf(c))
			} else {
				d.More++
			}
			return nil
		})
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		d.Listed = len(d.Changes)
	}
	h.render(w, r, http.StatusOK, "dryrun", &view{Title: "Dry run of " + name, Nav: "sources", Data: d, s: s})
}

// formFlag reads a checkbox of a form: absent is false; "on" is what a
// checkbox without a value sends.
func formFlag(r *http.Request, key string) bool {
	v := r.PostForm.Get(key)
	b, err := strconv.ParseBool(v)
	return v == "on" || err == nil && b
}
