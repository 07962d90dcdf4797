// Package tasks runs syncs as tasks (SPEC §5): one task per source at a
// time, the raw input kept on disk before it is processed, the plan applied
// in one transaction, held by the safety valve, retried, approved or
// rejected. The CLI and the daemon both drive it; it needs no HTTP.
package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/daemon/password"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/csv"
	"github.com/rosterd/roster/sources/ldap"
)

// Triggers (SPEC §5).
const (
	TriggerSchedule = "schedule"
	TriggerWatch    = "watch"
	TriggerManual   = "manual"
	TriggerPush     = "push"
	TriggerRetry    = "retry"
)

// ErrUsage marks requests that cannot run at all (unknown source, wrong
// type, task in the wrong status, arguments that do not go together).
// ErrState narrows it down: the CLI answers it with an exit code of its
// own, the rest of ErrUsage with 2 (a usage error).
var ErrUsage = errors.New("usage")

// ErrState marks a request that the state of what it names refuses: a
// task that is not held (approve, reject) or not failed (retry), a source
// that is disabled, of a type that cannot do it, or no longer configured
// (a task of a removed source). It is an ErrUsage too, with the same
// message, so that callers that know only ErrUsage answer it as before.
var ErrState error = stateError{}

type stateError struct{}

func (stateError) Error() string        { return ErrUsage.Error() }
func (stateError) Is(target error) bool { return target == ErrUsage }

// Runner runs tasks against one store with one configuration.
type Runner struct {
	Store  *store.Store
	Config *config.Config
	Log    *slog.Logger
	// Progress, when set, hears how far a long task is: phase is "read",
	// "hash" or "apply", n the records done so far.
	Progress func(source, phase string, n int)
	// Finished, when set, hears about every push task DrainPush ends.
	Finished func(store.Task)
	// readOnly is set for a dry run, which plans against a store that may
	// not know the source yet.
	readOnly bool
}

// Options choose how a sync runs.
type Options struct {
	Trigger string
	DryRun  bool
	Force   bool
	// File, when set, is a new CSV file for the source: it is validated
	// and, only when valid, replaces the source's file before the sync.
	File string
	// Started, when set, is called once with a copy of the task as soon
	// as it is recorded (running, or already skipped or failed), long
	// before a large task ends; the daemon answers an operator's request
	// with it. It is not called when no task could be recorded.
	Started func(store.Task)
	// OncePer makes a scheduled sync run once per tick across replicas:
	// when a task with the same trigger was recorded for the source within
	// this window, by this or any other process, Sync records nothing and
	// returns ErrAlreadyRan. It is checked under the source's lock.
	OncePer time.Duration
}

// ErrAlreadyRan is returned by Sync when another replica (or this
// process) already ran the sync of this tick (see Options.OncePer).
var ErrAlreadyRan = errors.New("this tick's sync already ran")

// started reports a newly recorded task to o.Started.
func (o Options) started(t *store.Task) {
	if o.Started != nil {
		o.Started(*t)
	}
}

// Result is the outcome of a task. Task is nil for a dry run; Plan is nil
// when the input never got as far as a plan.
type Result struct {
	Task *store.Task
	Plan *reconcile.Plan
	// Errors are the validation errors of a dry run (a real task keeps
	// them in Task.Errors).
	Errors []sources.FieldError
	// spool holds a streamed dry run's changes, which Plan then lacks
	// (see EachChange).
	spool *changeSpool
}

// input is a task's validated records and where they came from.
type input struct {
	records     []sources.Record
	warnings    []string
	fingerprint string
	// origin is the file the records were read from, sha its digest as
	// read: the raw record is copied from it (SPEC §5).
	origin, sha string
	// redact are the parts of an invalid csv input that may hold a
	// password, which its raw record leaves out.
	redact []sources.Span
	// rawKept says the raw record was written while the input was read
	// (the pages of an http source, an ldap source's LDIF); raw, when
	// set, writes it from another task's (a retry's or an approval's copy
	// of it).
	rawKept bool
	raw     func(io.Writer) error
	// groups are what an ldap source says of its groups; nil for others.
	groups *reconcile.Groups
	// watermark is where an ldap source's next changed-only read begins.
	watermark string
	// index is what an ldap read of every user keeps instead of records
	// (ldap.Options.Index): records is nil then.
	index *ldap.Index
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

func (r *Runner) source(name string) (*config.Source, error) {
	src, ok := r.Config.Source(name)
	if !ok {
		return nil, fmt.Errorf("%w: no source %q in %s", ErrState, name, r.configName())
	}
	if !src.Enabled {
		return nil, fmt.Errorf("%w: source %q is disabled (enabled: false)", ErrState, name)
	}
	switch src.Type {
	case config.TypeCSV, config.TypeHTTP, config.TypeLDAP:
		return src, nil
	case config.TypePush, config.TypeSCIM:
		return nil, fmt.Errorf("%w: source %q is a %s source: it receives changes over HTTP and has nothing to sync", ErrState, name, src.Type)
	default:
		return nil, fmt.Errorf("%w: source %q: syncing %s sources is not supported by this version of roster", ErrState, name, src.Type)
	}
}

func (r *Runner) configName() string {
	if r.Config.Path == "" {
		return "the default configuration"
	}
	return r.Config.Path
}

// Sync runs one task of a source. Validation problems, conflicts and
// database failures make a failed task (its Result is returned with a nil
// error); an error means no task could be run at all.
func (r *Runner) Sync(ctx context.Context, name string, opt Options) (*Result, error) {
	src, err := r.source(name)
	if err != nil {
		return nil, err
	}
	if opt.Trigger == "" {
		opt.Trigger = TriggerManual
	}
	if opt.DryRun {
		if opt.File != "" {
			return nil, fmt.Errorf("%w: --dry-run and --file do not go together: check the file with roster check --csv", ErrUsage)
		}
		return r.dryRun(ctx, src)
	}
	unlock, err := r.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// A task of the source left running (its process died, or lost the
	// database before it could record its end) ends here at the latest.
	if err := r.recoverRunning(ctx, name); err != nil {
		return nil, err
	}

	if opt.OncePer > 0 {
		last, err := r.Store.LastTaskWithTrigger(ctx, name, opt.Trigger)
		if err != nil {
			return nil, err
		}
		if last != nil && time.Since(last.CreatedAt) < opt.OncePer {
			return nil, fmt.Errorf("%w: task %d of source %s", ErrAlreadyRan, last.ID, name)
		}
	}
	if src.Type == config.TypeHTTP {
		if opt.File != "" {
			return nil, fmt.Errorf("%w: source %q is an http source; only csv sources take a file", ErrUsage, name)
		}
		return r.syncHTTP(ctx, src, opt)
	}
	if src.Type == config.TypeLDAP {
		if opt.File != "" {
			return nil, fmt.Errorf("%w: source %q is an ldap source; only csv sources take a file", ErrUsage, name)
		}
		return r.syncLDAP(ctx, src, opt)
	}
	if opt.File != "" {
		if err := r.replaceFile(ctx, src, opt.File); err != nil {
			return nil, err
		}
	}
	fp, err := fileFingerprint(src)
	if err != nil {
		return r.failNew(ctx, name, opt, nil, err)
	}
	if !opt.Force {
		state, err := r.Store.GetSource(ctx, name)
		if err != nil {
			return nil, err
		}
		if state.LastFingerprint == fp {
			// The store stamps finished_at when it records the task.
			now := time.Now().UTC()
			t := &store.Task{Source: name, Trigger: opt.Trigger, Status: store.StatusSkipped, CreatedAt: now, StartedAt: &now,
				Fingerprint: fp,
				Warnings:    mustJSON([]string{"the file is unchanged since the last successful sync"})}
			if err := r.Store.CreateTask(ctx, t); err != nil {
				return nil, err
			}
			opt.started(t)
			r.log().Info("sync skipped: input unchanged", "source", name, "task", t.ID)
			return &Result{Task: t}, nil
		}
	}
	t, err := r.start(ctx, name, opt.Trigger, opt.Force, nil)
	if err != nil {
		return nil, err
	}
	opt.started(t)
	afterFingerprint()
	if r.streams(src) {
		return r.syncStream(ctx, t, src, fp, opt.Force)
	}
	began := time.Now()
	in, verr := r.readCSV(ctx, src, src.Path, false)
	r.log().Debug("input read", "source", name, "task", t.ID, "took", time.Since(began))
	if verr != nil {
		// A file rewritten in place while it was read gives errors on
		// lines that are valid in every version: say what happened, and
		// let the sync run again, instead of blaming those lines.
		if now, err := fileFingerprint(src); err == nil && now != fp {
			return r.finishFailed(ctx, t, nil, errFileChanged)
		}
		// An invalid file keeps its raw record, so that the cause can be
		// read after the file is fixed (SPEC §5).
		if in != nil {
			if err := r.writeRaw(t, src, in); err != nil {
				r.log().Warn("the raw record of an invalid input could not be kept", "source", name, "task", t.ID, "err", err)
			}
		}
		return r.finishFailed(ctx, t, nil, verr)
	}
	if !readWhole(src, in.fingerprint, fp) {
		return r.finishFailed(ctx, t, nil, errFileChanged)
	}
	return r.process(ctx, t, src, in, opt.Force)
}

// readWhole reports whether the file read (fingerprint read) is one whole
// version of src's file: the one it held when the sync began (want), or a
// file that replaced it after that first check and is still in place (an
// exporter that writes a new file and renames it over the old one). A
// file rewritten while it was read is neither.
func readWhole(src *config.Source, read, want string) bool {
	if read == want {
		return true
	}
	now, err := fileFingerprint(src)
	return err == nil && now == read
}

// afterFingerprint runs between a csv sync's first check of its file and
// the read; tests replace the file there.
var afterFingerprint = func() {}

var errFileChanged = transient(errors.New("the file changed while it was being read; it will be read again by the next sync"))

// lock waits for the source's lock, telling the operator why it waits.
func (r *Runner) lock(ctx context.Context, name string) (store.Unlock, error) {
	unlock, err := r.Store.TryLockSource(ctx, name)
	if errors.Is(err, store.ErrLocked) {
		r.log().Info("waiting: another task of the source is running", "source", name)
		unlock, err = r.Store.LockSource(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("lock source %s: %w", name, err)
	}
	return unlock, nil
}

func (r *Runner) start(ctx context.Context, name, trigger string, force bool, retryOf *int64) (*store.Task, error) {
	now := time.Now().UTC()
	t := &store.Task{Source: name, Trigger: trigger, Status: store.StatusRunning, Force: force,
		CreatedAt: now, StartedAt: &now, RetryOf: retryOf}
	if err := r.Store.CreateTask(ctx, t); err != nil {
		return nil, err
	}
	r.log().Info("task started", "source", name, "task", t.ID, "trigger", trigger)
	return t, nil
}

// failNew records a task that failed before it could start properly.
func (r *Runner) failNew(ctx context.Context, name string, opt Options, retryOf *int64, cause error) (*Result, error) {
	t, err := r.start(ctx, name, opt.Trigger, opt.Force, retryOf)
	if err != nil {
		return nil, errors.Join(cause, err)
	}
	opt.started(t)
	return r.finishFailed(ctx, t, nil, cause)
}

// process takes a task from validated input to its end: raw record, plan,
// hold or apply.
func (r *Runner) process(ctx context.Context, t *store.Task, src *config.Source, in *input, force bool) (*Result, error) {
	t.Fingerprint = in.fingerprint
	if err := r.hashPasswords(ctx, src.Name, in.records); err != nil {
		return r.finishFailed(ctx, t, nil, err)
	}
	if err := r.writeRaw(t, src, in); err != nil {
		return r.finishFailed(ctx, t, nil, err)
	}
	if err := r.Store.SaveTask(ctx, t); err != nil {
		return r.finishFailed(ctx, t, nil, transient(err))
	}
	began := time.Now()
	plan, err := r.plan(ctx, src, in, force)
	if err != nil {
		return r.finishFailed(ctx, t, nil, transient(err))
	}
	r.log().Debug("plan computed", "source", src.Name, "task", t.ID, "records", len(in.records), "took", time.Since(began))
	// The plan holds what the apply needs; the records are garbage from
	// here on, and the apply is when memory peaks.
	in.records = nil
	if len(plan.Errors) > 0 {
		return r.finishFailed(ctx, t, plan, &sources.ValidationError{Errors: plan.Errors})
	}
	if plan.Hold != "" {
		return r.hold(ctx, t, plan)
	}
	return r.apply(ctx, t, src, plan, in.fingerprint)
}

// apply writes a plan and finishes its task.
func (r *Runner) apply(ctx context.Context, t *store.Task, src *config.Source, plan *reconcile.Plan, fingerprint string) (*Result, error) {
	if r.Progress != nil {
		r.Progress(src.Name, "apply", len(plan.Changes))
	}
	if plan.Counts.Skipped > 0 {
		// Skipped records must be tried again by the next sync even when
		// the file stays the same: their conflict may be gone by then.
		fingerprint = ""
	}
	began := time.Now()
	done := *t
	// The store stamps finished_at in the apply's transaction, after the
	// plan's writes (store.Task.BeforeSave).
	done.Status, done.FinishedAt = store.StatusSucceeded, nil
	done.Counts, done.Warnings = mustJSON(plan.Counts), mustJSON(nonNil(plan.Warnings))
	err := r.Store.ApplyTask(ctx, src.Name, plan, fingerprint, &done)
	r.log().Debug("plan applied", "source", src.Name, "task", t.ID, "changes", len(plan.Changes), "took", time.Since(began))
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = transient(fmt.Errorf("%w; the task can be retried", err))
		} else if store.IsTransient(err) {
			err = transient(err)
		}
		return r.finishFailed(ctx, t, plan, err)
	}
	*t = done
	r.log().Info("task succeeded", "source", t.Source, "task", t.ID, "counts", t.Counts)
	r.expire(ctx)
	return &Result{Task: t, Plan: plan}, nil
}

func (r *Runner) plan(ctx context.Context, src *config.Source, in *input, force bool) (*reconcile.Plan, error) {
	snap, err := r.Store.Snapshot(ctx, src.Name)
	if errors.Is(err, store.ErrNotFound) && r.readOnly {
		// roster check of a source the store has not seen: it owns nothing.
		snap, err = &reconcile.Snapshot{}, nil
	}
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(in.records))
	for i := range in.records {
		keys[i] = reconcile.Key(in.records[i].UserName)
	}
	if snap.Foreign, err = r.Store.ForeignLogins(ctx, src.Name, keys); err != nil {
		return nil, err
	}
	if src.OnConflict == config.OnConflictAdopt && len(snap.Foreign) > 0 {
		held := make([]string, 0, len(snap.Foreign))
		for k := range snap.Foreign {
			held = append(held, k)
		}
		if snap.Adoptable, err = r.Store.AdoptableUsers(ctx, src.Name, held); err != nil {
			return nil, err
		}
	}
	plan := reconcile.PlanSnapshotGroups(in.records, in.groups, snap, settings(src, force, r.Config.Attributes.Model()), newID)
	plan.Source = src.Name
	plan.Warnings = append(in.warnings, plan.Warnings...)
	return plan, nil
}

// newID makes time-ordered (version 7) UUIDs: still opaque and unique,
// but a bulk import appends to the indexes instead of writing all over them.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

func settings(src *config.Source, force bool, model *attrs.Model) reconcile.Settings {
	return reconcile.Settings{
		Orphans:                    src.Orphans,
		ActivateNew:                src.ActivateNew,
		Restore:                    src.Restore,
		MaxRemovals:                src.MaxRemovals.Limit,
		AllowEmpty:                 src.AllowEmpty,
		SkipConflicts:              src.OnConflict == config.OnConflictSkip,
		Adopt:                      src.OnConflict == config.OnConflictAdopt,
		Force:                      force,
		EmployeeNumberIsExternalID: src.Type == config.TypeCSV,
		Attributes:                 model,
	}
}

func (r *Runner) hold(ctx context.Context, t *store.Task, plan *reconcile.Plan) (*Result, error) {
	hp := heldPlan{Counts: plan.Counts}
	for _, c := range plan.Changes {
		if valved(c.Action) {
			hp.Removals = append(hp.Removals, c)
		}
	}
	t.Status, t.FinishedAt = store.StatusHeld, nil // stamped by the store
	t.Counts, t.Warnings = mustJSON(plan.Counts), mustJSON(nonNil(plan.Warnings))
	err := r.Store.HoldTask(ctx, t, &store.HeldPlan{Revision: plan.Revision, Reason: plan.Hold, Plan: mustJSON(hp)})
	if err != nil {
		return r.finishFailed(ctx, t, plan, transient(err))
	}
	r.log().Warn("task held by the safety valve: approve or reject it", "source", t.Source, "task", t.ID, "reason", plan.Hold)
	return &Result{Task: t, Plan: plan}, nil
}

// valved reports whether the safety valve weighs a change: removals and
// adoptions, which a held task lists for the operator.
func valved(a reconcile.Action) bool {
	return a == reconcile.Deactivate || a == reconcile.Delete || a == reconcile.Adopt
}

// transientError marks failures worth an automatic retry.
type transientError struct{ error }

func (e transientError) Unwrap() error { return e.error }

func transient(err error) error { return transientError{err} }

// IsTransient reports whether a task failed for a reason that may go away.
func IsTransient(err error) bool {
	var te transientError
	return errors.As(err, &te) || store.IsTransient(err)
}

func (r *Runner) finishFailed(ctx context.Context, t *store.Task, plan *reconcile.Plan, cause error) (*Result, error) {
	var errs []sources.FieldError
	var verr *sources.ValidationError
	if errors.As(cause, &verr) {
		errs = verr.Errors
	} else {
		errs = []sources.FieldError{{Message: cause.Error()}}
	}
	t.Errors = mustJSON(errs)
	t.Transient = IsTransient(cause)
	if plan != nil {
		t.Warnings = mustJSON(nonNil(plan.Warnings))
	}
	t.Status, t.FinishedAt = store.StatusFailed, nil // stamped by the store
	// The failure may be the database itself; the context may be done.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.Store.SaveTask(sctx, t); err != nil {
		if t.FinishedAt == nil {
			now := time.Now().UTC()
			t.FinishedAt = &now
		}
		r.log().Error("could not record the task as failed; it will be marked failed when the database answers again, or at the next start", "source", t.Source, "task", t.ID, "err", err)
	}
	r.log().Error("task failed", "source", t.Source, "task", t.ID, "errors", len(errs), "err", errs[0].Message, "transient", t.Transient)
	return &Result{Task: t, Plan: plan}, nil
}

// readCSV reads and validates a CSV input: the source's file or a stored
// raw record (hashed). An invalid input returns its validation error with
// what was read, for its raw record.
func (r *Runner) readCSV(ctx context.Context, src *config.Source, path string, hashed bool) (*input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open the input of source %s: %w", src.Name, err)
	}
	defer f.Close()
	var redact []sources.Span
	opts := csv.Options{PasswordMinLength: src.PasswordMinLength, HashedPasswords: hashed, Extra: src.ExtraColumns, Check: r.Config.Attributes.Model().Check,
		Redact: func(s sources.Span) { redact = append(redact, s) }}
	if r.Progress != nil {
		opts.Progress = func(n int) { r.Progress(src.Name, "read", n) }
	}
	res, err := csv.Read(ctx, f, opts)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	in := &input{records: res.Records, warnings: res.Warnings, fingerprint: fingerprint(res.SHA256, src),
		origin: path, sha: res.SHA256, redact: redact}
	return in, res.Err()
}

// fileFingerprint hashes the source's file and settings quickly, before the
// file is parsed, so that an unchanged file costs one read.
func fileFingerprint(src *config.Source) (string, error) {
	f, err := os.Open(src.Path)
	if err != nil {
		return "", fmt.Errorf("open the file of source %s: %w", src.Name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", src.Path, err)
	}
	return fingerprint(hex.EncodeToString(h.Sum(nil)), src), nil
}

// fingerprint combines the content's digest with the settings that change
// a plan, so that editing the settings makes the next sync run.
func fingerprint(contentSHA string, src *config.Source) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%t|%t|%s|%t|%s|%d", contentSHA, src.Orphans, src.ActivateNew,
		src.Restore, src.MaxRemovals, src.AllowEmpty, src.OnConflict, src.PasswordMinLength))
	return hex.EncodeToString(h[:])
}

// hashPasswords replaces the clear initial passwords of recs by their
// hashes, on all cores: a strong hash costs tens of milliseconds by design.
// A password is set only when its user is created or has none yet (SPEC
// §3.1), so the passwords of users who have one already are dropped
// unhashed: a re-sync of people who all have passwords hashes none, and
// their raw record keeps an empty password column.
func (r *Runner) hashPasswords(ctx context.Context, source string, recs []sources.Record) error {
	var todo []int
	var ids []string
	for i := range recs {
		if recs[i].Password != "" {
			todo, ids = append(todo, i), append(ids, recs[i].ExternalID)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	has, err := r.Store.WithPassword(ctx, source, ids)
	if err != nil {
		return transient(err)
	}
	kept := todo[:0]
	for _, i := range todo {
		if has[recs[i].ExternalID] {
			recs[i].Password = ""
			continue
		}
		kept = append(kept, i)
	}
	if todo = kept; len(todo) == 0 {
		return nil
	}
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	done := 0
	keep := r.Store.KeepsInitialPasswords()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range work {
				h, err := password.Hash(recs[i].Password)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if keep {
					recs[i].InitialPassword = recs[i].Password
				}
				recs[i].PasswordHash, recs[i].Password = h, ""
				done++
				if r.Progress != nil && done%100 == 0 {
					r.Progress(source, "hash", done)
				}
				mu.Unlock()
			}
		})
	}
	for _, i := range todo {
		select {
		case work <- i:
		case <-ctx.Done():
			close(work)
			wg.Wait()
			return ctx.Err()
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("hash initial passwords: %w", firstErr)
	}
	return nil
}

// rawDir is <log.dir>/user-data-sync/<source>.
func (r *Runner) rawDir(source string) string {
	return filepath.Join(r.Config.Log.Dir, "user-data-sync", source)
}

// writeRaw keeps a task's input as it arrived (SPEC §5): the file it was
// read from, byte for byte, except that a csv file's initial passwords are
// replaced by their hashes (or left out where the user has a password
// already, or where the input is invalid and none was hashed). An http
// source's pages were kept while they were read (or are copied from the
// raw record a retry reads).
func (r *Runner) writeRaw(t *store.Task, src *config.Source, in *input) error {
	switch {
	case in.rawKept:
		return nil
	case in.raw != nil:
		return r.keepRaw(t, "ldif", in.raw)
	case in.origin == "":
		return fmt.Errorf("keep the raw record: the input of task %d has no file to copy", t.ID)
	}
	f, err := os.Open(in.origin)
	if err != nil {
		return fmt.Errorf("keep the raw record: %w", err)
	}
	defer f.Close()
	if src.Type == config.TypeHTTP {
		return r.keepRaw(t, "json", func(w io.Writer) error { _, err := io.Copy(w, f); return err })
	}
	changed := false
	err = r.keepRaw(t, "csv", func(w io.Writer) error {
		rw := csv.NewRewriter(w, f)
		err := rewriteCSV(rw, in.records, in.redact)
		sum := ""
		if err == nil {
			sum, err = rw.Finish()
		}
		if changed = csv.IsShort(err) || (err == nil && in.sha != "" && sum != in.sha); changed {
			return errFileChanged
		}
		return err
	})
	if changed {
		// The file is not what was read: its raw record would not be.
		return errFileChanged
	}
	return err
}

// rewriteCSV replaces the password cells of recs by their hashes ("" when
// none) and blanks the spans of redact, merging both in file order.
func rewriteCSV(rw *csv.Rewriter, recs []sources.Record, redact []sources.Span) error {
	for i := range recs {
		rec := &recs[i]
		if rec.PasswordAt.Empty() {
			continue
		}
		for len(redact) > 0 && redact[0].Start < rec.PasswordAt.Start {
			if err := rw.Replace(redact[0], ""); err != nil {
				return err
			}
			redact = redact[1:]
		}
		with := ""
		if rec.PasswordHash != "" && rec.Password == "" {
			with = csv.Quote(rec.PasswordHash)
		}
		if err := rw.Replace(rec.PasswordAt, with); err != nil {
			return err
		}
	}
	for _, s := range redact {
		if err := rw.Replace(s, ""); err != nil {
			return err
		}
	}
	return nil
}

// keepRaw writes <log.dir>/user-data-sync/<source>/<task id>.<ext> (0600,
// folders 0700) and records its path in t, relative to the config folder
// when inside it.
func (r *Runner) keepRaw(t *store.Task, ext string, write func(io.Writer) error) error {
	dir := r.rawDir(t.Source)
	path := filepath.Join(dir, fmt.Sprintf("%d.%s", t.ID, ext))
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = writeFileAtomic(path, write)
	}
	if err != nil {
		return fmt.Errorf("keep the raw record: %w (check that log.dir %s is writable)", err, r.Config.Log.Dir)
	}
	t.RawRecord = r.relative(path)
	return nil
}

// rawPath resolves a task's raw record path.
func (r *Runner) rawPath(t *store.Task) string {
	if filepath.IsAbs(t.RawRecord) {
		return t.RawRecord
	}
	return filepath.Join(r.Config.Dir, t.RawRecord)
}

// writeFileAtomic writes a file with mode 0600 through a temporary file in
// the same folder and a rename, so readers never see half a file.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("tasks: marshal %T: %v", v, err)) // only our own plain structs get here
	}
	return string(b)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
