package sinks

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
)

// View is a sink as `roster sinks`, `roster sink NAME`, the admin API and
// the admin page show it.
type View struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// State is "never run", "ok", "failing", "held", "quarantined",
	// "disabled" or "not started" (configured, not registered by a roster
	// serve yet).
	State string `json:"state"`
	// LagSeconds is the age of the oldest change not delivered yet.
	LagSeconds float64 `json:"lag_seconds"`
	Queue      int64   `json:"queue"`
	Failures   int     `json:"failures"`
	LastError  string  `json:"last_error,omitempty"`
	// Held says why the sink waits for an operator (max_removals).
	Held      string     `json:"held,omitempty"`
	LastRunAt *time.Time `json:"last_run_at"`
	// RunRequested: an operator asked for a run that has not started.
	RunRequested bool `json:"run_requested"`
	// LastRun is the newest recorded run (idle steps are not recorded).
	LastRun *store.SinkRun `json:"last_run"`
	// Runs are the newest recorded runs, when asked for.
	Runs []store.SinkRun `json:"runs,omitempty"`
}

// ViewOf reads the sink's state from the store, with its newest runs
// (as many as runs says; none when it is 0).
func ViewOf(ctx context.Context, st *store.Store, cfg config.Sink, runs int) (View, error) {
	v := View{Name: cfg.Name, Enabled: cfg.Enabled, State: "not started"}
	s, err := st.Sink(ctx, cfg.Name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			if !cfg.Enabled {
				v.State = "disabled"
			}
			return v, nil
		}
		return v, err
	}
	v.Queue, v.Failures, v.LastError, v.Held = s.Queue, s.Failures, s.LastError, s.Held
	if !s.Oldest.IsZero() {
		v.LagSeconds = math.Max(time.Since(s.Oldest).Seconds(), 0)
	}
	switch {
	case !cfg.Enabled:
		v.State = "disabled"
	case s.Held != "" && !s.Approved:
		v.State = "held"
	case s.LastRunAt.IsZero():
		v.State = "never run"
	case s.Failures >= QuarantineAfter:
		v.State = "quarantined"
	case s.Failures > 0:
		v.State = "failing"
	default:
		v.State = "ok"
	}
	if !s.LastRunAt.IsZero() {
		at := s.LastRunAt
		v.LastRunAt = &at
	}
	if v.RunRequested, _, err = st.SinkWake(ctx, cfg.Name); err != nil {
		return v, err
	}
	list, _, err := st.SinkRuns(ctx, cfg.Name, max(runs, 1), 0)
	if err != nil {
		return v, err
	}
	if len(list) > 0 {
		v.LastRun = &list[0]
	}
	if runs > 0 {
		v.Runs = list
	}
	return v, nil
}
