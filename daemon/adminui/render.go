package adminui

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources"
)

// view is what every page template gets.
type view struct {
	Title string
	Nav   string // the menu entry to mark: sources, tasks, users
	Flash string
	Error string
	// Refresh, when > 0, reloads the page after that many seconds (a
	// running task), without JavaScript.
	Refresh int
	Data    any
	s       *sess
}

// CSRF is the value of every form's csrf field.
func (v *view) CSRF() string {
	if v.s == nil {
		return ""
	}
	return v.s.csrf
}

// User is the name of the session's token, or "" when logged out.
func (v *view) User() string {
	if v.s == nil {
		return ""
	}
	return v.s.name
}

// uploadErrors is what an invalid upload shows.
type uploadErrors struct {
	Source  string
	Message string
	Errors  []sources.FieldError
}

var pageNames = []string{"login", "error", "overview", "tasks", "task", "users", "user", "groups", "sinks", "sink", "dryrun"}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"when":   when,
		"counts": countsText,
		"plural": sources.Plural,
		"lag":    lagText,
		"int":    func(n int64) int { return int(n) },
		"add":    func(a, b int) int { return a + b },
	}
	out := map[string]*template.Template{}
	for _, p := range pageNames {
		out[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+p+".html"))
	}
	return out
}

// render writes a page; the page is rendered completely before anything
// is sent, so a template error is a clean 500.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	if v.s == nil && page != "login" {
		v.s = h.current(r)
	}
	var b bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&b, "layout", v); err != nil {
		h.o.Log.Error("admin page: rendering failed", "page", page, "err", err)
		http.Error(w, "the page could not be rendered; see roster's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes()) //nolint:errcheck // the client went away
}

// flashes are the messages a redirect after a POST may ask for with
// ?flash=CODE; unknown codes show nothing.
var flashes = map[string]string{
	"synced":         "The sync has started; this is its task.",
	"queued":         "The sync is queued behind a running task of the source (or waits for its lock); it appears here when it starts.",
	"uploaded":       "The file was valid and replaced the source's file; its sync has started: this is its task.",
	"uploadedqueued": "The file was valid and replaced the source's file; its sync is queued behind a running task of the source and appears here when it starts.",
	"retried":        "The failed task was retried as this task.",
	"approved":       "The held plan was approved.",
	"rejected":       "The held plan was rejected; nothing was written.",
	"retire":         "The retirement is planned and held: read who it removes, then approve or reject it.",
	"loggedout":      "You are logged out.",
	"sinkrun":        "The sink was asked to run now: the replica delivering it starts within about a second (after a step it is in); reload to see the run.",
	"sinkapproved":   "The held removals were approved: the sink delivers them within about a second.",
	"activated":      "The user was activated; syncs of its source keep that while the user is in the source.",
	"deactivated":    "The user was deactivated; syncs of its source keep that while the user is in the source.",
}

func flash(r *http.Request) string { return flashes[r.URL.Query().Get("flash")] }

// when shows a time in UTC, or "—" for none.
func when(t any) string {
	var tm time.Time
	switch t := t.(type) {
	case time.Time:
		tm = t
	case *time.Time:
		if t == nil {
			return "—"
		}
		tm = *t
	default:
		return "—"
	}
	if tm.IsZero() {
		return "—"
	}
	return tm.UTC().Format("2006-01-02 15:04:05 UTC")
}

// countsText lists the counts that are not zero.
func countsText(c reconcile.Counts) string {
	var parts []string
	for _, kv := range []struct {
		k string
		v int
	}{{"created", c.Created}, {"updated", c.Updated}, {"unchanged", c.Unchanged}, {"deactivated", c.Deactivated},
		{"deleted", c.Deleted}, {"restored", c.Restored}, {"not restored", c.NotRestored}, {"skipped", c.Skipped}, {"adopted", c.Adopted}} {
		if kv.v != 0 {
			parts = append(parts, kv.k+" "+strconv.Itoa(kv.v))
		}
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

// lagText shows a sink's lag in whole seconds.
func lagText(seconds float64) string {
	return (time.Duration(seconds) * time.Second).String()
}
