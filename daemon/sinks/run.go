package sinks

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rosterd/roster/daemon/store"
)

// maxBackoff bounds the wait after repeated failed steps; a sink in
// quarantine waits that long between attempts.
var maxBackoff = 30 * time.Minute

// QuarantineAfter is how many failed steps in a row put a sink in
// quarantine: it then tries its service only every half hour, until a
// step succeeds.
const QuarantineAfter = 5

// PollEvery is how often a sink waiting for its next step looks in the
// store for an operator's request to run now or an approval of held
// removals: one read of one row.
const PollEvery = time.Second

// Run delivers the sink until ctx ends. One replica delivers a sink at a
// time: Run waits for the sink's lock, which another replica (or, on
// SQLite, another roster on the same file) may hold, and takes over when
// that one dies. It steps every interval, and backs off, doubling up to
// half an hour, while steps fail; an operator's request for a run, or an
// approval of the removals it holds, starts a step at once.
func (s *Sink) Run(ctx context.Context) {
	interval := time.Duration(s.cfg.Interval)
	for ctx.Err() == nil {
		unlock, err := s.store.TryLockSink(ctx, s.cfg.Name)
		if err != nil {
			if !errors.Is(err, store.ErrLocked) {
				s.log.Warn("cannot take the sink's lock", "error", err)
			}
			sleep(ctx, interval)
			continue
		}
		s.deliver(ctx, interval)
		unlock()
	}
}

func (s *Sink) deliver(ctx context.Context, interval time.Duration) {
	failures := 0
	if st, err := s.store.Sink(ctx, s.cfg.Name); err == nil {
		failures = st.Failures // a quarantine outlives a restart
	}
	trigger := store.SinkTriggerInterval
	if failures > 0 {
		trigger = store.SinkTriggerRetry
	}
	for ctx.Err() == nil {
		_, c, err := s.RunStep(ctx, trigger)
		if ctx.Err() != nil {
			return
		}
		held := errors.Is(err, ErrHeld)
		if held {
			// Waiting for an operator is no failure of the service.
			s.log.Warn("delivery held for an operator", "error", err)
			err = nil
		}
		if s.Observe != nil {
			s.Observe(s.cfg.Name, c, err)
		}
		wait := interval
		if err != nil {
			failures++
			wait = min(interval<<min(failures, 16), maxBackoff)
			if failures >= QuarantineAfter {
				wait = maxBackoff
			}
			if failures == QuarantineAfter {
				s.log.Error("the service keeps failing: the sink is in quarantine and tries again every "+maxBackoff.String(), "error", err, "failures", failures)
			} else {
				s.log.Warn("delivery failed; trying again later", "error", err, "failures", failures, "retry_in", wait)
			}
		} else {
			if failures >= QuarantineAfter {
				s.log.Info("the service answers again: the sink left quarantine")
			}
			failures = 0
		}
		trigger = s.wait(ctx, wait, held, err != nil)
	}
}

// RunStep runs one step of the sink as a run: it records the run (see
// recordable) and how it ended in the sink's state (failures in a row,
// last error). An operator's pending request for a run is taken by it,
// and makes its trigger "operator". The caller holds the sink's lock.
// The error is Step's; the run's ID is 0 when it was not recorded.
func (s *Sink) RunStep(ctx context.Context, trigger string) (store.SinkRun, Counts, error) {
	if took, err := s.store.TakeSinkRunRequest(ctx, s.cfg.Name); err != nil {
		s.log.Warn("could not read the operator's requests", "error", err)
	} else if took {
		trigger = store.SinkTriggerOperator
	}
	start := time.Now()
	c, err := s.Step(ctx)
	run := store.SinkRun{Sink: s.cfg.Name, Trigger: trigger, Status: store.SinkRunOK, StartedAt: start.UTC(), FinishedAt: time.Now().UTC(),
		Counts: store.SinkRunCounts(c), Errors: s.Fails}
	if run.Errors == nil {
		run.Errors = []store.ResourceFail{} // as the store reads it back
	}
	s.log.Debug("step", "counts", c, "err", err)
	if ctx.Err() != nil {
		return run, c, err // stopped, not ended: the next run does it again
	}
	if c != (Counts{}) {
		s.log.Info("delivered", "trigger", trigger, "created", c.Created, "adopted", c.Adopted, "updated", c.Updated,
			"deactivated", c.Deactivated, "deleted", c.Deleted, "failed", c.Failed)
	}
	failure := ""
	switch {
	case errors.Is(err, ErrHeld):
		run.Status, run.Error = store.SinkRunHeld, err.Error()
	case err != nil:
		run.Status, run.Error = store.SinkRunFailed, err.Error()
		failure = err.Error()
	}
	// The state first: whoever sees the run sees the state it left.
	if rerr := s.store.RecordSinkRun(ctx, s.cfg.Name, failure); rerr != nil {
		s.log.Warn("could not record the sink's state", "error", rerr)
	}
	if recordable(run) {
		if rerr := s.store.AddSinkRun(ctx, &run); rerr != nil {
			s.log.Warn("could not record the sink's run", "error", rerr)
		}
	}
	return run, c, err
}

// recordable says whether a run is kept: one that did something, failed
// or was held, and any an operator asked for. The step every interval
// that finds nothing to deliver is not, or an idle sink would write a
// row a minute for nothing; its end shows as the sink's last run.
func recordable(r store.SinkRun) bool {
	return r.Status != store.SinkRunOK || r.Counts != (store.SinkRunCounts{}) ||
		r.Trigger == store.SinkTriggerOperator || r.Trigger == store.SinkTriggerApprove
}

// wait waits d, or less when an operator asks for a run, or approves the
// removals a held sink holds, and returns the next run's trigger ("" when
// ctx ended).
func (s *Sink) wait(ctx context.Context, d time.Duration, held, failed bool) string {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			if failed {
				return store.SinkTriggerRetry
			}
			return store.SinkTriggerInterval
		}
		sleep(ctx, min(left, PollEvery))
		if ctx.Err() != nil {
			return ""
		}
		requested, approved, err := s.store.SinkWake(ctx, s.cfg.Name)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Debug("could not look for an operator's request", "error", err)
			}
		case requested:
			return store.SinkTriggerOperator
		case approved && held:
			// Only while held: an approved run that then failed waits
			// its back-off like any failure.
			return store.SinkTriggerApprove
		}
	}
}

// maxDetail bounds the service's answer kept with a refused resource.
const maxDetail = 1000

// refused keeps a resource the service refused for the run, up to
// store.MaxSinkRunErrors of them.
func (s *Sink) refused(kind, id string, se *ServiceError) {
	if len(s.Fails) < store.MaxSinkRunErrors {
		detail := se.Detail
		if len(detail) > maxDetail {
			detail = strings.ToValidUTF8(detail[:maxDetail], "") + "…"
		}
		s.Fails = append(s.Fails, store.ResourceFail{Kind: kind, ID: id, Method: se.Method, Path: se.Path, Status: se.Status, Detail: detail})
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
