package sinks

import (
	"context"
	"errors"
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

// Run delivers the sink until ctx ends. One replica delivers a sink at a
// time: Run waits for the sink's lock, which another replica (or, on
// SQLite, another roster on the same file) may hold, and takes over when
// that one dies. It steps every interval, and backs off, doubling up to
// half an hour, while steps fail.
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
	for ctx.Err() == nil {
		c, err := s.Step(ctx)
		s.log.Debug("step", "counts", c, "err", err)
		if ctx.Err() != nil {
			return
		}
		if c != (Counts{}) {
			s.log.Info("delivered", "created", c.Created, "adopted", c.Adopted, "updated", c.Updated,
				"deactivated", c.Deactivated, "deleted", c.Deleted, "failed", c.Failed)
		}
		if errors.Is(err, ErrHeld) {
			// Waiting for an operator is no failure of the service.
			s.log.Warn("delivery held for an operator", "error", err)
			err = nil
		}
		if s.Observe != nil {
			s.Observe(s.cfg.Name, c, err)
		}
		failure := ""
		wait := interval
		if err != nil {
			failure = err.Error()
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
		if rerr := s.store.RecordSinkRun(ctx, s.cfg.Name, failure); rerr != nil && ctx.Err() == nil {
			s.log.Warn("could not record the sink's run", "error", rerr)
		}
		sleep(ctx, wait)
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
