package adminui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/sources"
)

// Paging of the task and user lists.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// statuses are the task statuses the task list may be filtered by.
var statuses = []string{store.StatusQueued, store.StatusRunning, store.StatusSucceeded, store.StatusFailed,
	store.StatusSkipped, store.StatusHeld, store.StatusRejected, store.StatusSuperseded}

// sourceRow is one source of the overview.
type sourceRow struct {
	Name, Type, Schedule string
	Enabled              bool
	Running              bool
	Status               string // the last task's status, or "never synced"
	Last                 *tasks.View
	LastSuccess          *time.Time
	Syncable, Uploadable bool
	// Retired marks a source no longer configured that still owns users
	// or groups (SPEC §4.4).
	Retired bool
	Counts  tasks.Counts
}

type overviewData struct {
	Sources []sourceRow
	Upload  *uploadErrors
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, s *sess) {
	h.showOverview(w, r, s, http.StatusOK, "", nil)
}

// showOverview renders the overview, with an error or an invalid upload's
// errors when there are some.
func (h *Handler) showOverview(w http.ResponseWriter, r *http.Request, s *sess, status int, errMsg string, up *uploadErrors) {
	ctx := r.Context()
	counts, err := h.o.Store.DirectoryCounts(ctx)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	rows := make([]sourceRow, 0, len(s.cfg.Sources))
	for _, src := range s.cfg.Sources {
		rows = append(rows, sourceRow{Name: src.Name, Type: src.Type, Schedule: src.Schedule, Enabled: src.Enabled, Status: "never synced",
			Syncable:   src.Enabled && src.Pulled(),
			Uploadable: src.Enabled && src.Type == config.TypeCSV, Counts: tasks.CountsOf(counts, src.Name)})
	}
	retired, err := (&tasks.Runner{Store: h.o.Store, Config: s.cfg}).Retired(ctx, counts)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	for _, src := range retired {
		rows = append(rows, sourceRow{Name: src.Name, Type: src.Type, Enabled: true, Status: "never synced", Retired: true, Counts: src.Counts})
	}
	for i := range rows {
		row := &rows[i]
		last, err := h.o.Store.LastTask(ctx, row.Name)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		if last != nil {
			v := tasks.ViewOf(last, nil)
			row.Last, row.Status, row.Running = &v, last.Status, last.Status == store.StatusRunning
		}
		st, err := h.o.Store.GetSource(ctx, row.Name)
		switch {
		case err == nil:
			row.LastSuccess = st.LastSuccessAt
		case !errors.Is(err, store.ErrNotFound):
			h.fail(w, r, s, err)
			return
		}
	}
	h.render(w, r, status, "overview", &view{Title: "Sources", Nav: "sources", Flash: flash(r), Error: errMsg,
		Data: overviewData{Sources: rows, Upload: up}, s: s})
}

// enabledSource returns the configured, enabled source of that name, or
// shows the overview with why not.
func (h *Handler) enabledSource(w http.ResponseWriter, r *http.Request, s *sess, name string) (*config.Source, bool) {
	src, ok := s.cfg.Source(name)
	switch {
	case !ok:
		h.showOverview(w, r, s, http.StatusNotFound, fmt.Sprintf("No source %q is configured.", name), nil)
		return nil, false
	case !src.Enabled:
		h.showOverview(w, r, s, http.StatusConflict, fmt.Sprintf("Source %s is disabled (enabled: false in the configuration); enable it and reload roster to sync it.", name), nil)
		return nil, false
	}
	return src, true
}

// syncSource queues a manual sync, as POST /api/v1/sources/{name}/sync.
func (h *Handler) syncSource(w http.ResponseWriter, r *http.Request, s *sess) {
	name := r.PathValue("name")
	if _, ok := h.enabledSource(w, r, s, name); !ok {
		return
	}
	force := formFlag(r, "force")
	h.o.Log.Info("admin page: sync requested", "source", name, "force", force, "token", s.name)
	h.enqueue(w, r, s, name, force, "synced", "queued")
}

// retireSource plans the removal of a retired source's users and groups
// as a held task, as POST /api/v1/sources/{name}/retire, and shows that
// task, whose page has Approve and Reject.
func (h *Handler) retireSource(w http.ResponseWriter, r *http.Request, s *sess) {
	name := r.PathValue("name")
	orphans := r.PostFormValue("orphans")
	h.o.Log.Info("admin page: retirement requested", "source", name, "orphans", orphans, "token", s.name)
	res, err := h.runner(s.cfg).Retire(context.WithoutCancel(r.Context()), name, orphans)
	switch {
	case errors.Is(err, tasks.ErrUsage) && errors.Is(err, store.ErrNotFound):
		h.showOverview(w, r, s, http.StatusNotFound, usageMessage(err), nil)
		return
	case errors.Is(err, tasks.ErrUsage):
		h.showOverview(w, r, s, http.StatusConflict, usageMessage(err), nil)
		return
	case err != nil:
		h.fail(w, r, s, err)
		return
	}
	if h.o.Finished != nil {
		h.o.Finished(res.Task)
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/tasks/%d?flash=retire", res.Task.ID), http.StatusSeeOther)
}

// enqueue queues a manual sync (forced: past an unchanged input's skip
// and the safety valve) and redirects to its task, or to the source's
// task list when it is not recorded within StartWait.
func (h *Handler) enqueue(w http.ResponseWriter, r *http.Request, s *sess, name string, force bool, started, queued string) {
	if h.o.Queue == nil {
		h.showOverview(w, r, s, http.StatusServiceUnavailable, "Syncs run in roster serve's task queues, and this server has none.", nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.o.StartWait)
	defer cancel()
	t, err := h.o.Queue.Enqueue(ctx, name, tasks.TriggerManual, force)
	switch {
	case errors.Is(err, tasks.ErrUsage):
		h.showOverview(w, r, s, http.StatusConflict, usageMessage(err), nil)
	case err != nil:
		h.showOverview(w, r, s, http.StatusServiceUnavailable, fmt.Sprintf("The sync of source %s could not be queued: %v", name, err), nil)
	case t == nil:
		http.Redirect(w, r, "/admin/tasks?source="+url.QueryEscape(name)+"&flash="+queued, http.StatusSeeOther)
	default:
		http.Redirect(w, r, fmt.Sprintf("/admin/tasks/%d?flash=%s", t.ID, started), http.StatusSeeOther)
	}
}

// usageMessage is a tasks.ErrUsage error without its prefix.
func usageMessage(err error) string {
	return strings.TrimPrefix(err.Error(), tasks.ErrUsage.Error()+": ")
}

// maxFieldSize bounds the form fields read before the file of an upload.
const maxFieldSize = 1 << 10

// upload validates an uploaded CSV file and, when it is valid, replaces the
// source's file and syncs it, as PUT /api/v1/sources/{name}/file. The
// multipart form is read as a stream: its csrf field must come before the
// file.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request, s *sess) {
	name := r.PathValue("name")
	mr, err := r.MultipartReader()
	if err != nil {
		h.showOverview(w, r, s, http.StatusBadRequest, "The upload is not a multipart form; use the form on this page.", nil)
		return
	}
	csrfOK := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			h.uploadFailed(w, r, s, err)
			return
		}
		switch part.FormName() {
		case "csrf":
			b, _ := io.ReadAll(io.LimitReader(part, maxFieldSize))
			csrfOK = validCSRF(s.key, string(b))
		case "file":
			if !csrfOK {
				h.csrfFailed(w, r)
				return
			}
			if part.FileName() == "" {
				h.showOverview(w, r, s, http.StatusBadRequest, "Choose a file to upload.", nil)
				return
			}
			h.replaceFile(w, r, s, name, part)
			return
		}
	}
	if !csrfOK {
		h.csrfFailed(w, r)
		return
	}
	h.showOverview(w, r, s, http.StatusBadRequest, "Choose a file to upload.", nil)
}

func (h *Handler) replaceFile(w http.ResponseWriter, r *http.Request, s *sess, name string, file io.Reader) {
	src, ok := s.cfg.Source(name)
	switch {
	case !ok:
		h.showOverview(w, r, s, http.StatusNotFound, fmt.Sprintf("No source %q is configured.", name), nil)
		return
	case !src.Enabled:
		h.showOverview(w, r, s, http.StatusConflict, fmt.Sprintf("Source %s is disabled (enabled: false in the configuration); enable it and reload roster to upload a file.", name), nil)
		return
	case src.Type != config.TypeCSV:
		h.showOverview(w, r, s, http.StatusBadRequest, fmt.Sprintf("Source %s is a %s source; only csv sources take a file.", name, src.Type), nil)
		return
	case h.o.Queue == nil:
		h.showOverview(w, r, s, http.StatusServiceUnavailable, "Syncs run in roster serve's task queues, and this server has none.", nil)
		return
	}
	err := h.runner(s.cfg).ReplaceFile(r.Context(), name, file)
	var invalid *sources.ValidationError
	switch {
	case errors.As(err, &invalid):
		h.o.Log.Info("admin page: upload refused: the file is invalid", "source", name, "errors", len(invalid.Errors), "token", s.name)
		h.showOverview(w, r, s, http.StatusBadRequest, "", &uploadErrors{Source: name, Errors: invalid.Errors,
			Message: fmt.Sprintf("The file for source %s is invalid: %s; nothing was changed and the source's file is as it was.", name, sources.Plural(len(invalid.Errors), "error"))})
		return
	case err != nil:
		h.uploadFailed(w, r, s, err)
		return
	}
	h.o.Log.Info("admin page: file uploaded; syncing it", "source", name, "token", s.name)
	h.enqueue(w, r, s, name, false, "uploaded", "uploadedqueued")
}

func (h *Handler) uploadFailed(w http.ResponseWriter, r *http.Request, s *sess, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.showOverview(w, r, s, http.StatusRequestEntityTooLarge, fmt.Sprintf("The file is larger than limits.push_body (%s); nothing was changed.", config.ByteSize(tooBig.Limit)), nil)
	case errors.Is(err, tasks.ErrUsage):
		h.showOverview(w, r, s, http.StatusConflict, usageMessage(err), nil)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The daemon's read deadline: the browser sent the file too slowly.
		h.showOverview(w, r, s, http.StatusRequestTimeout, "The file arrived too slowly and was not read to its end; nothing was changed. Try again on a faster connection.", nil)
	default:
		h.fail(w, r, s, err)
	}
}

type taskListData struct {
	Tasks          []tasks.View
	Total          int64
	From, To       int
	Source, Status string
	Sources        []string
	Statuses       []string
	Newer, Older   string // links, or ""
}

func (h *Handler) taskList(w http.ResponseWriter, r *http.Request, s *sess) {
	q := r.URL.Query()
	f := store.TaskFilter{Source: q.Get("source"), Status: q.Get("status")}
	if f.Status != "" && !slices.Contains(statuses, f.Status) {
		f.Status = ""
	}
	f.Limit = intParam(q.Get("limit"), defaultLimit, 1, maxLimit)
	f.Offset = intParam(q.Get("offset"), 0, 0, -1)
	list, total, err := h.o.Store.ListTasks(r.Context(), f)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d := taskListData{Total: total, Source: f.Source, Status: f.Status, Statuses: statuses}
	for _, src := range s.cfg.Sources {
		d.Sources = append(d.Sources, src.Name)
	}
	for i := range list {
		d.Tasks = append(d.Tasks, tasks.ViewOf(&list[i], nil))
	}
	if len(list) > 0 {
		d.From, d.To = f.Offset+1, f.Offset+len(list)
	}
	d.Newer, d.Older = pageLinks("/admin/tasks", url.Values{"source": {f.Source}, "status": {f.Status}}, f.Limit, f.Offset, total)
	refresh := 0
	for _, t := range d.Tasks {
		if t.Status == store.StatusRunning || t.Status == store.StatusQueued {
			refresh = 3
		}
	}
	h.render(w, r, http.StatusOK, "tasks", &view{Title: "Tasks", Nav: "tasks", Flash: flash(r), Refresh: refresh, Data: d, s: s})
}

// intParam parses a query parameter between lo and hi (hi < 0: no upper
// bound); a missing or bad value is def.
func intParam(v string, def, lo, hi int) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || hi >= 0 && n > hi {
		return def
	}
	return n
}

type taskData struct {
	Task tasks.View
}

// loadTask reads the task of the path with its held plan; it shows the
// error page and returns false when it cannot.
func (h *Handler) loadTask(w http.ResponseWriter, r *http.Request, s *sess) (*store.Task, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found", Error: "Task ids are positive whole numbers.", s: s})
		return nil, false
	}
	t, err := h.o.Store.GetTask(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found", Error: fmt.Sprintf("There is no task %d (old tasks are removed after tasks.keep).", id), s: s})
		return nil, false
	}
	if err != nil {
		h.fail(w, r, s, err)
		return nil, false
	}
	return t, true
}

func (h *Handler) taskPage(w http.ResponseWriter, r *http.Request, s *sess) {
	t, ok := h.loadTask(w, r, s)
	if !ok {
		return
	}
	h.showTask(w, r, s, t, http.StatusOK, "")
}

func (h *Handler) showTask(w http.ResponseWriter, r *http.Request, s *sess, t *store.Task, status int, errMsg string) {
	hp, err := h.o.Store.GetHeldPlan(r.Context(), t.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		hp = nil
	case err != nil:
		h.fail(w, r, s, err)
		return
	}
	v := tasks.ViewOf(t, hp)
	refresh := 0
	if v.Status == store.StatusRunning || v.Status == store.StatusQueued {
		refresh = 2
	}
	h.render(w, r, status, "task", &view{Title: fmt.Sprintf("Task %d", t.ID), Nav: "tasks", Flash: flash(r), Error: errMsg,
		Refresh: refresh, Data: taskData{Task: v}, s: s})
}

// taskAction retries a failed task or approves or rejects a held one, as
// the admin API does: through tasks.Runner, under the source's lock,
// detached from the client.
func (h *Handler) taskAction(w http.ResponseWriter, r *http.Request, s *sess) {
	action := r.PathValue("action")
	want := map[string]string{"retry": store.StatusFailed, "approve": store.StatusHeld, "reject": store.StatusHeld}[action]
	if want == "" {
		h.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found", Error: "Tasks can be retried, approved or rejected.", s: s})
		return
	}
	t, ok := h.loadTask(w, r, s)
	if !ok {
		return
	}
	if t.Status != want {
		h.showTask(w, r, s, t, http.StatusConflict, fmt.Sprintf("Task %d is %s; only %s tasks can be %s.", t.ID, t.Status, want, map[string]string{"retry": "retried", "approve": "approved", "reject": "rejected"}[action]))
		return
	}
	h.o.Log.Info("admin page: task "+action, "source", t.Source, "task", t.ID, "token", s.name)
	ctx := context.WithoutCancel(r.Context())
	rn := h.runner(s.cfg)
	var done *store.Task
	var err error
	switch action {
	case "retry":
		var res *tasks.Result
		if res, err = rn.Retry(ctx, t.ID, tasks.TriggerRetry); err == nil {
			done = res.Task
		}
	case "approve":
		var res *tasks.Result
		if res, err = rn.Approve(ctx, t.ID); err == nil {
			done = res.Task
		}
	case "reject":
		done, err = rn.Reject(ctx, t.ID)
	}
	if errors.Is(err, tasks.ErrUsage) {
		if cur, gerr := h.o.Store.GetTask(ctx, t.ID); gerr == nil {
			t = cur
		}
		h.showTask(w, r, s, t, http.StatusConflict, usageMessage(err))
		return
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	if h.o.Finished != nil {
		h.o.Finished(done)
	}
	codes := map[string]string{"retry": "retried", "approve": "approved", "reject": "rejected"}
	http.Redirect(w, r, fmt.Sprintf("/admin/tasks/%d?flash=%s", done.ID, codes[action]), http.StatusSeeOther)
}

type userListData struct {
	Users        []store.UserRow
	Total        int64
	From, To     int
	Offset       int
	Search       string
	Newer, Older string
}

func (h *Handler) userList(w http.ResponseWriter, r *http.Request, s *sess) {
	q := r.URL.Query()
	f := store.UserFilter{Search: strings.TrimSpace(q.Get("q")), Limit: intParam(q.Get("limit"), defaultLimit, 1, maxLimit),
		Offset: intParam(q.Get("offset"), 0, 0, -1)}
	users, total, err := h.o.Store.ListUsers(r.Context(), f)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d := userListData{Users: users, Total: total, Search: f.Search, Offset: f.Offset}
	if len(users) > 0 {
		d.From, d.To = f.Offset+1, f.Offset+len(users)
	}
	d.Newer, d.Older = pageLinks("/admin/users", url.Values{"q": {f.Search}}, f.Limit, f.Offset, total)
	h.render(w, r, http.StatusOK, "users", &view{Title: "Users", Nav: "users", Flash: flash(r), Data: d, s: s})
}

// pageLinks are the links to the pages before and after the one shown ("" when
// there is none), keeping the page's non-empty filter parameters.
func pageLinks(path string, filter url.Values, limit, offset int, total int64) (newer, older string) {
	link := func(offset int) string {
		v := url.Values{}
		for k, vals := range filter {
			if vals[0] != "" {
				v.Set(k, vals[0])
			}
		}
		if limit != defaultLimit {
			v.Set("limit", strconv.Itoa(limit))
		}
		if offset > 0 {
			v.Set("offset", strconv.Itoa(offset))
		}
		if len(v) == 0 {
			return path
		}
		return path + "?" + v.Encode()
	}
	if offset > 0 {
		newer = link(max(offset-limit, 0))
	}
	if int64(offset+limit) < total {
		older = link(offset + limit)
	}
	return newer, older
}

// userData is a user's page: every attribute the directory holds of it,
// as SCIM serves it, one row per value.
type userData struct {
	ID, UserName string
	Rows         []attrRow
}

// attrRow is one attribute value: its path and its text.
type attrRow struct{ Path, Value string }

func (h *Handler) userPage(w http.ResponseWriter, r *http.Request, s *sess) {
	id := r.PathValue("id")
	d, err := h.o.Store.UserDetail(r.Context(), id, scim.UserType(&h.o.Config().Attributes))
	if errors.Is(err, store.ErrNotFound) {
		h.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found", Error: "There is no such user (deleted users are not shown).", s: s})
		return
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	u := d.User
	rows, err := flatten(u)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, http.StatusOK, "user", &view{Title: "User " + u.UserName, Nav: "users",
		Data: userData{ID: u.ID, UserName: u.UserName, Rows: rows}, s: s})
}

// flatten lists the values of a resource in the order its JSON has them,
// each with its path: name.givenName, addresses[0].locality, and the
// enterprise extension's attributes after its URN and a colon. schemas
// and meta are left out.
func flatten(v any) ([]attrRow, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var rows []attrRow
	// walk reads one value at path; sep joins path and the keys of an
	// object found there.
	var walk func(path, sep string) error
	walk = func(path, sep string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key := k.(string)
				switch {
				case path == "" && (key == "schemas" || key == "meta"):
					var skip json.RawMessage
					err = dec.Decode(&skip)
				case path == "" && strings.HasPrefix(key, "urn:"):
					err = walk(key, ":")
				case path == "":
					err = walk(key, ".")
				default:
					err = walk(path+sep+key, ".")
				}
				if err != nil {
					return err
				}
			}
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", path, i), "."); err != nil {
					return err
				}
			}
		default:
			rows = append(rows, attrRow{Path: path, Value: fmt.Sprint(tok)})
			return nil
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	return rows, walk("", "")
}

// setActive activates or deactivates a user (the form's active is "true"
// or "false"), as PATCH /api/v1/users/{id} does, and goes back to the
// page the form was on.
func (h *Handler) setActive(w http.ResponseWriter, r *http.Request, s *sess) {
	id := r.PathValue("id")
	var active bool
	switch r.PostForm.Get("active") {
	case "true":
		active = true
	case "false":
	default:
		h.render(w, r, http.StatusBadRequest, "error", &view{Title: "Bad request", Error: "The form must say active=true or active=false.", s: s})
		return
	}
	u, err := h.o.Store.SetActiveByAdmin(r.Context(), id, active)
	if errors.Is(err, store.ErrNotFound) {
		h.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found",
			Error: fmt.Sprintf("No user %q in the directory (deleted users cannot be changed).", id), s: s})
		return
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.o.Log.Info("admin page: user's active flag set", "user", u.ID, "source", u.Source, "active", u.Active, "token", s.name)
	code := "deactivated"
	if active {
		code = "activated"
	}
	back := url.Values{"flash": {code}}
	if q := r.PostForm.Get("q"); q != "" {
		back.Set("q", q)
	}
	if o := r.PostForm.Get("offset"); o != "" {
		back.Set("offset", o)
	}
	http.Redirect(w, r, "/admin/users?"+back.Encode(), http.StatusSeeOther)
}

// groupNode is a group in the Groups page's tree.
type groupNode struct {
	store.GroupRow
	Children []*groupNode
}

// groupTreeData is the Groups page: each source's groups as a tree of
// departments (a group held by another as a member is its child).
type groupTreeData struct {
	Sources []groupSource
	Total   int
	Shown   int
}

type groupSource struct {
	Name  string
	Roots []*groupNode
}

// maxTreeGroups bounds the groups the Groups page draws.
const maxTreeGroups = 5000

func (h *Handler) groupTree(w http.ResponseWriter, r *http.Request, s *sess) {
	rows, total, err := h.o.Store.ListGroups(r.Context(), store.GroupFilter{Limit: maxTreeGroups})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	nodes := make(map[string]*groupNode, len(rows))
	for i := range rows {
		nodes[rows[i].ID] = &groupNode{GroupRow: rows[i]}
	}
	d := groupTreeData{Total: int(total), Shown: len(rows)}
	bySource := map[string]int{}
	for i := range rows {
		n := nodes[rows[i].ID]
		if p := nodes[n.Parent]; p != nil && p != n {
			p.Children = append(p.Children, n)
			continue
		}
		k, ok := bySource[n.Source]
		if !ok {
			k = len(d.Sources)
			bySource[n.Source] = k
			d.Sources = append(d.Sources, groupSource{Name: n.Source})
		}
		d.Sources[k].Roots = append(d.Sources[k].Roots, n)
	}
	h.render(w, r, http.StatusOK, "groups", &view{Title: "Groups", Nav: "groups", Flash: flash(r), Data: d, s: s})
}
