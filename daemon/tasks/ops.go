package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/csv"
)

// dryRun computes and returns the plan without writing anything: no task,
// no raw record, no lock (a dry run only reads).
func (r *Runner) dryRun(ctx context.Context, src *config.Source) (*Result, error) {
	dry := *r
	dry.readOnly = true
	r = &dry
	if src.Type == config.TypeCSV && r.streams(src) {
		res, whole, err := r.dryRunStream(ctx, src)
		if !whole {
			return res, err
		}
	}
	var in *input
	var err error
	if src.Type == config.TypeHTTP {
		in, err = r.fetch(ctx, src, nil)
	} else if src.Type == config.TypeLDAP {
		in, err = r.fetchLDAP(ctx, src, nil, "", false)
	} else {
		in, err = r.readCSV(ctx, src, src.Path, false)
	}
	if err != nil {
		return dryRunFailure(err)
	}
	// Hashing is skipped: the plan only needs to know that a password is set.
	for i := range in.records {
		if in.records[i].Password != "" {
			in.records[i].Password, in.records[i].PasswordHash = "", "(hash)"
		}
	}
	plan, err := r.plan(ctx, src, in, false)
	if err != nil {
		return nil, err
	}
	return &Result{Plan: plan, Errors: plan.Errors}, nil
}

func dryRunFailure(err error) (*Result, error) {
	res := &Result{}
	if !asValidation(err, &res.Errors) {
		return nil, err
	}
	return res, nil
}

// Retry runs a failed task's stored input again as a new task. A task
// that failed before its input was stored (an unreadable or invalid file)
// reads the source afresh.
func (r *Runner) Retry(ctx context.Context, id int64, trigger string) (*Result, error) {
	old, err := r.Store.GetTask(ctx, id)
	if err != nil {
		return nil, wrapNotFound(err)
	}
	if old.Status != store.StatusFailed && old.Status != store.StatusRunning {
		return nil, fmt.Errorf("%w: task %d is %s; only failed tasks can be retried", ErrState, id, old.Status)
	}
	if trigger == "" {
		trigger = TriggerRetry
	}
	if _, err := r.pushSource(old.Source); err == nil {
		return r.retryPush(ctx, old, trigger)
	}
	src, err := r.source(old.Source)
	if err != nil {
		return nil, err
	}
	unlock, err := r.lock(ctx, src.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if old, err = r.Store.GetTask(ctx, id); err != nil {
		return nil, err
	}
	if old.Status == store.StatusRunning {
		// With the source's lock held here, nobody runs it: its process
		// died, or lost the database before it could record the failure.
		if _, err := r.finishFailed(ctx, old, nil, transient(errInterrupted)); err != nil {
			return nil, err
		}
	}
	if old.Status != store.StatusFailed {
		return nil, fmt.Errorf("%w: task %d is %s; only failed tasks can be retried", ErrState, id, old.Status)
	}

	retryOf := old.ID
	t, err := r.start(ctx, src.Name, trigger, old.Force, &retryOf)
	if err != nil {
		return nil, err
	}
	t.Attempt = old.Attempt + 1
	// A raw record is run again only when it was read whole and valid (the
	// task has its fingerprint); an invalid input's raw record explains
	// its failure, and the retry reads the source afresh.
	stored := old.RawRecord != "" && old.Fingerprint != ""
	var in *input
	switch {
	case stored:
		in, err = r.readRaw(ctx, src, r.rawPath(old))
	case src.Type == config.TypeHTTP:
		in, err = r.fetchKept(ctx, t, src)
	case src.Type == config.TypeLDAP:
		in, err = r.fetchLDAP(ctx, src, t, "", false)
	default:
		in, err = r.readCSV(ctx, src, src.Path, false)
	}
	if err != nil {
		return r.finishFailed(ctx, t, nil, err)
	}
	if stored {
		// The stored input is what the failed task read from the file.
		in.fingerprint = old.Fingerprint
	}
	return r.process(ctx, t, src, in, old.Force)
}

// Approve applies a held task's plan, recomputed from its raw record, if
// the source's part of the directory has not changed since the plan was
// made; otherwise the task fails and says to sync again.
func (r *Runner) Approve(ctx context.Context, id int64) (*Result, error) {
	t, hp, src, unlock, err := r.held(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if t.Trigger == TriggerRetire {
		var held heldPlan
		if err := json.Unmarshal([]byte(hp.Plan), &held); err != nil {
			return nil, fmt.Errorf("read the held plan of task %d: %w", id, err)
		}
		return r.approveRetire(ctx, t, hp, &held, src)
	}
	now := time.Now().UTC()
	t.Status, t.StartedAt, t.FinishedAt = store.StatusRunning, &now, nil
	if err := r.Store.SaveTask(ctx, t); err != nil {
		return nil, err
	}
	in, err := r.readRaw(ctx, src, r.rawPath(t))
	if err != nil {
		return r.finishFailed(ctx, t, nil, err)
	}
	in.fingerprint = t.Fingerprint
	state, err := r.Store.GetSource(ctx, src.Name)
	if err != nil {
		return r.finishFailed(ctx, t, nil, transient(err))
	}
	if state.Revision != hp.Revision {
		return r.finishFailed(ctx, t, nil, fmt.Errorf("the directory of source %s changed after task %d was held (revision %d, now %d): its plan is out of date; run the sync again", src.Name, t.ID, hp.Revision, state.Revision))
	}
	plan, err := r.plan(ctx, src, in, true)
	if err != nil {
		return r.finishFailed(ctx, t, nil, transient(err))
	}
	if !sameRemovals(hp, plan) {
		return r.finishFailed(ctx, t, plan, fmt.Errorf("the plan of task %d is no longer what was held (the source's settings or directory changed): nothing was applied; run the sync again", t.ID))
	}
	r.log().Info("held task approved", "source", src.Name, "task", t.ID)
	return r.apply(ctx, t, src, plan, in.fingerprint)
}

// Reject discards a held task's plan; nothing is written.
func (r *Runner) Reject(ctx context.Context, id int64) (*store.Task, error) {
	t, _, _, unlock, err := r.held(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	t.Status, t.FinishedAt = store.StatusRejected, nil // stamped by the store
	if err := r.Store.SaveTask(ctx, t); err != nil {
		return nil, err
	}
	r.log().Info("held task rejected", "source", t.Source, "task", t.ID)
	return t, nil
}

// superseded is the refusal to approve or reject a superseded task,
// naming the newer task that made its plan out of date.
func (r *Runner) superseded(ctx context.Context, t *store.Task) error {
	newer, err := r.Store.SupersededBy(ctx, t)
	if err != nil || newer == nil {
		return fmt.Errorf("%w: task %d is superseded: a newer task of source %s read newer input, so its plan is out of date; sync again to see the current plan", ErrState, t.ID, t.Source)
	}
	return fmt.Errorf("%w: task %d is superseded by task %d (%s), a newer task of source %s that read newer input, so its plan is out of date; sync again to see the current plan", ErrState, t.ID, newer.ID, newer.Status, t.Source)
}

// held loads a held task under its source's lock.
func (r *Runner) held(ctx context.Context, id int64) (*store.Task, *store.HeldPlan, *config.Source, store.Unlock, error) {
	t, err := r.Store.GetTask(ctx, id)
	if err != nil {
		return nil, nil, nil, nil, wrapNotFound(err)
	}
	if t.Status == store.StatusSuperseded {
		return nil, nil, nil, nil, r.superseded(ctx, t)
	}
	if t.Status != store.StatusHeld {
		return nil, nil, nil, nil, fmt.Errorf("%w: task %d is %s; only held tasks can be approved or rejected", ErrState, id, t.Status)
	}
	var src *config.Source
	if t.Trigger == TriggerRetire {
		// Approve checks that it is still retired; a rejection needs not.
		var st *store.Source
		if st, err = r.Store.GetSource(ctx, t.Source); err == nil {
			src = &config.Source{Name: st.Name, Type: st.Type}
		}
	} else {
		src, err = r.source(t.Source)
	}
	if err != nil {
		return nil, nil, nil, nil, err
	}
	unlock, err := r.lock(ctx, t.Source)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	// Another process may have decided while this one waited.
	if t, err = r.Store.GetTask(ctx, id); err != nil || t.Status != store.StatusHeld {
		unlock()
		switch {
		case err != nil:
		case t.Status == store.StatusSuperseded:
			err = r.superseded(ctx, t)
		default:
			err = fmt.Errorf("%w: task %d is %s now", ErrState, id, t.Status)
		}
		return nil, nil, nil, nil, err
	}
	hp, err := r.Store.GetHeldPlan(ctx, id)
	if err != nil {
		unlock()
		return nil, nil, nil, nil, err
	}
	return t, hp, src, unlock, nil
}

func wrapNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return err
}

// interrupted fails a task that its process left running (the caller
// holds the source's lock, so nobody runs it); a push is queued again in
// its place.
func (r *Runner) interrupted(ctx context.Context, t *store.Task) error {
	if _, err := r.finishFailed(ctx, t, nil, transient(errInterrupted)); err != nil {
		return err
	}
	if _, err := r.pushSource(t.Source); err != nil {
		return nil
	}
	return r.requeuePush(ctx, t)
}

var errInterrupted = errors.New("interrupted: the roster process running this task stopped before it finished (crash, kill or lost database connection); nothing of it was applied")

// Recover fails the tasks that a process left running when it died. A task
// whose source lock is held belongs to a live process and is left alone.
func (r *Runner) Recover(ctx context.Context) ([]int64, error) {
	running, err := r.Store.TasksWithStatus(ctx, store.StatusRunning)
	if err != nil {
		return nil, err
	}
	var failed []int64
	for i := range running {
		t := &running[i]
		unlock, err := r.Store.TryLockSource(ctx, t.Source)
		if errors.Is(err, store.ErrLocked) {
			continue
		}
		if err != nil {
			return failed, err
		}
		// Re-read under the lock: the task may have finished meanwhile.
		cur, err := r.Store.GetTask(ctx, t.ID)
		if err == nil && cur.Status == store.StatusRunning {
			err = r.interrupted(ctx, cur)
			failed = append(failed, t.ID)
		}
		unlock()
		if err != nil {
			return failed, err
		}
	}
	return failed, nil
}

// expireEvery is how often old tasks, tombstones and raw records are
// removed; lastExpire holds when that last happened, per store.
const expireEvery = time.Minute

var lastExpire sync.Map // *store.Store -> time.Time

// replaceFile validates an uploaded CSV file and, only when it is valid,
// moves it over the source's file atomically. An invalid file returns a
// *sources.ValidationError and leaves the source's file as it was.
func (r *Runner) replaceFile(ctx context.Context, src *config.Source, upload string) error {
	in, err := os.Open(upload)
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", ErrUsage, upload, err)
	}
	defer in.Close()
	return r.ReplaceFile(ctx, src.Name, in)
}

// ReplaceFile validates content as a new file for a CSV source and, only
// when it is valid, replaces the source's file with it (same folder,
// rename). The caller holds the source's lock or accepts that a running
// sync reads the old file.
func (r *Runner) ReplaceFile(ctx context.Context, name string, content io.Reader) error {
	src, err := r.source(name)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(src.Path), "."+filepath.Base(src.Path)+".*.upload")
	if err != nil {
		return fmt.Errorf("store the new file of source %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, content); err != nil {
		return fmt.Errorf("store the new file of source %s: %w", name, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	res, err := csv.Read(ctx, tmp, csv.Options{PasswordMinLength: src.PasswordMinLength, Extra: src.ExtraColumns, Check: r.Config.Attributes.Model().Check})
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if fi, err := os.Stat(src.Path); err == nil {
		tmp.Chmod(fi.Mode().Perm()) //nolint:errcheck // keep the old file's mode when we can
	}
	if err := os.Rename(tmp.Name(), src.Path); err != nil {
		return fmt.Errorf("replace %s: %w", src.Path, err)
	}
	r.log().Info("source file replaced by an upload", "source", name, "records", len(res.Records))
	return nil
}

// expire removes what the configuration says to forget: tombstones, old
// tasks and their raw records. Failures are logged; they never fail a task.
func (r *Runner) expire(ctx context.Context) {
	now := time.Now().UTC()
	// At most once a minute per store: pushes end many tasks a second, and
	// a look at every raw record file each time would grow with the log.
	if last, ok := lastExpire.Load(r.Store); ok && now.Sub(last.(time.Time)) < expireEvery {
		return
	}
	lastExpire.Store(r.Store, now)
	raw, err := r.Store.Expire(ctx, now.Add(-time.Duration(r.Config.Store.PurgeDeletedAfter)), now.Add(-time.Duration(r.Config.Tasks.Keep)))
	if err != nil {
		r.log().Warn("expire old tasks and tombstones", "err", err)
		return
	}
	for _, p := range raw {
		if !filepath.IsAbs(p) {
			p = filepath.Join(r.Config.Dir, p)
		}
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			r.log().Warn("remove an expired raw record", "path", p, "err", err)
		}
	}
	keep := time.Duration(r.Config.Log.KeepRaw)
	files, _ := filepath.Glob(filepath.Join(r.Config.Log.Dir, "user-data-sync", "*", "*"))
	for _, p := range files {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > keep {
			if err := os.Remove(p); err != nil {
				r.log().Warn("remove an expired raw record", "path", p, "err", err)
			}
		}
	}
}

func asValidation(err error, out *[]sources.FieldError) bool {
	var v *sources.ValidationError
	if errors.As(err, &v) {
		*out = v.Errors
		return true
	}
	return false
}

// sameRemovals reports whether plan removes (and adopts) exactly the
// users, in the same way, that the held plan showed the operator.
func sameRemovals(hp *store.HeldPlan, plan *reconcile.Plan) bool {
	var held heldPlan
	if err := json.Unmarshal([]byte(hp.Plan), &held); err != nil {
		return false
	}
	want := map[string]reconcile.Action{}
	for _, c := range held.Removals {
		want[c.After.ID] = c.Action
	}
	n := 0
	for _, c := range plan.Changes {
		if valved(c.Action) {
			if want[c.After.ID] != c.Action {
				return false
			}
			n++
		}
	}
	return n == len(want)
}
