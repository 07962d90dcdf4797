package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
)

// sinkRuns is how many runs `roster sink NAME` shows.
const sinkRuns = 10

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
	rows := []sinks.View{}
	for _, sc := range r.Config.Sinks {
		row, err := sinks.ViewOf(ctx, r.Store, sc, 0)
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

// runSink shows one sink with its recent runs, approves the removals
// it holds, or runs it now.
func runSink(ctx context.Context, e *env, args []string) error {
	fs := e.flags("sink")
	asJSON := fs.Bool("json", false, "")
	approve := fs.Bool("approve", false, "")
	runNow := fs.Bool("run", false, "")
	dryRun := fs.Bool("dry-run", false, "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("roster sink NAME shows one sink")
	}
	if *dryRun && (*approve || *runNow) {
		return usagef("roster sink NAME: --dry-run sends nothing, --approve and --run do; use one of them")
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
	if *runNow {
		run, err := runSinkNow(ctx, e, r, sc)
		if err != nil {
			return err
		}
		if *asJSON {
			err = writeJSON(e.stdout, run)
		} else {
			printSinkRun(e.stdout, run)
		}
		if err != nil {
			return err
		}
		switch {
		case run.Status == store.SinkRunHeld:
			return exitError{exitHeld}
		case run.Status == store.SinkRunFailed || run.Counts.Failed > 0:
			return exitError{exitFailed}
		}
		return nil
	}
	row, err := sinks.ViewOf(ctx, r.Store, *sc, sinkRuns)
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
	if row.RunRequested {
		fmt.Fprintln(e.stdout, "a run was asked for and has not started yet")
	}
	if len(row.Runs) == 0 {
		fmt.Fprintln(e.stdout, "\nno run recorded (steps that find nothing to deliver are not recorded)")
		return nil
	}
	fmt.Fprintln(e.stdout, "\nrecent runs (roster sink NAME --json has their errors):")
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tTRIGGER\tSTATUS\tCREATED\tADOPTED\tUPDATED\tDEACTIVATED\tDELETED\tFAILED\tERROR")
	for _, run := range row.Runs {
		c := run.Counts
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", run.ID, run.StartedAt.Local().Format(time.DateTime), run.Trigger,
			runStatus(run), c.Created, c.Adopted, c.Updated, c.Deactivated, c.Deleted, c.Failed, dash(run.Error))
	}
	return tw.Flush()
}

// runStatus is a run's status, with how often a held run was seen again.
func runStatus(r store.SinkRun) string {
	if r.Repeats > 0 {
		return fmt.Sprintf("%s (×%d)", r.Status, r.Repeats+1)
	}
	return r.Status
}

// runSinkNow runs the sink once for the operator. When no replica
// delivers it (its lock is free) the command runs the step itself;
// otherwise it asks the replica that does, which starts within about a
// second once its current step ends, and waits for that run.
func runSinkNow(ctx context.Context, e *env, r *tasks.Runner, sc *config.Sink) (store.SinkRun, error) {
	if !sc.Enabled {
		return store.SinkRun{}, fmt.Errorf("%w: sink %s is disabled (enabled: false in the configuration); enable it to run it", tasks.ErrState, sc.Name)
	}
	if _, err := r.Store.Sink(ctx, sc.Name); errors.Is(err, store.ErrNotFound) {
		return store.SinkRun{}, fmt.Errorf("%w: sink %s is not registered yet: start roster serve with it once, which also records what changes for it", tasks.ErrState, sc.Name)
	} else if err != nil {
		return store.SinkRun{}, err
	}
	unlock, err := r.Store.TryLockSink(ctx, sc.Name)
	if err == nil {
		defer unlock()
		s, err := newSink(e, r.Store, r.Config, sc)
		if err != nil {
			return store.SinkRun{}, err
		}
		// Step's error is the run's: printed with it, and its exit code.
		run, _, _ := s.RunStep(ctx, store.SinkTriggerOperator)
		if ctx.Err() != nil {
			return run, ctx.Err()
		}
		if run.ID == 0 {
			return run, fmt.Errorf("the run of sink %s could not be recorded (see the log above)", sc.Name)
		}
		return run, nil
	}
	if !errors.Is(err, store.ErrLocked) {
		return store.SinkRun{}, err
	}
	before, err := r.Store.LastSinkRunID(ctx, sc.Name)
	if err != nil {
		return store.SinkRun{}, err
	}
	if err := r.Store.RequestSinkRun(ctx, sc.Name); err != nil {
		return store.SinkRun{}, err
	}
	fmt.Fprintf(e.stderr, "roster sink: a running roster serve delivers sink %s; it was asked to run now. Waiting for the run (Ctrl-C stops the wait, not the run).\n", sc.Name)
	for {
		runs, _, err := r.Store.SinkRuns(ctx, sc.Name, 20, 0)
		if err != nil {
			return store.SinkRun{}, err
		}
		for i := len(runs) - 1; i >= 0; i-- {
			if runs[i].ID > before && runs[i].Trigger == store.SinkTriggerOperator {
				return runs[i], nil
			}
		}
		select {
		case <-ctx.Done():
			return store.SinkRun{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// printSinkRun prints one run with the resources the service refused.
func printSinkRun(w io.Writer, run store.SinkRun) {
	c := run.Counts
	fmt.Fprintf(w, "run %d of sink %s: %s (%s), %s, %s\n", run.ID, run.Sink, run.Status, run.Trigger,
		run.StartedAt.Local().Format(time.DateTime), run.FinishedAt.Sub(run.StartedAt).Round(time.Millisecond))
	fmt.Fprintf(w, "created %d, adopted %d, updated %d, deactivated %d, deleted %d, failed %d\n",
		c.Created, c.Adopted, c.Updated, c.Deactivated, c.Deleted, c.Failed)
	if run.Error != "" {
		fmt.Fprintf(w, "error: %s\n", run.Error)
	}
	for _, f := range run.Errors {
		fmt.Fprintf(w, "  %s %s: %s %s: %d %s\n", f.Kind, f.ID, f.Method, f.Path, f.Status, f.Detail)
	}
	if more := c.Failed - len(run.Errors); more > 0 && len(run.Errors) > 0 {
		fmt.Fprintf(w, "  … and %d more\n", more)
	}
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
