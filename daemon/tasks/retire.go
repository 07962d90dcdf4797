package tasks

import (
	"context"
	"fmt"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
)

// Retired sources (SPEC §4.4). A source removed from the configuration
// keeps its users and groups: an edit of the configuration deletes
// nothing. It is listed as retired while it owns users that are not
// deleted, or groups; another source may adopt its users
// (on_conflict: adopt); and Retire plans the removal of what is left as a
// held task, which an operator approves or rejects like any held task.

// TriggerRetire is the trigger of a task that Retire plans.
const TriggerRetire = "retire"

// Counts are what a source owns: users by state, and groups.
type Counts struct {
	Active   int64 `json:"active"`
	Inactive int64 `json:"inactive"`
	Deleted  int64 `json:"deleted"`
	Groups   int64 `json:"groups"`
}

// Live is how many users that are not deleted, and groups, a source owns.
func (c Counts) Live() int64 { return c.Active + c.Inactive + c.Groups }

// CountsOf picks a source's counts out of the directory's.
func CountsOf(dc *store.DirectoryCounts, name string) Counts {
	u := dc.Users[name]
	return Counts{Active: u[reconcile.StateActive], Inactive: u[reconcile.StateInactive], Deleted: u[reconcile.StateDeleted],
		Groups: dc.Groups[name]}
}

// RetiredSource is a source the store knows that the configuration no
// longer names, and that still owns users or groups.
type RetiredSource struct {
	Name   string
	Type   string
	Counts Counts
}

// Retired lists the retired sources, by name; dc are the directory's
// counts (store.DirectoryCounts).
func (r *Runner) Retired(ctx context.Context, dc *store.DirectoryCounts) ([]RetiredSource, error) {
	recorded, err := r.Store.Sources(ctx)
	if err != nil {
		return nil, err
	}
	var out []RetiredSource
	for _, s := range recorded {
		if _, configured := r.Config.Source(s.Name); configured {
			continue
		}
		if c := CountsOf(dc, s.Name); c.Live() > 0 {
			out = append(out, RetiredSource{Name: s.Name, Type: s.Type, Counts: c})
		}
	}
	return out, nil
}

// retiredSource returns a source as Retire and the approval of its task
// treat it: recorded in the store and absent from the configuration.
func (r *Runner) retiredSource(ctx context.Context, name string) (*config.Source, error) {
	if _, ok := r.Config.Source(name); ok {
		return nil, fmt.Errorf("%w: source %q is still in %s; remove it from the configuration (and reload roster) before retiring it",
			ErrUsage, name, r.configName())
	}
	st, err := r.Store.GetSource(ctx, name)
	if err != nil {
		return nil, wrapNotFound(err)
	}
	return &config.Source{Name: st.Name, Type: st.Type}, nil
}

// Retire plans the removal of what a retired source still owns: its users
// are deactivated (orphans "deactivate") or deleted ("delete"), as orphans
// of an empty snapshot are, and its groups deleted. The plan is never
// applied at once: it is held for an operator (roster approve, the admin
// API or page), who sees every user it removes.
func (r *Runner) Retire(ctx context.Context, name, orphans string) (*Result, error) {
	switch orphans {
	case "":
		orphans = reconcile.OrphansDeactivate
	case reconcile.OrphansDeactivate, reconcile.OrphansDelete:
	default:
		return nil, fmt.Errorf("%w: --orphans %q: use deactivate or delete", ErrUsage, orphans)
	}
	src, err := r.retiredSource(ctx, name)
	if err != nil {
		return nil, err
	}
	unlock, err := r.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	plan, err := r.retirePlan(ctx, src.Name, orphans)
	if err != nil {
		return nil, err
	}
	if plan.Empty() {
		return nil, fmt.Errorf("%w: source %q owns no users that are not already %s, and no groups: there is nothing to retire",
			ErrUsage, name, map[string]string{reconcile.OrphansDeactivate: "inactive", reconcile.OrphansDelete: "deleted"}[orphans])
	}
	t, err := r.start(ctx, name, TriggerRetire, false, nil)
	if err != nil {
		return nil, err
	}
	return r.holdRetire(ctx, t, plan, orphans)
}

// retirePlan plans what retiring the source with the orphan policy does:
// the plan of a snapshot with no records, never held by the valve (the
// caller holds it for the operator in any case).
func (r *Runner) retirePlan(ctx context.Context, name, orphans string) (*reconcile.Plan, error) {
	snap, err := r.Store.Snapshot(ctx, name)
	if err != nil {
		return nil, err
	}
	plan := reconcile.PlanSnapshot(nil, snap, reconcile.Settings{Orphans: orphans, AllowEmpty: true, Force: true}, newID)
	plan.Source = name
	return plan, nil
}

func (r *Runner) holdRetire(ctx context.Context, t *store.Task, plan *reconcile.Plan, orphans string) (*Result, error) {
	verb := map[string]string{reconcile.OrphansDeactivate: "deactivate", reconcile.OrphansDelete: "delete"}[orphans]
	plan.Hold = fmt.Sprintf("source %s is retired (no longer in the configuration): approving this task will %s %d of its %d users and delete its %d groups",
		t.Source, verb, plan.Removals(), plan.Total, len(plan.GroupDeletes))
	hp := heldPlan{Counts: plan.Counts, Orphans: orphans}
	for _, c := range plan.Changes {
		if valved(c.Action) {
			hp.Removals = append(hp.Removals, c)
		}
	}
	t.Status, t.FinishedAt = store.StatusHeld, nil // stamped by the store
	t.Counts, t.Warnings = mustJSON(plan.Counts), mustJSON([]string{})
	if err := r.Store.HoldTask(ctx, t, &store.HeldPlan{Revision: plan.Revision, Reason: plan.Hold, Plan: mustJSON(hp)}); err != nil {
		return r.finishFailed(ctx, t, plan, transient(err))
	}
	r.log().Warn("retirement planned and held: approve or reject it", "source", t.Source, "task", t.ID, "reason", plan.Hold)
	return &Result{Task: t, Plan: plan}, nil
}

// approveRetire applies a held retirement, planned again now, if the
// source's part of the directory has not changed since it was held.
func (r *Runner) approveRetire(ctx context.Context, t *store.Task, hp *store.HeldPlan, held *heldPlan, src *config.Source) (*Result, error) {
	if _, err := r.retiredSource(ctx, src.Name); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	t.Status, t.StartedAt, t.FinishedAt = store.StatusRunning, &now, nil
	if err := r.Store.SaveTask(ctx, t); err != nil {
		return nil, err
	}
	state, err := r.Store.GetSource(ctx, src.Name)
	if err != nil {
		return r.finishFailed(ctx, t, nil, transient(err))
	}
	if state.Revision != hp.Revision {
		return r.finishFailed(ctx, t, nil, fmt.Errorf("the directory of source %s changed after task %d was held (revision %d, now %d), for example by an adoption: its plan is out of date; run roster sources retire %s again", src.Name, t.ID, hp.Revision, state.Revision, src.Name))
	}
	plan, err := r.retirePlan(ctx, src.Name, held.Orphans)
	if err != nil {
		return r.finishFailed(ctx, t, nil, transient(err))
	}
	if !sameRemovals(hp, plan) {
		return r.finishFailed(ctx, t, plan, fmt.Errorf("the plan of task %d is no longer what was held: nothing was applied; run roster sources retire %s again", t.ID, src.Name))
	}
	r.log().Info("retirement approved", "source", src.Name, "task", t.ID)
	return r.apply(ctx, t, src, plan, state.LastFingerprint)
}
