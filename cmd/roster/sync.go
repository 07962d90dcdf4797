package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources"
)

func runSync(ctx context.Context, e *env, args []string) error {
	fs := e.flags("sync")
	dry := fs.Bool("dry-run", false, "")
	force := fs.Bool("force", false, "")
	file := fs.String("file", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one source")
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	src, ok := cfg.Source(pos[0])
	if !ok {
		return notFoundError{fmt.Sprintf("no source %q in %s", pos[0], configName(cfg))}
	}
	if !src.Enabled {
		// Refused before the store is opened: a refusal creates nothing.
		return fmt.Errorf("%w: source %q is disabled (enabled: false)", tasks.ErrState, pos[0])
	}
	r, closeStore, err := e.openConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	progress := newProgress(e.stdout)
	r.Progress = progress.update
	res, err := r.Sync(ctx, pos[0], tasks.Options{Trigger: tasks.TriggerManual, DryRun: *dry, Force: *force, File: *file})
	progress.clear()
	var verr *sources.ValidationError
	if errors.As(err, &verr) && *asJSON {
		if err := writeJSON(e.stdout, map[string]any{"source": pos[0], "file": *file, "errors": verr.Errors}); err != nil {
			return err
		}
		return exitError{exitFailed}
	}
	if err != nil {
		return err
	}
	if *dry {
		return printDryRun(e.stdout, pos[0], res, *asJSON)
	}
	return printResult(e.stdout, res.Task, res.Plan, nil, *asJSON)
}

// withTaskID parses a command that takes one task id (and --json), opens
// the store and runs fn.
func withTaskID(ctx context.Context, e *env, name string, args []string, readOnly bool,
	fn func(r *tasks.Runner, id int64, asJSON bool) error) error {
	fs := e.flags(name)
	asJSON := fs.Bool("json", false, "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one task id")
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return usagef("%q is not a task id", pos[0])
	}
	open := e.open
	if readOnly {
		open = e.openExisting
	}
	r, closeStore, err := open(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	return fn(r, id, *asJSON)
}

// taskCommand runs a command that takes a task id and ends in a task.
func taskCommand(ctx context.Context, e *env, name string, args []string,
	do func(ctx context.Context, r *tasks.Runner, id int64) (*tasks.Result, error)) error {
	return withTaskID(ctx, e, name, args, false, func(r *tasks.Runner, id int64, asJSON bool) error {
		progress := newProgress(e.stdout)
		r.Progress = progress.update
		res, err := do(ctx, r, id)
		progress.clear()
		if err != nil {
			return err
		}
		var hp *store.HeldPlan
		if res.Task.Status == store.StatusHeld {
			hp, _ = r.Store.GetHeldPlan(ctx, res.Task.ID)
		}
		return printResult(e.stdout, res.Task, res.Plan, hp, asJSON)
	})
}

func runRetry(ctx context.Context, e *env, args []string) error {
	return taskCommand(ctx, e, "retry", args, func(ctx context.Context, r *tasks.Runner, id int64) (*tasks.Result, error) {
		return r.Retry(ctx, id, tasks.TriggerRetry)
	})
}

func runApprove(ctx context.Context, e *env, args []string) error {
	return taskCommand(ctx, e, "approve", args, func(ctx context.Context, r *tasks.Runner, id int64) (*tasks.Result, error) {
		return r.Approve(ctx, id)
	})
}

func runReject(ctx context.Context, e *env, args []string) error {
	return taskCommand(ctx, e, "reject", args, func(ctx context.Context, r *tasks.Runner, id int64) (*tasks.Result, error) {
		t, err := r.Reject(ctx, id)
		return &tasks.Result{Task: t}, err
	})
}

// printResult prints a finished task and returns the exit code's error.
func printResult(w io.Writer, t *store.Task, plan *reconcile.Plan, hp *store.HeldPlan, asJSON bool) error {
	if t.Status == store.StatusHeld && hp == nil && plan != nil {
		hp = &store.HeldPlan{Reason: plan.Hold, Plan: heldJSON(plan)}
	}
	v := tasks.ViewOf(t, hp)
	if asJSON {
		if err := writeJSON(w, v); err != nil {
			return err
		}
	} else {
		printTask(w, v)
	}
	switch t.Status {
	case store.StatusFailed:
		return exitError{exitFailed}
	case store.StatusHeld:
		return exitError{exitHeld}
	}
	return nil
}

// heldJSON renders a plan's removals like the stored held plan.
func heldJSON(p *reconcile.Plan) string {
	var rm []reconcile.Change
	for _, c := range p.Changes {
		if c.Action == reconcile.Deactivate || c.Action == reconcile.Delete || c.Action == reconcile.Adopt {
			rm = append(rm, c)
		}
	}
	b, _ := json.Marshal(map[string]any{"counts": p.Counts, "removals": rm})
	return string(b)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printTask(w io.Writer, v tasks.View) {
	took := ""
	switch {
	case v.Status == store.StatusRejected && v.FinishedAt != nil:
		// Started..finished spans the operator's thinking, not work.
		took = " at " + v.FinishedAt.Local().Format(time.DateTime)
	case v.StartedAt != nil && v.FinishedAt != nil:
		took = " in " + v.FinishedAt.Sub(*v.StartedAt).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "task %d (%s, %s): %s%s\n", v.ID, v.Source, v.Trigger, v.Status, took)
	if v.RetryOf != nil {
		fmt.Fprintf(w, "  retry of task %d\n", *v.RetryOf)
	}
	if v.Status != store.StatusSkipped && v.Status != store.StatusRunning && v.Status != store.StatusQueued {
		fmt.Fprintf(w, "  %s\n", countsLine(v.Counts))
	}
	for _, warn := range v.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	for _, e := range v.Errors {
		fmt.Fprintf(w, "  %s\n", e.Message)
	}
	if v.Hold != "" {
		fmt.Fprintf(w, "  held: %s\n", v.Hold)
		for _, c := range v.Removals {
			printChange(w, c)
		}
		if v.Status == store.StatusHeld {
			fmt.Fprintf(w, "  apply it with `roster approve %d`, discard it with `roster reject %d`\n", v.ID, v.ID)
		}
	}
	if v.RawRecord != nil {
		fmt.Fprintf(w, "  raw record: %s\n", *v.RawRecord)
	}
}

func countsLine(c reconcile.Counts) string {
	line := fmt.Sprintf("created %d, updated %d, unchanged %d, deactivated %d, deleted %d, restored %d, not restored %d, skipped %d",
		c.Created, c.Updated, c.Unchanged, c.Deactivated, c.Deleted, c.Restored, c.NotRestored, c.Skipped)
	if c.Adopted > 0 { // only sources with on_conflict: adopt take users over
		line += fmt.Sprintf(", adopted %d", c.Adopted)
	}
	return line
}

func printChange(w io.Writer, c reconcile.Change) {
	u := c.After
	line := fmt.Sprintf("  %-12s %-10s %-20s %s", c.Action, u.ExternalID, u.UserName, u.DisplayName)
	if len(c.Fields) > 0 {
		line += " (" + strings.Join(c.Fields, ", ") + ")"
	}
	if c.Reason != "" {
		line += ": " + c.Reason
	}
	if c.Action == reconcile.Adopt && c.Before != nil {
		line += fmt.Sprintf(" from source %s (id %s)", c.Before.Source, u.ID)
	}
	fmt.Fprintln(w, strings.TrimRight(line, " "))
}

func printDryRun(w io.Writer, source string, res *tasks.Result, asJSON bool) error {
	defer res.Close()
	code := 0
	switch {
	case len(res.Errors) > 0:
		code = exitFailed
	case res.Plan != nil && res.Plan.Hold != "":
		code = exitHeld
	}
	if asJSON {
		out := map[string]any{"source": source, "dry_run": true, "errors": nonNil(res.Errors)}
		if p := res.Plan; p != nil {
			out["counts"], out["changes"], out["warnings"], out["hold"] = p.Counts, eachChange(res.EachChange), nonNil(p.Warnings), p.Hold
			out["groups_created"], out["groups_deleted"] = nonNil(p.GroupCreates), nonNil(p.GroupDeletes)
		}
		if err := writeJSONObject(w, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "dry run of %s: nothing was written\n", source)
		for _, e := range res.Errors {
			fmt.Fprintf(w, "  %s\n", e.Message)
		}
		if p := res.Plan; p != nil && len(res.Errors) == 0 {
			fmt.Fprintf(w, "  would have: %s\n", countsLine(p.Counts))
			for _, warn := range p.Warnings {
				fmt.Fprintf(w, "  warning: %s\n", warn)
			}
			if err := res.EachChange(func(c *reconcile.Change) error { printChange(w, *c); return nil }); err != nil {
				return err
			}
			for _, g := range p.GroupCreates {
				fmt.Fprintf(w, "  create group %s\n", g.DisplayName)
			}
			for _, g := range p.GroupDeletes {
				fmt.Fprintf(w, "  delete group %s\n", g.DisplayName)
			}
			if p.Hold != "" {
				fmt.Fprintf(w, "  the safety valve would hold this sync: %s\n", p.Hold)
			}
		}
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

// progress prints one self-overwriting line while a long task runs, only
// when stdout is a terminal.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	last  time.Time
	shown bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	return p
}

func (p *progress) update(source, phase string, n int) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last, p.shown = time.Now(), true
	what := map[string]string{"read": "records read", "hash": "passwords hashed", "apply": "changes being applied"}[phase]
	fmt.Fprintf(p.w, "\r\033[K%s: %d %s", source, n, what)
}

func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// nonNil makes empty lists print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
