package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
)

// job is one thing a source's queue runs: a sync with a trigger, or the
// automatic retry of a failed task.
type job struct {
	trigger string
	// retryOf is the failed task a retry runs again; 0 for a sync.
	retryOf int64
	// attempt counts how often the job could not even start a task for a
	// transient reason (the database unreachable) and was tried again.
	attempt int
	// force skips the unchanged-file check and the safety valve once
	// (an operator's sync with force).
	force bool
	// oncePer, for scheduled syncs, lets only one replica run a tick
	// (see tasks.Options.OncePer).
	oncePer time.Duration
	// waiters hear about the task the job records (see Enqueue).
	waiters []chan<- started
}

// started is what a waiter of Enqueue hears: the task as recorded, or why
// the job recorded none.
type started struct {
	task *store.Task
	err  error
}

// notify tells every waiter of j once; later calls do nothing.
func (j *job) notify(s started) {
	for _, w := range j.waiters {
		w <- s // buffered: one message per waiter
	}
	j.waiters = nil
}

// queue runs one source's jobs one after another, with room for exactly
// one follow-up while a job runs.
type queue struct {
	source string
	wake   chan struct{} // capacity 1: "next may be set"
	stop   chan struct{} // closed when the queue must end after its job

	mu     sync.Mutex
	busy   bool
	next   *job
	closed bool
}

func newQueue(source string) *queue {
	return &queue{source: source, wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

// push adds j. It reports false when j was merged into the follow-up that
// already waits: a sync replaces a waiting retry (it reads the source
// afresh, which is newer input), anything else is the same work. A merged
// job's waiters wait for the follow-up, which is forced when either is.
func (q *queue) push(j job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		j.notify(started{err: errQueueClosed})
		return false
	}
	if q.next != nil {
		if q.next.retryOf != 0 && j.retryOf == 0 {
			j.waiters = append(j.waiters, q.next.waiters...)
			j.force = j.force || q.next.force
			q.next = &j
		} else {
			q.next.waiters = append(q.next.waiters, j.waiters...)
			q.next.force = q.next.force || j.force
		}
		return false
	}
	q.next = &j
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns the next job, or nil when there is none (the queue is idle).
func (q *queue) take() *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := q.next
	q.next = nil
	q.busy = j != nil && !q.closed
	if q.closed {
		return nil
	}
	return j
}

// idle reports whether nothing runs and nothing waits.
func (q *queue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.busy && q.next == nil
}

// close ends the queue after its running job and returns the follow-up it
// drops, if any.
func (q *queue) close() *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	close(q.stop)
	j := q.next
	q.next = nil
	if j != nil {
		j.notify(started{err: errQueueClosed})
	}
	return j
}

// errQueueClosed is what waiters of a job that never ran hear.
var errQueueClosed = errors.New("roster is stopping or the source was removed from the configuration; the sync did not run")

// Trigger asks for a sync of a source. An idle source starts its task at
// once; a busy one keeps exactly one follow-up, whatever the number of
// triggers, which runs when the current task ends. It fails for sources
// the daemon does not sync (unknown, disabled, or not csv) and when Run is
// not running.
func (d *Daemon) Trigger(source, trigger string) error {
	return d.push(source, job{trigger: trigger})
}

// Enqueue is Trigger for an operator's request (the admin API): force
// skips the unchanged-file check and the safety valve once, like
// `roster sync --force`. It waits until the task that serves the request
// is recorded and returns it as recorded: usually running, or already
// skipped or failed. That is the task that starts next: at once when the
// source is idle, else after the running task, and it may first wait for
// the source's lock (held by a `roster sync` or another replica). When ctx
// ends first, Enqueue returns a nil task; the request stays queued.
func (d *Daemon) Enqueue(ctx context.Context, source, trigger string, force bool) (*store.Task, error) {
	ch := make(chan started, 1)
	if err := d.push(source, job{trigger: trigger, force: force, waiters: []chan<- started{ch}}); err != nil {
		return nil, err
	}
	select {
	case s := <-ch:
		return s.task, s.err
	case <-ctx.Done():
		return nil, nil
	}
}

// push pushes j onto the source's queue.
func (d *Daemon) push(source string, j job) error {
	d.mu.Lock()
	q := d.queues[source]
	running := d.running
	cfg := d.cfg
	d.mu.Unlock()
	if q == nil {
		src, ok := cfg.Source(source)
		switch {
		case !running:
			return fmt.Errorf("the daemon is not running; source %s was not synced", source)
		case !ok:
			return fmt.Errorf("%w: no source %q is configured", tasks.ErrUsage, source)
		case !src.Enabled:
			return fmt.Errorf("%w: source %q is disabled (enabled: false)", tasks.ErrUsage, source)
		default:
			d.log.Debug("trigger ignored: the daemon has no tasks for this type of source", "source", source, "type", src.Type, "trigger", j.trigger)
			return fmt.Errorf("%w: source %q is a %s source; the daemon does not sync it", tasks.ErrUsage, source, src.Type)
		}
	}
	if src, ok := cfg.Source(source); ok && src.Type == config.TypePush && j.trigger != tasks.TriggerPush {
		return fmt.Errorf("%w: source %q is a push source: it receives changes over HTTP and has nothing to sync", tasks.ErrUsage, source)
	}
	if q.push(j) {
		d.log.Debug("sync queued", "source", source, "trigger", j.trigger, "force", j.force)
	} else {
		d.log.Debug("sync already queued; trigger merged into it", "source", source, "trigger", j.trigger, "force", j.force)
	}
	return nil
}

// updateQueues starts a queue for every enabled csv source of cfg that has
// none and ends those of the sources that are gone; d.mu is held.
func (d *Daemon) updateQueues(cfg *config.Config) {
	if d.queues == nil {
		d.queues = map[string]*queue{}
	}
	want := map[string]bool{}
	for _, src := range cfg.Sources {
		if !queued(&src) {
			continue
		}
		want[src.Name] = true
		if d.queues[src.Name] != nil {
			continue
		}
		q := newQueue(src.Name)
		d.queues[src.Name] = q
		d.metrics.running.WithLabelValues(src.Name).Set(0)
		ctx := d.taskCtx
		d.workers.Go(func() { d.work(ctx, q) })
	}
	for name, q := range d.queues {
		if !want[name] {
			q.close()
			delete(d.queues, name)
			d.metrics.running.DeleteLabelValues(name)
			d.log.Info("source no longer synced by the daemon", "source", name)
		}
	}
}

// work is a source's goroutine: it runs the queue's jobs until the queue
// is closed.
func (d *Daemon) work(ctx context.Context, q *queue) {
	for {
		select {
		case <-q.stop:
			return
		case <-q.wake:
		}
		for j := q.take(); j != nil; j = q.take() {
			d.runJob(ctx, q.source, *j)
		}
	}
}

// runJob runs one job and arranges the automatic retry of a transient
// failure.
func (d *Daemon) runJob(ctx context.Context, source string, j job) {
	r, cfg := d.currentRunner()
	log := d.log.With("source", source)
	defer j.notify(started{err: errors.New("the sync recorded no task")}) // when nothing else was said
	d.metrics.running.WithLabelValues(source).Set(1)
	defer d.metrics.running.WithLabelValues(source).Set(0)

	if src, ok := cfg.Source(source); ok && src.Type == config.TypePush {
		d.drain(ctx, r, source, j)
		return
	}
	var res *tasks.Result
	var err error
	if j.retryOf != 0 {
		// A retry runs old input again: not after a newer task read newer input.
		last, lerr := d.store.LastTask(ctx, source)
		if lerr == nil && last != nil && last.ID != j.retryOf {
			log.Info("automatic retry dropped: a newer task of the source ran since", "task", j.retryOf, "newer_task", last.ID)
			return
		}
		res, err = r.Retry(ctx, j.retryOf, tasks.TriggerRetry)
	} else {
		res, err = r.Sync(ctx, source, tasks.Options{Trigger: j.trigger, Force: j.force, OncePer: j.oncePer,
			Started: func(t store.Task) { j.notify(started{task: &t}) }})
	}
	if res != nil && res.Task != nil {
		t := *res.Task
		j.notify(started{task: &t}) // a runner that does not call Started
	} else if err != nil {
		j.notify(started{err: err})
	}
	if err != nil {
		if ctx.Err() != nil {
			log.Warn("task not run: roster is stopping", "trigger", j.trigger, "err", err)
			return
		}
		if errors.Is(err, tasks.ErrAlreadyRan) {
			log.Debug("scheduled sync not run: another replica ran this tick", "err", err)
			return
		}
		transient := tasks.IsTransient(err)
		if j.retryOf != 0 {
			log = log.With("task", j.retryOf)
		}
		log.Error("task could not run", "trigger", j.trigger, "err", err, "transient", transient)
		if transient && d.waitForDatabase(ctx, source) {
			return
		}
		if transient && j.attempt < cfg.Tasks.MaxRetries {
			wait := d.backoff(j.attempt)
			log.Warn("trying again later", "trigger", j.trigger, "in", wait, "attempt", j.attempt+1, "max_retries", cfg.Tasks.MaxRetries)
			next := job{trigger: j.trigger, retryOf: j.retryOf, attempt: j.attempt + 1, force: j.force}
			d.later(source, next, wait)
		}
		return
	}
	if res.Task != nil {
		d.finished(res.Task, cfg)
	}
}

// drain applies a push source's stored pushes. The runner reports each
// task to the metrics itself. When the drain stopped at a push that failed
// for a transient reason (queued again in its place, or with its retries
// used up, the pushes waiting behind it), or could not run at all, it is
// drained again after the backoff; the PushPoll would get there too, later.
func (d *Daemon) drain(ctx context.Context, r taskRunner, source string, j job) {
	res, err := r.DrainPush(ctx, source)
	attempt := j.attempt
	switch {
	case err != nil && ctx.Err() != nil:
		return
	case err != nil:
		d.log.Error("stored pushes could not be applied", "source", source, "err", err, "transient", tasks.IsTransient(err))
	case res != nil && res.Task != nil && res.Task.Status == store.StatusFailed && res.Task.Transient:
		attempt = res.Task.Attempt
	default:
		return
	}
	if d.waitForDatabase(ctx, source) {
		return
	}
	d.later(source, job{trigger: tasks.TriggerPush, attempt: attempt + 1}, d.backoff(attempt))
}

// finished records a finished task in the metrics and arranges the
// automatic retry of a transient failure. The admin API calls it for the
// tasks it runs itself (retry, approve, reject).
func (d *Daemon) finished(t *store.Task, cfg *config.Config) {
	d.metrics.observe(t)
	if t.Status != store.StatusFailed || !t.Transient {
		return
	}
	if d.waitForDatabase(d.taskContext(), t.Source) {
		return
	}
	log := d.log.With("source", t.Source, "task", t.ID)
	if t.Attempt >= cfg.Tasks.MaxRetries {
		log.Error("task failed for a transient reason and its automatic retries are used up; retry it by hand when the cause is fixed",
			"retries", t.Attempt, "max_retries", cfg.Tasks.MaxRetries)
		return
	}
	wait := d.backoff(t.Attempt)
	log.Warn("task failed for a transient reason: retrying it automatically", "in", wait, "retry", t.Attempt+1, "max_retries", cfg.Tasks.MaxRetries)
	d.later(t.Source, job{trigger: tasks.TriggerRetry, retryOf: t.ID}, wait)
}

// backoff is the wait before retry number attempt+1.
func (d *Daemon) backoff(attempt int) time.Duration {
	wait := d.RetryBackoff
	for range attempt {
		wait *= 2
		if wait >= d.MaxRetryBackoff {
			return d.MaxRetryBackoff
		}
	}
	return min(wait, d.MaxRetryBackoff)
}

// later pushes j onto the source's queue after wait, unless roster stops
// or the source goes away first.
func (d *Daemon) later(source string, j job, wait time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		_, pending := d.timers[t]
		delete(d.timers, t)
		// Pushed under d.mu, so that the job is never in neither place.
		if q := d.queues[source]; pending && q != nil {
			q.push(j)
		}
	})
	d.timers[t] = struct{}{}
}

// pingTimeout bounds one look at whether the database answers.
const pingTimeout = 5 * time.Second

// waitForDatabase is called after a task of source failed, or could not
// run, for a transient reason. When the database does not answer, the
// source waits for it instead of spending its automatic retries on an
// outage that may outlast them all: recoverOutages syncs it once the
// database answers. It reports whether the source now waits.
func (d *Daemon) waitForDatabase(ctx context.Context, source string) bool {
	if ctx.Err() != nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	err := d.store.Ping(pctx)
	cancel()
	if err == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running {
		return false
	}
	if !d.stranded[source] {
		d.log.Warn("the database does not answer: the source syncs again as soon as it does", "source", source, "err", err)
	}
	d.stranded[source] = true
	select {
	case d.outage <- struct{}{}:
	default:
	}
	return true
}

// taskContext is the context of tasks while Run runs.
func (d *Daemon) taskContext() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.taskCtx == nil {
		return context.Background()
	}
	return d.taskCtx
}

// recoverOutages runs while Run runs. While sources wait for the database
// (see waitForDatabase) it pings it every OutagePoll; once it answers, the
// tasks left running whose source nobody holds are marked failed (their
// process, this one, lost them with its connection: nothing of them was
// applied) and every waiting source is synced once.
func (d *Daemon) recoverOutages(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.outage:
		}
		for !d.recoverOutage(ctx) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d.OutagePoll):
			}
		}
	}
}

// recoverOutage reports false while the database does not answer yet.
func (d *Daemon) recoverOutage(ctx context.Context) bool {
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if d.store.Ping(pctx) != nil {
		return false
	}
	runner, cfg := d.currentRunner()
	failed, err := runner.Recover(ctx)
	if err != nil {
		d.log.Warn("the database answers again, but the tasks left running could not be checked yet", "err", err)
		return false
	}
	d.mu.Lock()
	waiting := d.stranded
	d.stranded = map[string]bool{}
	d.mu.Unlock()
	if len(failed) > 0 || len(waiting) > 0 {
		d.log.Info("the database answers again: tasks left running are marked failed and the sources that waited sync again",
			"failed", failed, "sources", len(waiting))
	}
	for name := range waiting {
		trigger := tasks.TriggerSchedule // the daemon's own initiative
		if src, ok := cfg.Source(name); ok && src.Type == config.TypePush {
			trigger = tasks.TriggerPush
		}
		if err := d.push(name, job{trigger: trigger}); err != nil {
			d.log.Warn("could not sync a source after the database outage", "source", name, "err", err)
		}
	}
	return true
}
