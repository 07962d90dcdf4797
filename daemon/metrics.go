package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
)

// metrics are the daemon's series of SPEC §7. Label values are source
// names, triggers, statuses and actions: never user ids.
type metrics struct {
	tasks         *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	lastSuccess   *prometheus.GaugeVec
	records       *prometheus.CounterVec
	running       *prometheus.GaugeVec
	pushRequests  *prometheus.CounterVec
	reloadOK      prometheus.Gauge
	reloadTime    prometheus.Gauge
	buildInfo     *prometheus.GaugeVec
	scrapeTimeout time.Duration
}

func newMetrics(reg prometheus.Registerer, st *store.Store, cfg func() *config.Config, log *slog.Logger) (*metrics, error) {
	m := &metrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_sync_tasks_total",
			Help: "Sync tasks finished by this process, by source, trigger and final status.",
		}, []string{"source", "trigger", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "roster_sync_task_duration_seconds",
			Help:    "How long sync tasks ran, from start to their final status.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
		}, []string{"source"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roster_sync_last_success_timestamp_seconds",
			Help: "When the source last synced successfully (Unix time); a skipped sync, whose input was unchanged, counts.",
		}, []string{"source"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_sync_records_total",
			Help: "Users handled by successful sync tasks, by source and action (created, updated, unchanged, deactivated, deleted, restored, not_restored, skipped, adopted).",
		}, []string{"source", "action"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roster_sync_running",
			Help: "1 while a task of the source runs in this process, else 0.",
		}, []string{"source"}),
		pushRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_push_requests_total",
			Help: "Push API requests by source and HTTP status code; source is \"\" when the request named no configured source.",
		}, []string{"source", "code"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roster_config_last_reload_successful",
			Help: "Whether the last configuration reload succeeded (1) or was refused (0).",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roster_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in force was loaded (Unix time).",
		}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roster_build_info",
			Help: "Always 1; the labels name roster's version and the Go version it was built with.",
		}, []string{"version", "goversion"}),
		scrapeTimeout: 10 * time.Second,
	}
	dir := &directoryCollector{
		store: st, cfg: cfg, log: log, timeout: m.scrapeTimeout,
		users: prometheus.NewDesc("roster_directory_users",
			"Users in the directory by owning source and state (active, inactive, deleted tombstones), counted at scrape time.",
			[]string{"source", "state"}, nil),
		groups: prometheus.NewDesc("roster_directory_groups",
			"Groups in the directory by owning source, counted at scrape time.",
			[]string{"source"}, nil),
		retired: prometheus.NewDesc("roster_source_retired",
			"1 for each retired source (removed from the configuration) that still owns users that are not deleted, or groups; roster sources retire NAME plans their removal.",
			[]string{"source"}, nil),
		waiting: prometheus.NewDesc("roster_sync_tasks_waiting",
			"Tasks waiting by source and status, counted in the store at scrape time: held (by the safety valve, for an operator's approve or reject) and queued (pushes accepted, not applied yet).",
			[]string{"source", "status"}, nil),
	}
	for _, c := range []prometheus.Collector{m.tasks, m.duration, m.lastSuccess, m.records, m.running, m.pushRequests,
		m.reloadOK, m.reloadTime, m.buildInfo, dir} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("daemon: register metrics: %w", err)
		}
	}
	// The Go and process collectors may already be there (a caller's
	// registry that has them): that is fine.
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			if _, ok := err.(prometheus.AlreadyRegisteredError); !ok {
				return nil, fmt.Errorf("daemon: register metrics: %w", err)
			}
		}
	}
	m.reloadOK.Set(1)
	m.reloadTime.SetToCurrentTime()
	return m, nil
}

// start sets the series known before any task runs: the build, and the
// last success of every source as the store remembers it.
func (m *metrics) start(ctx context.Context, st *store.Store, cfg *config.Config, version string) {
	if version == "" {
		version = "(devel)"
		if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
			version = info.Main.Version
		}
	}
	m.buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	m.loadLastSuccess(ctx, st, cfg)
}

func (m *metrics) loadLastSuccess(ctx context.Context, st *store.Store, cfg *config.Config) {
	for _, src := range cfg.Sources {
		state, err := st.GetSource(ctx, src.Name)
		if err == nil && state.LastSuccessAt != nil {
			m.lastSuccess.WithLabelValues(src.Name).Set(float64(state.LastSuccessAt.UnixNano()) / 1e9)
		}
	}
}

// observe records a finished task.
func (m *metrics) observe(t *store.Task) {
	m.tasks.WithLabelValues(t.Source, t.Trigger, t.Status).Inc()
	if t.StartedAt != nil && t.FinishedAt != nil {
		m.duration.WithLabelValues(t.Source).Observe(t.FinishedAt.Sub(*t.StartedAt).Seconds())
	}
	switch t.Status {
	case store.StatusSucceeded, store.StatusSkipped:
		at := time.Now()
		if t.FinishedAt != nil {
			at = *t.FinishedAt
		}
		m.lastSuccess.WithLabelValues(t.Source).Set(float64(at.UnixNano()) / 1e9)
	}
	if t.Status != store.StatusSucceeded {
		return
	}
	c := tasks.ViewOf(t, nil).Counts
	for _, a := range []struct {
		action string
		n      int
	}{
		{"created", c.Created}, {"updated", c.Updated}, {"unchanged", c.Unchanged},
		{"deactivated", c.Deactivated}, {"deleted", c.Deleted}, {"restored", c.Restored},
		{"not_restored", c.NotRestored}, {"skipped", c.Skipped}, {"adopted", c.Adopted},
	} {
		if a.n > 0 {
			m.records.WithLabelValues(t.Source, a.action).Add(float64(a.n))
		}
	}
}

// directoryCollector counts the directory at scrape time, with one GROUP
// BY query for users and one for groups. Every configured source gets a
// series for each state, zero included, so that dashboards need no
// "absent" special cases.
type directoryCollector struct {
	store         *store.Store
	cfg           func() *config.Config
	log           *slog.Logger
	timeout       time.Duration
	users, groups *prometheus.Desc
	waiting       *prometheus.Desc
	retired       *prometheus.Desc
}

var userStates = []string{reconcile.StateActive, reconcile.StateInactive, reconcile.StateDeleted}

func (c *directoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.users
	ch <- c.groups
	ch <- c.waiting
	ch <- c.retired
}

func (c *directoryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.store.DirectoryCounts(ctx)
	if err != nil {
		c.log.Warn("metrics: could not count the directory", "err", err)
		ch <- prometheus.NewInvalidMetric(c.users, err)
		ch <- prometheus.NewInvalidMetric(c.groups, err)
		ch <- prometheus.NewInvalidMetric(c.waiting, err)
		ch <- prometheus.NewInvalidMetric(c.retired, err)
		return
	}
	// Retired sources are those the store knows and the configuration in
	// force does not name, read as the CLI and the admin API list them.
	cfg := c.cfg()
	retired, err := (&tasks.Runner{Store: c.store, Config: cfg}).Retired(ctx, counts)
	if err != nil {
		c.log.Warn("metrics: could not list the retired sources", "err", err)
		ch <- prometheus.NewInvalidMetric(c.retired, err)
	}
	for _, rs := range retired {
		ch <- prometheus.MustNewConstMetric(c.retired, prometheus.GaugeValue, 1, rs.Name)
	}
	var names []string
	for _, src := range cfg.Sources {
		names = append(names, src.Name)
	}
	for name := range counts.Users {
		names = append(names, name)
	}
	for name := range counts.Groups {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		for _, state := range userStates {
			ch <- prometheus.MustNewConstMetric(c.users, prometheus.GaugeValue, float64(counts.Users[name][state]), name, state)
		}
		ch <- prometheus.MustNewConstMetric(c.groups, prometheus.GaugeValue, float64(counts.Groups[name]), name)
		for _, status := range []string{store.StatusHeld, store.StatusQueued} {
			ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(counts.Waiting[name][status]), name, status)
		}
	}
}
