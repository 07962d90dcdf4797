package admin

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
)

// defaultSinkRuns is how many runs GET /api/v1/sinks/{name} lists
// without limit.
const defaultSinkRuns = 20

// sinkDetail is GET /api/v1/sinks/{name}: the sink with a page of its
// runs, newest first.
type sinkDetail struct {
	sinks.View
	RunsTotal int64 `json:"runs_total"`
	Limit     int   `json:"limit"`
	Offset    int   `json:"offset"`
}

func (h *Handler) listSinks(w http.ResponseWriter, r *http.Request, c *call) error {
	items := make([]sinks.View, 0, len(c.cfg.Sinks))
	for _, sc := range c.cfg.Sinks {
		v, err := sinks.ViewOf(r.Context(), h.o.Store, sc, 0)
		if err != nil {
			return err
		}
		items = append(items, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": len(items)})
	return nil
}

// configuredSink is the {name} of a sink path: 404 when no sink of that
// name is configured.
func configuredSink(r *http.Request, cfg *config.Config) (*config.Sink, error) {
	name := r.PathValue("name")
	sc, ok := cfg.Sink(name)
	if !ok {
		return nil, errorf(http.StatusNotFound, "no sink %q is configured", name)
	}
	return sc, nil
}

func (h *Handler) getSink(w http.ResponseWriter, r *http.Request, c *call) error {
	sc, err := configuredSink(r, c.cfg)
	if err != nil {
		return err
	}
	d := sinkDetail{Limit: defaultSinkRuns}
	if err := paging(r.URL.Query(), &d.Limit, &d.Offset); err != nil {
		return err
	}
	if d.View, err = sinks.ViewOf(r.Context(), h.o.Store, *sc, 0); err != nil {
		return err
	}
	if d.View.Runs, d.RunsTotal, err = h.o.Store.SinkRuns(r.Context(), sc.Name, d.Limit, d.Offset); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (h *Handler) getSinkRun(w http.ResponseWriter, r *http.Request, c *call) error {
	sc, err := configuredSink(r, c.cfg)
	if err != nil {
		return err
	}
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return errorf(http.StatusBadRequest, "%q is not a run id: run ids are positive whole numbers", v)
	}
	run, err := h.o.Store.SinkRun(r.Context(), sc.Name, id)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "sink %s has no run %d (runs older than tasks.keep are removed)", sc.Name, id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// approveSink lets a sink held by max_removals deliver its removals, as
// `roster sink NAME --approve`; the replica delivering it starts within
// about a second. The answer is the sink.
func (h *Handler) approveSink(w http.ResponseWriter, r *http.Request, c *call) error {
	sc, err := configuredSink(r, c.cfg)
	if err != nil {
		return err
	}
	ctx := context.WithoutCancel(r.Context())
	if err := h.o.Store.ApproveSinkRemovals(ctx, sc.Name); errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusConflict, "sink %s holds no removals to approve", sc.Name)
	} else if err != nil {
		return err
	}
	h.o.Log.Info("admin API: sink removals approved", "sink", sc.Name, "token", c.token)
	v, err := sinks.ViewOf(ctx, h.o.Store, *sc, 0)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// runSink asks the replica delivering the sink to run it now: 202 with
// the sink (run_requested true); the run shows in GET
// /api/v1/sinks/{name} with the trigger "operator" once it ends.
func (h *Handler) runSink(w http.ResponseWriter, r *http.Request, c *call) error {
	sc, err := configuredSink(r, c.cfg)
	if err != nil {
		return err
	}
	if !sc.Enabled {
		return errorf(http.StatusConflict, "sink %s is disabled (enabled: false in the configuration); enable it and reload roster to run it", sc.Name)
	}
	ctx := context.WithoutCancel(r.Context())
	if err := h.o.Store.RequestSinkRun(ctx, sc.Name); errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusConflict, "sink %s is not registered yet: roster serve registers it once its store is up", sc.Name)
	} else if err != nil {
		return err
	}
	h.o.Log.Info("admin API: sink run requested", "sink", sc.Name, "token", c.token)
	v, err := sinks.ViewOf(ctx, h.o.Store, *sc, 0)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, v)
	return nil
}
