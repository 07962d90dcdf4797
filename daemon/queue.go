package daemon

import (
	"context"
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
// afresh, which is newer input), anything else is the same work.
func (q *queue) push(j job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	if q.next != nil {
		if q.next.retryOf != 0 && j.retryOf == 0 {
			q.next = &j
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
	return j
}

// Trigger asks for a sync of a source. An idle source starts its task at
// once; a busy one keeps exactly one follow-up, whatever the number of
// triggers, which runs when the current task ends. It fails for sources
// the daemon does not sync (unknown, disabled, or not csv) and when Run is
// not running.
func (d *Daemon) Trigger(source, trigger string) error {
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
			d.log.Debug("trigger ignored: the daemon syncs only csv sources", "source", source, "type", src.Type, "trigger", trigger)
			return fmt.Errorf("%w: source %q is a %s source; the daemon does not sync it", tasks.ErrUsage, source, src.Type)
		}
	}
	if q.push(job{trigger: trigger}) {
		d.log.Debug("sync queued", "source", source, "trigger", trigger)
	} else {
		d.log.Debug("sync already queued; trigger merged into it", "source", source, "trigger", trigger)
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
	d.metrics.running.WithLabelValues(source).Set(1)
	defer d.metrics.running.WithLabelValues(source).Set(0)

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
		res, err = r.Sync(ctx, source, tasks.Options{Trigger: j.trigger})
	}
	if err != nil {
		if ctx.Err() != nil {
			log.Warn("task not run: roster is stopping", "trigger", j.trigger, "err", err)
			return
		}
		transient := tasks.IsTransient(err)
		if j.retryOf != 0 {
			log = log.With("task", j.retryOf)
		}
		log.Error("task could not run", "trigger", j.trigger, "err", err, "transient", transient)
		if transient && j.attempt < cfg.Tasks.MaxRetries {
			wait := d.backoff(j.attempt)
			log.Warn("trying again later", "trigger", j.trigger, "in", wait, "attempt", j.attempt+1, "max_retries", cfg.Tasks.MaxRetries)
			next := j
			next.attempt++
			d.later(source, next, wait)
		}
		return
	}
	t := res.Task
	if t == nil {
		return
	}
	d.metrics.observe(t)
	if t.Status != store.StatusFailed || !t.Transient {
		return
	}
	log = log.With("task", t.ID)
	if t.Attempt >= cfg.Tasks.MaxRetries {
		log.Error("task failed for a transient reason and its automatic retries are used up; retry it by hand when the cause is fixed",
			"retries", t.Attempt, "max_retries", cfg.Tasks.MaxRetries)
		return
	}
	wait := d.backoff(t.Attempt)
	log.Warn("task failed for a transient reason: retrying it automatically", "in", wait, "retry", t.Attempt+1, "max_retries", cfg.Tasks.MaxRetries)
	d.later(source, job{trigger: tasks.TriggerRetry, retryOf: t.ID}, wait)
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
