package sinks

import (
	"context"
	"errors"
	"time"

	"github.com/rosterd/roster/daemon/store"
)

// maxBackoff bounds the wait after repeated failed steps.
const maxBackoff = 30 * time.Minute

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
	for ctx.Err() == nil {
		c, err := s.Step(ctx)
		if c != (Counts{}) {
			s.log.Info("delivered", "created", c.Created, "adopted", c.Adopted, "updated", c.Updated,
				"deactivated", c.Deactivated, "deleted", c.Deleted, "failed", c.Failed)
		}
		wait := interval
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			wait = min(interval<<min(failures, 16), maxBackoff)
			s.log.Warn("delivery failed; trying again later", "error", err, "failures", failures, "retry_in", wait)
		case err == nil:
			failures = 0
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
