package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/push"
)

// Pushes (SPEC §3.3, §4.3). A push is accepted in two steps: AcceptPush
// stores the payload and its raw record and records a queued task (the
// point of the 202 answer); DrainPush, under the source's lock, applies
// the source's queued pushes one task each, in the order they were
// accepted. A push that fails for a transient reason is queued again at
// once with its place in that order, and the drain stops, so that a later
// push never overtakes an earlier one that is still to be applied.

// pushSource returns an enabled push source.
func (r *Runner) pushSource(name string) (*config.Source, error) {
	src, ok := r.Config.Source(name)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: no source %q in %s", ErrUsage, name, r.configName())
	case src.Type != config.TypePush:
		return nil, fmt.Errorf("%w: source %q is a %s source; only push sources take pushes", ErrUsage, name, src.Type)
	case !src.Enabled:
		return nil, fmt.Errorf("%w: source %q is disabled (enabled: false) and refuses pushes", ErrUsage, name)
	}
	return src, nil
}

// AcceptPush stores a validated payload durably and returns its queued
// task. When it returns without an error, the push will be applied even if
// the process dies at once: by this process's DrainPush, by another
// replica's, or after the next start.
func (r *Runner) AcceptPush(ctx context.Context, name string, p *push.Payload) (*store.Task, error) {
	if _, err := r.pushSource(name); err != nil {
		return nil, err
	}
	records := len(p.Users) + len(p.Departments)
	body, err := push.Encode(p)
	if err != nil {
		return nil, fmt.Errorf("encode the push: %w", err)
	}
	// The raw record is the body as it arrived (SPEC §5); a payload built
	// in code has none, and keeps its encoding.
	raw := p.Raw
	if raw == nil {
		raw = body
	}
	t := &store.Task{Source: name, Trigger: TriggerPush, Status: store.StatusQueued}
	keep := func(t *store.Task) error {
		if err := r.keepRaw(t, "json", func(w io.Writer) error { _, err := w.Write(raw); return err }); err != nil {
			return fmt.Errorf("%w; the push was not accepted", err)
		}
		return nil
	}
	// The bound is checked and the records reserved in the transaction
	// that stores them: checked before, concurrent pushes would all fit.
	limit := r.Config.Limits.PushQueue
	if err := r.Store.CreatePushTask(ctx, t, body, records, 0, limit, keep); err != nil {
		if t.RawRecord != "" {
			os.Remove(r.rawPath(t)) // the push was not stored after all
		}
		var full *store.QueueFullError
		if errors.As(err, &full) {
			return nil, &BusyError{Source: name, Waiting: full.Waiting, Limit: limit}
		}
		return nil, err
	}
	return t, nil
}

// BusyError refuses a push while the source has more records waiting
// than limits.push_queue allows; the client sends it again later.
type BusyError struct {
	Source         string
	Waiting, Limit int
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("source %s has %d pushed records waiting to be applied, and limits.push_queue is %d: send the push again in a few seconds", e.Source, e.Waiting, e.Limit)
}

// relative makes path relative to the config folder when inside it.
func (r *Runner) relative(path string) string {
	if rel, err := filepath.Rel(r.Config.Dir, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// DrainPush applies the source's queued pushes in order and returns the
// last task it ran (nil Result when there was none). It stops early when
// ctx ends or a push failed for a transient reason (its retry is queued).
func (r *Runner) DrainPush(ctx context.Context, name string) (*Result, error) {
	src, err := r.pushSource(name)
	if err != nil {
		return nil, err
	}
	unlock, err := r.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := r.recoverRunning(ctx, name); err != nil {
		return nil, err
	}
	var last *Result
	for ctx.Err() == nil {
		t, err := r.Store.NextPushTask(ctx, name)
		if err != nil {
			return last, err
		}
		if t == nil {
			return last, nil
		}
		res := r.runPush(ctx, src, t)
		last = res
		if r.Finished != nil {
			r.Finished(*res.Task)
		}
		if res.Task.Status == store.StatusFailed && res.Task.Transient {
			if err := r.requeuePush(ctx, res.Task); err != nil {
				return last, err
			}
			return last, nil
		}
	}
	return last, nil
}

// recoverRunning fails the source's tasks left running by a process that
// died or lost the database (the caller holds the source's lock, so nobody
// runs them); a push is queued again.
func (r *Runner) recoverRunning(ctx context.Context, name string) error {
	running, _, err := r.Store.ListTasks(ctx, store.TaskFilter{Source: name, Status: store.StatusRunning, Limit: 1000})
	if err != nil {
		return err
	}
	for i := range running {
		if err := r.interrupted(ctx, &running[i]); err != nil {
			return err
		}
	}
	return nil
}

// requeuePush queues a transiently failed push again, in its place, until
// its retries are used up.
func (r *Runner) requeuePush(ctx context.Context, t *store.Task) error {
	if t.Attempt >= r.Config.Tasks.MaxRetries {
		r.log().Error("push failed for a transient reason and its automatic retries are used up; retry it by hand when the cause is fixed",
			"source", t.Source, "task", t.ID, "retries", t.Attempt)
		return nil
	}
	nt, err := r.queueAgain(ctx, t, TriggerRetry, true)
	if err != nil {
		return err
	}
	r.log().Warn("push failed for a transient reason: queued again", "source", t.Source, "task", t.ID, "retry", nt.ID, "attempt", nt.Attempt)
	return nil
}

// queueAgain queues a stored push again as a new task that retries old:
// in old's place in the source's order (keepPlace, an automatic retry) or
// after the pushes waiting now.
func (r *Runner) queueAgain(ctx context.Context, old *store.Task, trigger string, keepPlace bool) (*store.Task, error) {
	stored, err := r.Store.PushPayload(ctx, old.ID)
	if err != nil {
		return nil, err
	}
	seq := int64(0)
	if keepPlace {
		seq = stored.Seq
	}
	retryOf := old.ID
	t := &store.Task{Source: old.Source, Trigger: trigger, Status: store.StatusQueued, RetryOf: &retryOf,
		Attempt: old.Attempt + 1, RawRecord: old.RawRecord}
	// A push queued again was admitted once: limits.push_queue does not
	// refuse it.
	if err := r.Store.CreatePushTask(ctx, t, stored.Body, stored.Records, seq, 0, nil); err != nil {
		return nil, err
	}
	return t, nil
}

// retryPush is Retry for a failed push: its payload is queued again as a
// new push (after those waiting, as an operator's new push would be) and
// the source's queue is applied.
func (r *Runner) retryPush(ctx context.Context, old *store.Task, trigger string) (*Result, error) {
	if old.Status != store.StatusFailed {
		return nil, fmt.Errorf("%w: task %d is %s; only failed tasks can be retried", ErrState, old.ID, old.Status)
	}
	t, err := r.queueAgain(ctx, old, trigger, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: task %d has no stored payload to run again", ErrState, old.ID)
	}
	if err != nil {
		return nil, err
	}
	if _, err := r.DrainPush(ctx, old.Source); err != nil {
		return nil, err
	}
	done, err := r.Store.GetTask(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	return &Result{Task: done}, nil
}

// runPush applies one queued push.
func (r *Runner) runPush(ctx context.Context, src *config.Source, t *store.Task) *Result {
	now := time.Now().UTC()
	t.Status, t.StartedAt = store.StatusRunning, &now
	if err := r.Store.SaveTask(ctx, t); err != nil {
		res, _ := r.finishFailed(ctx, t, nil, transient(err))
		return res
	}
	r.log().Info("task started", "source", t.Source, "task", t.ID, "trigger", t.Trigger)
	res, _ := r.applyPush(ctx, src, t)
	return res
}

// pushPart is how many records of a payload are decoded, planned and
// written at a time: what the apply holds at once is pushPart records,
// their plan and the users they name, whatever the size of the push. A
// variable for the tests that measure memory with small parts.
var pushPart = 5000

var (
	// errPushRefused rolls back the parts of a push written before a
	// record turned out to be in error.
	errPushRefused = errors.New("the push has errors")
	// errFieldsRefused rolls back a push whose custom fields the source's
	// fields no longer accept.
	errFieldsRefused = errors.New("the push's custom fields are refused")
)

// applyPush decodes, plans and applies a stored push a part at a time, in
// one transaction (SPEC §4.1): all of it or, when a record is in error or
// the database fails, nothing. The body is held once (it is stored as it
// came); each part's records are decoded from it, planned against the
// users they name as the parts before left them, written and dropped.
//
// Once a record is in error nothing will be kept, but every record is
// still planned, so that the task lists every error, as a plan computed
// whole does: a user payload's later parts are then still written (the
// transaction is rolled back at the end), because the directory is what
// tells them what the parts before did; a department payload's are not
// (its departments are held in memory). Progress counts only the parts
// written while no record was in error.
func (r *Runner) applyPush(ctx context.Context, src *config.Source, t *store.Task) (*Result, error) {
	stored, err := r.Store.PushPayload(ctx, t.ID)
	if err != nil {
		return r.finishFailed(ctx, t, nil, transient(err))
	}
	snap, err := r.Store.PushDepartments(ctx, src.Name)
	if err != nil {
		return r.finishFailed(ctx, t, nil, transient(err))
	}
	model := r.Config.Attributes.Model()
	set := reconcile.DeltaSettings{OnDelete: src.OnDelete,
		SkipConflicts: src.OnConflict == config.OnConflictSkip, Adopt: src.OnConflict == config.OnConflictAdopt,
		Attributes: model}
	pp := reconcile.NewPushParts(snap, set, newID)
	snap = nil
	summary := pp.Summary()
	summary.Source = src.Name
	unmapped := map[string]bool{}
	deptFields := map[string]bool{} // custom fields of departments
	var fieldErrs []push.RecordError
	var unreadable error
	began := time.Now()
	done := *t
	// The store stamps finished_at in the apply's transaction, after the
	// last part is written (store.Task.BeforeSave).
	done.Status, done.FinishedAt = store.StatusSucceeded, nil
	applied := 0
	err = r.Store.ApplyAt(ctx, src.Name, summary.Revision, &done, func(tx *store.StreamTx) error {
		err := push.DecodeParts(stored.Body, pushPart, func(p *push.Payload) error {
			var part *reconcile.Plan
			if p.DataType == push.DataDepartment {
				for i := range p.Departments {
					for _, f := range p.Departments[i].Custom {
						deptFields[f.Name] = true
					}
				}
				if len(summary.Errors) > 0 {
					pp.Departments(p, nil) // for its errors: nothing of it is written
					return nil
				}
				uids := make([]string, len(p.Departments))
				for i := range p.Departments {
					uids[i] = p.Departments[i].UID
				}
				pending, err := tx.PendingIn(uids)
				if err != nil {
					return err
				}
				part = pp.Departments(p, pending)
			} else {
				names, errs := push.MapFields(p, src.Fields, model.Check)
				for _, n := range names {
					unmapped[n] = true
				}
				// The fields changed since the push was accepted: the rest
				// is read for the errors of its fields only.
				if fieldErrs = append(fieldErrs, errs...); len(fieldErrs) > 0 {
					return nil
				}
				users, err := tx.PushUsers(pushKeys(p))
				if err != nil {
					return err
				}
				part = pp.Users(p, users)
			}
			part.Source = src.Name
			if err := tx.Apply(part); err != nil {
				return err
			}
			if len(summary.Errors) == 0 {
				applied += len(part.Changes) + len(part.GroupCreates) + len(part.GroupRenames) + len(part.GroupDeletes)
				if r.Progress != nil {
					r.Progress(src.Name, "apply", applied)
				}
			}
			return nil
		})
		var invalid *push.Error
		if errors.As(err, &invalid) {
			unreadable = fmt.Errorf("the stored push is not readable: %w", err)
			return unreadable
		}
		if err != nil {
			return err
		}
		if len(fieldErrs) > 0 {
			return errFieldsRefused
		}
		pp.Finish()
		warnUnmapped(summary, unmapped, deptFields)
		if len(summary.Errors) > 0 {
			return errPushRefused
		}
		done.Counts, done.Warnings = mustJSON(summary.Counts), mustJSON(nonNil(summary.Warnings))
		return nil
	})
	r.log().Debug("plan applied", "source", src.Name, "task", t.ID, "changes", applied, "parts", true, "took", time.Since(began))
	switch {
	case unreadable != nil:
		return r.finishFailed(ctx, t, nil, unreadable)
	case errors.Is(err, errFieldsRefused):
		return r.finishFailed(ctx, t, nil, &push.Error{Errors: fieldErrs})
	case errors.Is(err, errPushRefused):
		return r.finishFailed(ctx, t, summary, &sources.ValidationError{Errors: summary.Errors})
	case errors.Is(err, store.ErrConflict):
		return r.finishFailed(ctx, t, summary, transient(fmt.Errorf("%w; the task can be retried", err)))
	case err != nil:
		if store.IsTransient(err) {
			err = transient(err)
		}
		return r.finishFailed(ctx, t, summary, err)
	}
	*t = done
	r.log().Info("task succeeded", "source", t.Source, "task", t.ID, "counts", t.Counts)
	r.expire(ctx)
	return &Result{Task: t, Plan: summary}, nil
}

// warnUnmapped warns, once the push is planned, of the custom fields of
// users that no entry of the source's fields maps, and of the custom
// fields of departments, which groups have no attributes for.
func warnUnmapped(plan *reconcile.Plan, unmapped, deptFields map[string]bool) {
	if len(unmapped) > 0 {
		names := slices.Sorted(maps.Keys(unmapped))
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("custom fields that no entry of the source's fields maps were not stored "+
			"(they are in the raw record): %s", strings.Join(names, ", ")))
	}
	if len(deptFields) > 0 {
		names := slices.Sorted(maps.Keys(deptFields))
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("custom fields of departments were not stored: groups have no attributes "+
			"to hold them (they are in the raw record): %s", strings.Join(names, ", ")))
	}
}

func pushKeys(p *push.Payload) store.PushKeys {
	k := store.PushKeys{MatchKey: p.MatchKey}
	for i := range p.Users {
		u := &p.Users[i]
		k.UIDs = append(k.UIDs, u.UID)
		if u.UserName != nil {
			k.Logins = append(k.Logins, reconcile.Key(*u.UserName))
		}
		if u.Email != nil && *u.Email != "" {
			k.Emails = append(k.Emails, strings.ToLower(*u.Email))
		}
		if u.Phone != nil && *u.Phone != "" {
			k.Phones = append(k.Phones, *u.Phone)
		}
	}
	return k
}
