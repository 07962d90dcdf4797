package daemon

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/push"
)

// drainCounter is the real runner, counting the drains of push sources.
type drainCounter struct {
	*tasks.Runner
	drains atomic.Int64
}

func (c *drainCounter) DrainPush(ctx context.Context, source string) (*tasks.Result, error) {
	c.drains.Add(1)
	return c.Runner.DrainPush(ctx, source)
}

// An idle push source is looked at every PushPoll but not drained (no
// lock taken, no "sync queued" logged); a push stored without a trigger
// (accepted by a replica that died before it applied it) is found by the
// next poll and applied.
func TestPushPollDrainsOnlyWhatWaits(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		cfg := loadConfig(t, t.TempDir(), "sources:\n  - name: api\n    type: push\n")
		c := &drainCounter{}
		h := startConfig(t, st, cfg, func(d *Daemon) {
			d.PushPoll = 20 * time.Millisecond
			d.newRunner = func(cc *config.Config) taskRunner {
				c.Runner = &tasks.Runner{Store: st, Config: cc, Log: d.log}
				return c
			}
			d.runner = d.newRunner(cfg)
		})
		// The start drains once (pushes left by a stop or a crash).
		eventually(t, 10*time.Second, "the start-up drain did not run", func() bool { return c.drains.Load() == 1 })
		h.waitQuiet()
		time.Sleep(15 * 20 * time.Millisecond) // fifteen polls
		if n := c.drains.Load(); n != 1 {
			t.Fatalf("an idle push source was drained %d times in fifteen polls, want 0 after the start-up drain", n-1)
		}

		p, err := push.Decode([]byte(`{"dataType":"user","records":[{"uid":"1","username":"ann"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		task, err := c.Runner.AcceptPush(t.Context(), "api", p) // stored, nobody told
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the stored push was not applied by a poll", func() bool {
			cur, err := st.GetTask(t.Context(), task.ID)
			return err == nil && cur.Status == store.StatusSucceeded
		})
		if n := c.drains.Load(); n < 2 {
			t.Fatalf("drains = %d, want the poll's drain", n)
		}
	})
}
