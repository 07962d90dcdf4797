package admin

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources"
)

// sourceView is one source in GET /api/v1/sources.
type sourceView struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Enabled  bool   `json:"enabled"`
	Schedule string `json:"schedule"`
	// State is the last task's status, "never synced", "disabled", or
	// "retired" for a source no longer configured that still owns users
	// or groups (SPEC §4.4).
	State string `json:"state"`
	// Counts are the users (by state) and groups the source owns.
	Counts tasks.Counts `json:"counts"`
	// Running reports whether a task of the source is running now, in
	// this process or another one.
	Running       bool        `json:"running"`
	LastTask      *tasks.View `json:"last_task"`
	LastSuccessAt *time.Time  `json:"last_success_at"`
}

func (h *Handler) listSources(w http.ResponseWriter, r *http.Request, c *call) error {
	ctx := r.Context()
	counts, err := h.o.Store.DirectoryCounts(ctx)
	if err != nil {
		return err
	}
	items := make([]sourceView, 0, len(c.cfg.Sources))
	fill := func(v *sourceView) error {
		last, err := h.o.Store.LastTask(ctx, v.Name)
		if err != nil {
			return err
		}
		if last != nil {
			tv := tasks.ViewOf(last, nil)
			v.LastTask, v.State, v.Running = &tv, last.Status, last.Status == store.StatusRunning
		}
		state, err := h.o.Store.GetSource(ctx, v.Name)
		switch {
		case err == nil:
			if state.LastSuccessAt != nil {
				at := state.LastSuccessAt.UTC()
				v.LastSuccessAt = &at
			}
		case !errors.Is(err, store.ErrNotFound): // a source not recorded yet has no success
			return err
		}
		return nil
	}
	for _, src := range c.cfg.Sources {
		v := sourceView{Name: src.Name, Type: src.Type, Enabled: src.Enabled, Schedule: src.Schedule, State: "never synced",
			Counts: tasks.CountsOf(counts, src.Name)}
		if err := fill(&v); err != nil {
			return err
		}
		if !src.Enabled {
			v.State = "disabled"
		}
		items = append(items, v)
	}
	retired, err := h.runner(c.cfg).Retired(ctx, counts)
	if err != nil {
		return err
	}
	for _, src := range retired {
		v := sourceView{Name: src.Name, Type: src.Type, Counts: src.Counts}
		if err := fill(&v); err != nil {
			return err
		}
		v.State = "retired"
		items = append(items, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": len(items)})
	return nil
}

// retireRequest is the optional body of POST .../retire.
type retireRequest struct {
	Orphans string `json:"orphans"`
}

// retireSource plans the removal of a retired source's users and groups
// as a held task (roster sources retire NAME): 202 with the task, which
// POST /api/v1/tasks/{id}/approve applies.
func (h *Handler) retireSource(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("name")
	body := retireRequest{Orphans: r.URL.Query().Get("orphans")}
	if _, err := decodeBody(r, &body); err != nil {
		return err
	}
	h.o.Log.Info("admin API: retirement requested", "source", name, "orphans", body.Orphans, "token", c.token)
	res, err := h.runner(c.cfg).Retire(context.WithoutCancel(r.Context()), name, body.Orphans)
	if err != nil {
		return usageError(err)
	}
	if h.o.Finished != nil {
		h.o.Finished(res.Task)
	}
	v, err := h.view(r.Context(), res.Task)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, v)
	return nil
}

// syncedSource returns the source a sync (types csv and http) or an upload
// (csv only) names, or the error to answer: 404 when it is not configured,
// 409 when it is disabled, 400 when it is of another type.
func syncedSource(cfg *config.Config, name string, types ...string) (*config.Source, error) {
	src, ok := cfg.Source(name)
	switch {
	case !ok:
		return nil, errorf(http.StatusNotFound, "no source %q is configured; GET /api/v1/sources lists them", name)
	case !src.Enabled:
		return nil, errorf(http.StatusConflict, "source %q is disabled (enabled: false in the configuration); enable it and reload roster to sync it", name)
	case !slices.Contains(types, src.Type):
		return nil, errorf(http.StatusBadRequest, "source %q is a %s source; only %s sources take this (push and scim sources receive their changes over HTTP)", name, src.Type, strings.Join(types, " and "))
	}
	return src, nil
}

// syncRequest is the optional body of POST .../sync.
type syncRequest struct {
	DryRun *flexBool `json:"dry_run"`
	Force  *flexBool `json:"force"`
}

func (h *Handler) syncSource(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("name")
	if _, err := syncedSource(c.cfg, name, config.PulledTypes...); err != nil {
		return err
	}
	dryRun, err := queryFlag(r.URL.Query(), "dry_run")
	if err != nil {
		return err
	}
	force, err := queryFlag(r.URL.Query(), "force")
	if err != nil {
		return err
	}
	var body syncRequest
	if _, err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.DryRun != nil {
		dryRun = bool(*body.DryRun)
	}
	if body.Force != nil {
		force = bool(*body.Force)
	}
	if dryRun {
		return h.dryRun(w, r, c, name)
	}
	h.o.Log.Info("admin API: sync requested", "source", name, "force", force, "token", c.token)
	return h.enqueue(w, r, name, force)
}

// dryRun answers the plan a sync would apply, in the shape of
// `roster sync --dry-run --json`.
func (h *Handler) dryRun(w http.ResponseWriter, r *http.Request, c *call, name string) error {
	res, err := h.runner(c.cfg).Sync(r.Context(), name, tasks.Options{Trigger: tasks.TriggerManual, DryRun: true})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errorf(http.StatusConflict, "%v: the source's file is missing; upload one with PUT /api/v1/sources/%s/file", err, name)
		}
		return usageError(err)
	}
	defer res.Close()
	out := map[string]any{"source": name, "dry_run": true, "errors": nonNil(res.Errors)}
	if p := res.Plan; p != nil {
		out["counts"], out["changes"], out["warnings"], out["hold"] = p.Counts, eachChange(res.EachChange), nonNil(p.Warnings), p.Hold
		out["groups_created"], out["groups_deleted"] = nonNil(p.GroupCreates), nonNil(p.GroupDeletes)
	}
	writeObject(w, http.StatusOK, out)
	return nil
}

func (h *Handler) uploadFile(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("name")
	if _, err := syncedSource(c.cfg, name, config.TypeCSV); err != nil {
		return err
	}
	force, err := queryFlag(r.URL.Query(), "force")
	if err != nil {
		return err
	}
	if h.o.Queue == nil {
		return errNoQueue
	}
	err = h.runner(c.cfg).ReplaceFile(r.Context(), name, r.Body)
	var invalid *sources.ValidationError
	switch {
	case errors.As(err, &invalid):
		h.o.Log.Info("admin API: upload refused: the file is invalid", "source", name, "errors", len(invalid.Errors), "token", c.token)
		return &apiError{Status: http.StatusBadRequest, Errors: invalid.Errors,
			Message: "the file is invalid: " + sources.Plural(len(invalid.Errors), "error") + "; nothing was changed"}
	case err != nil:
		return usageError(err)
	}
	h.o.Log.Info("admin API: file uploaded; syncing it", "source", name, "force", force, "token", c.token)
	return h.enqueue(w, r, name, force)
}

var errNoQueue = errorf(http.StatusServiceUnavailable, "syncs run in roster serve's task queues, and this server has none")

// enqueue queues a manual sync and answers 202 with its task, or with
// {"queued": true} when the task is not recorded within StartWait.
func (h *Handler) enqueue(w http.ResponseWriter, r *http.Request, name string, force bool) error {
	if h.o.Queue == nil {
		return errNoQueue
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.o.StartWait)
	defer cancel()
	t, err := h.o.Queue.Enqueue(ctx, name, tasks.TriggerManual, force)
	switch {
	case errors.Is(err, tasks.ErrUsage):
		return usageError(err)
	case err != nil:
		return errorf(http.StatusServiceUnavailable, "the sync of source %s could not be queued: %v", name, err)
	case t == nil:
		writeJSON(w, http.StatusAccepted, map[string]any{"queued": true, "source": name,
			"message": "the sync is queued behind a running task of the source (or waits for the source's lock); GET /api/v1/tasks?source=" + url.QueryEscape(name) + " shows it once it starts"})
		return nil
	}
	writeJSON(w, http.StatusAccepted, tasks.ViewOf(t, nil))
	return nil
}

func (h *Handler) runner(cfg *config.Config) *tasks.Runner {
	return &tasks.Runner{Store: h.o.Store, Config: cfg, Log: h.o.Log}
}

// queryFlag reads a boolean query parameter: absent is false, present
// without a value is true.
func queryFlag(q url.Values, key string) (bool, error) {
	if !q.Has(key) {
		return false, nil
	}
	v := q.Get(key)
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errorf(http.StatusBadRequest, "%s=%q: use %s=true or %s=false", key, v, key, key)
	}
	return b, nil
}

// nonNil makes empty lists print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
