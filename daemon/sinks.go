package daemon

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/scim"
)

// trimEvery is how often the outbox loses what every sink delivered.
const trimEvery = time.Minute

// sinkSet runs the configured sinks (SPEC §12), one goroutine each; each
// delivers only while it holds its sink's lock.
type sinkSet struct {
	mu      sync.Mutex
	ctx     context.Context // Run's; nil until the store is up
	running map[string]*runningSink
	wg      sync.WaitGroup
}

type runningSink struct {
	cfg    config.Sink
	cancel context.CancelFunc
}

// startSinks records the configured sinks in the store and starts them,
// with the outbox's trimming; they stop with ctx.
func (d *Daemon) startSinks(ctx context.Context, cfg *config.Config) error {
	d.sinks.mu.Lock()
	d.sinks.ctx = ctx
	d.sinks.mu.Unlock()
	if err := d.updateSinks(cfg); err != nil {
		return err
	}
	d.sinks.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(trimEvery):
			}
			if n, err := d.store.TrimOutbox(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("could not trim the outbox", "err", err)
			} else if n > 0 {
				d.log.Debug("outbox trimmed", "entries", n)
			}
		}
	})
	return nil
}

// updateSinks makes the running sinks those of cfg: a sink whose
// settings changed restarts with the new ones (a reload), a removed one
// stops and loses its position and id map, a disabled one stops but
// keeps them.
func (d *Daemon) updateSinks(cfg *config.Config) error {
	d.sinks.mu.Lock()
	defer d.sinks.mu.Unlock()
	if d.sinks.ctx == nil {
		return nil // started by startSinks once the store is up
	}
	names := make([]string, 0, len(cfg.Sinks))
	for _, s := range cfg.Sinks {
		names = append(names, s.Name)
	}
	if err := d.store.RegisterSinks(d.sinks.ctx, names); err != nil {
		return err
	}
	if d.sinks.running == nil {
		d.sinks.running = map[string]*runningSink{}
	}
	want := map[string]config.Sink{}
	for _, s := range cfg.Sinks {
		if s.Enabled {
			want[s.Name] = s
		}
	}
	for name, r := range d.sinks.running {
		if w, ok := want[name]; !ok || !reflect.DeepEqual(w, r.cfg) {
			r.cancel()
			delete(d.sinks.running, name)
		}
	}
	users := scim.UserType(&cfg.Attributes)
	for name, sc := range want {
		if _, ok := d.sinks.running[name]; ok {
			continue
		}
		s, err := sinks.New(sc, d.store, d.store.SCIMFor(users), nil, d.log.With("component", "sink"))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(d.sinks.ctx)
		d.sinks.running[name] = &runningSink{cfg: sc, cancel: cancel}
		d.sinks.wg.Go(func() { s.Run(ctx) })
	}
	return nil
}
