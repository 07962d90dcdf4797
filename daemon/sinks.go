package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/scim"
)

// trimEvery is how often the outbox loses what every sink delivered.
const trimEvery = time.Minute

// sinkSet runs the configured sinks (SPEC §12), one goroutine each; each
// delivers only while it holds its sink's lock.
type sinkSet struct {
	metrics *sinkMetrics
	mu      sync.Mutex
	ctx     context.Context // Run's; nil until the store is up
	running map[string]*runningSink
	wg      sync.WaitGroup
	// passwordSinks are the sinks that ask for initial passwords, as last
	// configured (sinks_passwords.go).
	passwordSinks atomic.Pointer[[]string]
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
			d.wipePasswords(ctx)
			if n, err := d.store.TrimOutbox(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("could not trim the outbox", "err", err)
			} else if n > 0 {
				d.log.Debug("outbox trimmed", "entries", n)
			}
			// A sink's runs are kept as long as tasks are (tasks.keep),
			// and at most store.MaxSinkRuns of each sink.
			keep := time.Duration(d.Config().Tasks.Keep)
			if n, err := d.store.ExpireSinkRuns(ctx, time.Now().Add(-keep)); err != nil && ctx.Err() == nil {
				d.log.Warn("could not expire old sink runs", "err", err)
			} else if n > 0 {
				d.log.Debug("sink runs expired", "runs", n)
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
	if err := d.keepPasswords(d.sinks.ctx, cfg); err != nil {
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
		s.Users = &users
		if d.sinks.metrics != nil {
			s.Observe = d.sinks.metrics.observe
		}
		ctx, cancel := context.WithCancel(d.sinks.ctx)
		d.sinks.running[name] = &runningSink{cfg: sc, cancel: cancel}
		d.sinks.wg.Go(func() { s.Run(ctx) })
	}
	return nil
}

// sinkMetrics are the roster_sink_* series (SPEC §12): counters of what
// this process delivered, and the state of every sink read from the store
// at scrape time, whichever replica delivers it.
type sinkMetrics struct {
	delivered               *prometheus.CounterVec
	failed                  *prometheus.CounterVec
	store                   *store.Store
	cfg                     func() *config.Config
	log                     *slog.Logger
	timeout                 time.Duration
	lag, queue, quarantined *prometheus.Desc
}

func newSinkMetrics(reg prometheus.Registerer, st *store.Store, cfg func() *config.Config, log *slog.Logger, timeout time.Duration) (*sinkMetrics, error) {
	m := &sinkMetrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_sink_delivered_total",
			Help: "Users and groups delivered to the sink's service by this process, by action (created, adopted, updated, deactivated, deleted).",
		}, []string{"sink", "action"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_sink_failed_total",
			Help: "Failures of the sink in this process: resources the service refused, and runs that stopped on a failing or unreachable service.",
		}, []string{"sink", "kind"}),
		store: st, cfg: cfg, log: log, timeout: timeout,
		lag: prometheus.NewDesc("roster_sink_lag_seconds",
			"Age of the oldest change the sink has not delivered yet, 0 when it has delivered every change; read at scrape time.", []string{"sink"}, nil),
		queue: prometheus.NewDesc("roster_sink_queue",
			"Changes recorded for the sink and not delivered yet, read at scrape time.", []string{"sink"}, nil),
		quarantined: prometheus.NewDesc("roster_sink_quarantined",
			"1 while the sink is in quarantine (its service failed "+strconv.Itoa(sinks.QuarantineAfter)+" runs in a row), else 0.", []string{"sink"}, nil),
	}
	for _, c := range []prometheus.Collector{m.delivered, m.failed, m} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("daemon: register sink metrics: %w", err)
		}
	}
	return m, nil
}

// observe counts one step of a sink.
func (m *sinkMetrics) observe(sink string, c sinks.Counts, err error) {
	for action, n := range map[string]int{"created": c.Created, "adopted": c.Adopted, "updated": c.Updated,
		"deactivated": c.Deactivated, "deleted": c.Deleted} {
		if n > 0 {
			m.delivered.WithLabelValues(sink, action).Add(float64(n))
		}
	}
	if c.Failed > 0 {
		m.failed.WithLabelValues(sink, "resource").Add(float64(c.Failed))
	}
	if err != nil {
		m.failed.WithLabelValues(sink, "run").Inc()
	}
}

func (m *sinkMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.lag
	ch <- m.queue
	ch <- m.quarantined
}

func (m *sinkMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	for _, sc := range m.cfg().Sinks {
		st, err := m.store.Sink(ctx, sc.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue // not registered yet: the store was not up
		}
		if err != nil {
			m.log.Warn("metrics: could not read a sink's state", "sink", sc.Name, "err", err)
			ch <- prometheus.NewInvalidMetric(m.queue, err)
			return
		}
		lag := 0.0
		if !st.Oldest.IsZero() {
			lag = max(time.Since(st.Oldest).Seconds(), 0)
		}
		quarantined := 0.0
		if st.Failures >= sinks.QuarantineAfter {
			quarantined = 1
		}
		ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, lag, sc.Name)
		ch <- prometheus.MustNewConstMetric(m.queue, prometheus.GaugeValue, float64(st.Queue), sc.Name)
		ch <- prometheus.MustNewConstMetric(m.quarantined, prometheus.GaugeValue, quarantined, sc.Name)
	}
}
