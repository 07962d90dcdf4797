package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"text/tabwriter"
	"time"

	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
)

// sinkRow is a sink as `roster sinks` and `roster sink NAME` show it.
type sinkRow struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// State is "never run", "ok", "failing", "quarantined", "disabled" or
	// "not started" (configured, not registered by a roster serve yet).
	State string `json:"state"`
	// LagSeconds is the age of the oldest change not delivered yet.
	LagSeconds float64 `json:"lag_seconds"`
	Queue      int64   `json:"queue"`
	Failures   int     `json:"failures"`
	LastError  string  `json:"last_error,omitempty"`
	// Held says why the sink waits for an operator (max_removals).
	Held      string     `json:"held,omitempty"`
	LastRunAt *time.Time `json:"last_run_at"`
}

func sinkRowOf(ctx context.Context, st *store.Store, name string, enabled bool) (sinkRow, error) {
	row := sinkRow{Name: name, Enabled: enabled, State: "not started"}
	s, err := st.Sink(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			if !enabled {
				row.State = "disabled"
			}
			return row, nil
		}
		return row, err
	}
	row.Queue, row.Failures, row.LastError, row.Held = s.Queue, s.Failures, s.LastError, s.Held
	if !s.Oldest.IsZero() {
		row.LagSeconds = math.Max(time.Since(s.Oldest).Seconds(), 0)
	}
	switch {
	case !enabled:
		row.State = "disabled"
	case s.Held != "" && !s.Approved:
		row.State = "held"
	case s.LastRunAt.IsZero():
		row.State = "never run"
	case s.Failures >= sinks.QuarantineAfter:
		row.State = "quarantined"
	case s.Failures > 0:
		row.State = "failing"
	default:
		row.State = "ok"
	}
	if !s.LastRunAt.IsZero() {
		at := s.LastRunAt
		row.LastRunAt = &at
	}
	return row, nil
}

// runSinks lists the configured sinks with their state, lag and queue.
func runSinks(ctx context.Context, e *env, args []string) error {
	fs := e.flags("sinks")
	asJSON := fs.Bool("json", false, "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("roster sinks takes no arguments; roster sink NAME shows one")
	}
	r, closeStore, err := e.openExisting(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	rows := []sinkRow{}
	for _, sc := range r.Config.Sinks {
		row, err := sinkRowOf(ctx, r.Store, sc.Name, sc.Enabled)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	if *asJSON {
		return writeJSON(e.stdout, rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tLAG\tQUEUE\tLAST RUN\tLAST ERROR")
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", row.Name, row.State, lag(row.LagSeconds), row.Queue, lastRun(row.LastRunAt), dash(row.LastError))
	}
	return tw.Flush()
}

// runSink shows one sink, or approves the removals it holds.
func runSink(ctx context.Context, e *env, args []string) error {
	fs := e.flags("sink")
	asJSON := fs.Bool("json", false, "")
	approve := fs.Bool("approve", false, "")
	dryRun := fs.Bool("dry-run", false, "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("roster sink NAME shows one sink")
	}
	if *dryRun && *approve {
		return usagef("roster sink NAME: --dry-run sends nothing and --approve changes the sink; use one of them")
	}
	r, closeStore, err := e.openExisting(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	sc, ok := r.Config.Sink(pos[0])
	if !ok {
		return notFoundError{fmt.Sprintf("no sink %q is configured", pos[0])}
	}
	if *dryRun {
		return sinkDryRun(ctx, e, r.Store, r.Config, sc, *asJSON)
	}
	if *approve {
		if err := r.Store.ApproveSinkRemovals(ctx, sc.Name); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return notFoundError{fmt.Sprintf("sink %s holds no removals to approve", sc.Name)}
			}
			return err
		}
	}
	row, err := sinkRowOf(ctx, r.Store, sc.Name, sc.Enabled)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, row)
	}
	if row.Held != "" {
		fmt.Fprintf(e.stdout, "held:       %s\n", row.Held)
	}
	fmt.Fprintf(e.stdout, "sink %s\nstate:      %s\nlag:        %s\nqueue:      %d changes\nfailures:   %d in a row\nlast run:   %s\nlast error: %s\n",
		row.Name, row.State, lag(row.LagSeconds), row.Queue, row.Failures, lastRun(row.LastRunAt), dash(row.LastError))
	return nil
}

func lag(seconds float64) string {
	if seconds == 0 {
		return "0s"
	}
	return (time.Duration(seconds) * time.Second).Round(time.Second).String()
}

func lastRun(at *time.Time) string {
	if at == nil {
		return "-"
	}
	return at.Local().Format(time.DateTime)
}
