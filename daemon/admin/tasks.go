package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
)

// Paging of GET /api/v1/tasks.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// statuses are the task statuses a list may be filtered by (SPEC §5).
var statuses = []string{store.StatusQueued, store.StatusRunning, store.StatusSucceeded, store.StatusFailed,
	store.StatusSkipped, store.StatusHeld, store.StatusRejected, store.StatusSuperseded}

func (h *Handler) listTasks(w http.ResponseWriter, r *http.Request, _ *call) error {
	q := r.URL.Query()
	f := store.TaskFilter{Source: q.Get("source"), Status: q.Get("status"), Limit: DefaultLimit}
	if !validText(f.Source) {
		return errorf(http.StatusBadRequest, "source=%q is not a source name: it is not valid UTF-8 or holds NUL", f.Source)
	}
	if f.Status != "" && !slices.Contains(statuses, f.Status) {
		return errorf(http.StatusBadRequest, "status=%q is not a task status; use one of %s", f.Status, strings.Join(statuses, ", "))
	}
	if err := paging(q, &f.Limit, &f.Offset); err != nil {
		return err
	}
	list, total, err := h.o.Store.ListTasks(r.Context(), f)
	if err != nil {
		return err
	}
	items := make([]tasks.View, len(list))
	for i := range list {
		items[i] = tasks.ViewOf(&list[i], nil)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": total, "limit": f.Limit, "offset": f.Offset})
	return nil
}

// validText reports whether s can be looked up in the store: valid UTF-8
// without NUL, which PostgreSQL refuses (and no stored name holds).
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// intParam parses a query parameter between lo and hi (hi < 0: no upper
// bound).
func intParam(v, key string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || hi >= 0 && n > hi {
		if hi < 0 {
			return 0, errorf(http.StatusBadRequest, "%s=%q: use a whole number of at least %d", key, v, lo)
		}
		return 0, errorf(http.StatusBadRequest, "%s=%q: use a whole number from %d to %d", key, v, lo, hi)
	}
	return n, nil
}

// taskID parses the {id} of a task path.
func taskID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(http.StatusBadRequest, "%q is not a task id: task ids are positive whole numbers", v)
	}
	return id, nil
}

// loadTask reads a task: 404 when there is none.
func (h *Handler) loadTask(ctx context.Context, id int64) (*store.Task, error) {
	t, err := h.o.Store.GetTask(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, "no task %d; GET /api/v1/tasks lists them (old tasks are removed after tasks.keep)", id)
	}
	return t, err
}

// view is a task with the plan it was held with, if it has one: the
// removals an operator judges before approving, kept afterwards as a
// record of what was approved or rejected.
func (h *Handler) view(ctx context.Context, t *store.Task) (tasks.View, error) {
	hp, err := h.o.Store.GetHeldPlan(ctx, t.ID)
	if errors.Is(err, store.ErrNotFound) {
		return tasks.ViewOf(t, nil), nil
	}
	if err != nil {
		return tasks.View{}, err
	}
	return tasks.ViewOf(t, hp), nil
}

func (h *Handler) getTask(w http.ResponseWriter, r *http.Request, _ *call) error {
	id, err := taskID(r)
	if err != nil {
		return err
	}
	t, err := h.loadTask(r.Context(), id)
	if err != nil {
		return err
	}
	v, err := h.view(r.Context(), t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// taskAction runs retry, approve or reject: the task must exist and be in
// status want. The action runs under the source's lock, detached from the
// client: a client that hangs up does not cut a task off.
func (h *Handler) taskAction(w http.ResponseWriter, r *http.Request, c *call, action, want string,
	run func(ctx context.Context, rn *tasks.Runner, id int64) (*store.Task, error)) error {
	id, err := taskID(r)
	if err != nil {
		return err
	}
	t, err := h.loadTask(r.Context(), id)
	if err != nil {
		return err
	}
	if t.Status != want {
		return errorf(http.StatusConflict, "task %d is %s; only %s tasks can be %s", id, t.Status, want, action)
	}
	h.o.Log.Info("admin API: task "+action, "source", t.Source, "task", id, "token", c.token)
	ctx := context.WithoutCancel(r.Context())
	done, err := run(ctx, h.runner(c.cfg), id)
	if err != nil {
		return usageError(err)
	}
	if h.o.Finished != nil {
		h.o.Finished(done)
	}
	v, err := h.view(ctx, done)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (h *Handler) retryTask(w http.ResponseWriter, r *http.Request, c *call) error {
	return h.taskAction(w, r, c, "retried", store.StatusFailed, func(ctx context.Context, rn *tasks.Runner, id int64) (*store.Task, error) {
		res, err := rn.Retry(ctx, id, tasks.TriggerRetry)
		if err != nil {
			return nil, err
		}
		return res.Task, nil
	})
}

func (h *Handler) approveTask(w http.ResponseWriter, r *http.Request, c *call) error {
	return h.taskAction(w, r, c, "approved", store.StatusHeld, func(ctx context.Context, rn *tasks.Runner, id int64) (*store.Task, error) {
		res, err := rn.Approve(ctx, id)
		if err != nil {
			return nil, err
		}
		return res.Task, nil
	})
}

func (h *Handler) rejectTask(w http.ResponseWriter, r *http.Request, c *call) error {
	return h.taskAction(w, r, c, "rejected", store.StatusHeld, func(ctx context.Context, rn *tasks.Runner, id int64) (*store.Task, error) {
		return rn.Reject(ctx, id)
	})
}

// paging reads a list's limit (1 to MaxLimit) and offset parameters into
// limit and offset, which keep their values when a parameter is absent.
func paging(q url.Values, limit, offset *int) error {
	var err error
	if q.Has("limit") {
		if *limit, err = intParam(q.Get("limit"), "limit", 1, MaxLimit); err != nil {
			return err
		}
	}
	if q.Has("offset") {
		if *offset, err = intParam(q.Get("offset"), "offset", 0, -1); err != nil {
			return err
		}
	}
	return nil
}
