package adminui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
)

// sinkPageRuns is how many runs a sink's page shows.
const sinkPageRuns = 20

type sinksData struct {
	Sinks []sinks.View
}

type sinkData struct {
	Sink  sinks.View
	Total int64
}

func (h *Handler) sinkList(w http.ResponseWriter, r *http.Request, s *sess) {
	var d sinksData
	for _, sc := range s.cfg.Sinks {
		v, err := sinks.ViewOf(r.Context(), h.o.Store, sc, 0)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		d.Sinks = append(d.Sinks, v)
	}
	h.render(w, r, http.StatusOK, "sinks", &view{Title: "Sinks", Nav: "sinks", Flash: flash(r), Data: d, s: s})
}

func (h *Handler) sinkPage(w http.ResponseWriter, r *http.Request, s *sess) {
	h.showSink(w, r, s, http.StatusOK, "")
}

// showSink renders a sink's page with its newest runs, or the error page
// when no such sink is configured.
func (h *Handler) showSink(w http.ResponseWriter, r *http.Request, s *sess, status int, errMsg string) {
	name := r.PathValue("name")
	sc, ok := s.cfg.Sink(name)
	if !ok {
		h.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found", Nav: "sinks", Error: fmt.Sprintf("No sink %q is configured.", name), s: s})
		return
	}
	v, err := sinks.ViewOf(r.Context(), h.o.Store, *sc, 0)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d := sinkData{Sink: v}
	if d.Sink.Runs, d.Total, err = h.o.Store.SinkRuns(r.Context(), sc.Name, sinkPageRuns, 0); err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, status, "sink", &view{Title: "Sink " + sc.Name, Nav: "sinks", Flash: flash(r), Error: errMsg, Data: d, s: s})
}

// sinkAction runs a sink now or approves its held removals, as POST
// /api/v1/sinks/{name}/run and /approve.
func (h *Handler) sinkAction(w http.ResponseWriter, r *http.Request, s *sess) {
	name, action := r.PathValue("name"), r.PathValue("action")
	sc, ok := s.cfg.Sink(name)
	if !ok {
		h.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found", Nav: "sinks", Error: fmt.Sprintf("No sink %q is configured.", name), s: s})
		return
	}
	ctx := context.WithoutCancel(r.Context())
	var err error
	code := ""
	switch action {
	case "run":
		if !sc.Enabled {
			h.showSink(w, r, s, http.StatusConflict, fmt.Sprintf("Sink %s is disabled (enabled: false in the configuration); enable it and reload roster to run it.", name))
			return
		}
		err, code = h.o.Store.RequestSinkRun(ctx, name), "sinkrun"
		if errors.Is(err, store.ErrNotFound) {
			h.showSink(w, r, s, http.StatusConflict, fmt.Sprintf("Sink %s is not registered yet: roster serve registers it once its store is up.", name))
			return
		}
	case "approve":
		err, code = h.o.Store.ApproveSinkRemovals(ctx, name), "sinkapproved"
		if errors.Is(err, store.ErrNotFound) {
			h.showSink(w, r, s, http.StatusConflict, fmt.Sprintf("Sink %s holds no removals to approve.", name))
			return
		}
	default:
		h.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found", Error: "There is no page at this address.", s: s})
		return
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.o.Log.Info("admin page: sink "+action, "sink", name, "token", s.name)
	http.Redirect(w, r, "/admin/sinks/"+url.PathEscape(name)+"?flash="+code, http.StatusSeeOther)
}
