// Package daemon runs roster as a long-lived service: the HTTP listeners
// (health, readiness, metrics, the admin API of package admin, and the mux
// the SCIM and push handlers are mounted on), the cron scheduler, the file
// watcher and one task queue per source, all started and stopped together
// by Run.
//
// # Tasks
//
// Every enabled csv source has a queue served by its own goroutine. A
// trigger (schedule, watch, manual) starts a task at once when the source is
// idle; while a task runs, exactly one follow-up is kept, whatever the
// number of triggers that arrive meanwhile, and it runs when the task ends.
// An operator's request through the admin API ([Daemon.Enqueue]) joins the
// same queue; one that asks for force makes the follow-up forced.
// Tasks go through [tasks.Runner], which also holds the source's lock, so a
// `roster sync` of the same source or another replica (PostgreSQL) waits for
// the daemon's task and the other way round.
//
// A task that fails for a transient reason (the database unreachable, the
// directory changed underneath) is retried with its stored input after
// RetryBackoff, then twice as long each time, up to tasks.max_retries
// retries. A retry is dropped when a newer task of the source ran
// meanwhile: its input is older than what that task read.
//
// A task that fails while the database does not answer (an outage,
// however long) spends no retry: its source waits for the database. Once
// the database answers again, the tasks left running (their process lost
// them with the connection) are marked failed and each waiting source
// syncs once, reading its input afresh, so that a file changed during the
// outage is applied and the tasks table, the admin API and the metrics
// agree again.
//
// At start, tasks that a dead process left running are marked failed, and
// every enabled csv source that has never synced successfully syncs once,
// recorded with the trigger "schedule" (the daemon's own initiative). A
// source added by a reload is treated the same way.
//
// http sources are pulled like csv sources (on their schedule, at start
// when never synced, and when an operator asks). Push sources have a queue
// too: its jobs apply the pushes the push API stored, in order (see
// tasks.Runner.DrainPush); every PushPoll the daemon also looks for pushes
// another replica accepted and could not apply (it died), and at start for
// those this process left. scim sources have no queue: the SCIM handler
// writes directly.
//
// # File watching
//
// Watched files (csv sources with watch: true) are polled with stat(2):
// size, modification time and inode, so that an in-place write and a
// rename into place both count as changes. A change triggers a task only
// after the file has stayed unchanged for Debounce, so that a half-written
// file is never imported. A file changed while roster was not running is
// synced at start when it is newer than the source's last successful sync.
//
// # One daemon per SQLite file
//
// With SQLite, Run holds an flock(2) on <database>.daemon.lock for its
// whole life, and a second daemon on the same file stops with a message
// naming the lock. With PostgreSQL, several replicas may run: the
// per-source advisory locks keep each source's tasks exclusive.
//
// # Reload
//
// [Daemon.Reload] replaces the sources, schedules, watched files, tokens,
// limits, retries and log level without touching the listeners. The
// listen addresses, TLS files, store and log format need a restart; a
// reload that changes them says so in the log and keeps the running values.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/push"
)

// Defaults of the Daemon's tuning fields.
const (
	DefaultDrain           = 30 * time.Second
	DefaultRetryBackoff    = 5 * time.Second
	DefaultMaxRetryBackoff = 10 * time.Minute
	DefaultPollInterval    = time.Second
	DefaultPushPoll        = 10 * time.Second
	DefaultDebounce        = 2 * time.Second
	DefaultOutagePoll      = time.Second
	DefaultStoreBackoff    = time.Second
	DefaultMaxStoreBackoff = 30 * time.Second
)

// abandonGrace is how long Run still waits for a task after Drain, once the
// task's context is cancelled, for it to record itself as failed.
const abandonGrace = 5 * time.Second

// Daemon is roster's long-running service. Build it with New, set the
// tuning fields if needed, then call Run once.
type Daemon struct {
	// Drain bounds how long Run waits, after its context is cancelled, for
	// running tasks and in-flight requests; then running tasks are
	// cancelled (the next start marks any left unrecorded as failed).
	Drain time.Duration
	// RetryBackoff is the wait before the first automatic retry of a task
	// that failed for a transient reason; each further retry waits twice
	// as long, at most MaxRetryBackoff.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// PushPoll is how often push sources look for stored pushes that no
	// process is applying (accepted by a replica that died).
	PushPoll time.Duration
	// PollInterval is how often watched files are looked at; Debounce is
	// how long a changed file must stay unchanged before it is imported.
	PollInterval time.Duration
	Debounce     time.Duration
	// OutagePoll is how often the database is pinged while sources wait
	// for it to answer again (see recoverOutages).
	OutagePoll time.Duration
	// StoreBackoff is the wait after a start-up attempt found the database
	// unreachable; each further attempt waits twice as long, at most
	// MaxStoreBackoff (see Run).
	StoreBackoff    time.Duration
	MaxStoreBackoff time.Duration
	// StoreWaiting, when set, is called with the reason each time Run
	// finds the database unreachable at start (roster serve tells systemd).
	StoreWaiting func(err error)
	// Version is exported as roster_build_info{version}.
	Version string
	// LogLevel, when set, is set to log.level by every successful reload.
	LogLevel *slog.LevelVar

	store    *store.Store
	log      *slog.Logger
	metrics  *metrics
	gatherer prometheus.Gatherer
	// mux serves the main listener; metricsMux the metrics listener when
	// metrics_listen is set.
	mux        *http.ServeMux
	metricsMux *http.ServeMux
	// newRunner makes the task runner for a configuration; tests replace it.
	newRunner func(*config.Config) taskRunner

	reloadMu sync.Mutex     // one reload at a time
	workers  sync.WaitGroup // queue goroutines, including those of removed sources
	ready    chan struct{}  // closed when Run has started everything
	// listening is closed when the listeners serve, which they do before
	// the database answers: /healthz then answers, everything else 503.
	listening chan struct{}
	serving   atomic.Bool // readyz answers 503 while false
	// up is set once the database answered, was migrated and the task
	// queues started; until then only health, readiness and metrics are
	// served, and waiting says why /readyz answers 503.
	up      atomic.Bool
	waiting atomic.Pointer[string]
	outage  chan struct{} // capacity 1: "a source is stranded"
	// notReadyLogged is the last problem /readyz logged, so that a probe
	// every few seconds during an outage logs it once, not every time.
	notReadyLogged atomic.Pointer[string]
	watching       watchSet // the watcher's files, with their own lock
	sinks          sinkSet  // the sinks delivering, with their own lock

	// mu guards the fields below. Lock order: watching.mu, then mu, then
	// a queue's mu.
	mu      sync.Mutex
	cfg     *config.Config
	runner  taskRunner
	queues  map[string]*queue // enabled csv sources, while Run runs
	sched   *cron.Cron
	timers  map[*time.Timer]struct{} // pending automatic retries
	taskCtx context.Context          // the context of tasks, while Run runs
	running bool                     // Run has started its parts and not begun to stop
	started bool                     // Run was called
	addrs   []net.Addr               // main listener, then the metrics listener
	// stranded are the sources whose task failed while the database did
	// not answer; they sync again once it does (see recoverOutages).
	stranded map[string]bool
}

// taskRunner is what the daemon needs of tasks.Runner.
type taskRunner interface {
	Sync(ctx context.Context, source string, opt tasks.Options) (*tasks.Result, error)
	DrainPush(ctx context.Context, source string) (*tasks.Result, error)
	AcceptPush(ctx context.Context, source string, p *push.Payload) (*store.Task, error)
	Retry(ctx context.Context, id int64, trigger string) (*tasks.Result, error)
	Recover(ctx context.Context) ([]int64, error)
}

var _ taskRunner = (*tasks.Runner)(nil)

// New builds a daemon for a loaded configuration and a store, which need
// not answer yet: Run waits for it and migrates it. Its metrics are registered on reg, which must also be a
// prometheus.Gatherer (as a *prometheus.Registry is) for /metrics to
// serve them; nil makes a private registry.
func New(cfg *config.Config, st *store.Store, log *slog.Logger, reg prometheus.Registerer) (*Daemon, error) {
	if cfg == nil || st == nil {
		return nil, errors.New("daemon: a configuration and a store are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	gatherer, ok := reg.(prometheus.Gatherer)
	if !ok {
		return nil, fmt.Errorf("daemon: the metrics registerer %T is not a prometheus.Gatherer: pass a *prometheus.Registry", reg)
	}
	d := &Daemon{
		Drain:           DefaultDrain,
		RetryBackoff:    DefaultRetryBackoff,
		MaxRetryBackoff: DefaultMaxRetryBackoff,
		PollInterval:    DefaultPollInterval,
		PushPoll:        DefaultPushPoll,
		Debounce:        DefaultDebounce,
		OutagePoll:      DefaultOutagePoll,
		StoreBackoff:    DefaultStoreBackoff,
		MaxStoreBackoff: DefaultMaxStoreBackoff,
		store:           st,
		log:             log,
		gatherer:        gatherer,
		cfg:             cfg,
		timers:          map[*time.Timer]struct{}{},
		stranded:        map[string]bool{},
		outage:          make(chan struct{}, 1),
		ready:           make(chan struct{}),
		listening:       make(chan struct{}),
	}
	d.newRunner = func(c *config.Config) taskRunner {
		return &tasks.Runner{Store: st, Config: c, Log: log, Finished: func(t store.Task) { d.metrics.observe(&t) }}
	}
	d.runner = d.newRunner(cfg)
	m, err := newMetrics(reg, st, d.Config, log)
	if err != nil {
		return nil, err
	}
	d.metrics = m
	if d.sinks.metrics, err = newSinkMetrics(reg, st, d.Config, log, m.scrapeTimeout); err != nil {
		return nil, err
	}
	d.routes()
	if err := d.mountSCIM(reg); err != nil {
		return nil, err
	}
	return d, nil
}

// Config is the configuration in force: the one given to New or the last
// one a reload accepted. Handlers mounted later read tokens and limits
// from it on every request. It must not be modified.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

func (d *Daemon) currentRunner() (taskRunner, *config.Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runner, d.cfg
}

// Ready is closed once Run has bound its listeners, found the database
// answering and migrated, and started the scheduler, the watcher and the
// task queues.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Listening is closed once Run's listeners serve: /healthz answers, and
// until Ready everything but health, readiness and metrics answers 503.
func (d *Daemon) Listening() <-chan struct{} { return d.listening }

// Addr is the main listener's address, once Ready is closed.
func (d *Daemon) Addr() net.Addr { return d.addr(0) }

// MetricsAddr is the metrics listener's address, or nil when /metrics is
// served on the main listener.
func (d *Daemon) MetricsAddr() net.Addr { return d.addr(1) }

func (d *Daemon) addr(i int) net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i < len(d.addrs) {
		return d.addrs[i]
	}
	return nil
}

// Run starts the listeners, the task queues, the scheduler and the file
// watcher, and stops them all when ctx is cancelled: listeners stop
// accepting, in-flight requests and running tasks get Drain to finish,
// queued follow-ups are dropped (schedules and the start-up sync catch up
// next time). It returns nil after a shutdown asked for by ctx, and an
// error when it cannot start or a listener fails.
//
// The listeners serve first. While the database does not answer (a
// PostgreSQL that is down or still starting, an SQLite file another
// process keeps locked), Run serves /healthz, answers /readyz and every
// other route with 503, logs why and tries again after StoreBackoff, then
// twice as long each time up to MaxStoreBackoff; once the database answers
// it applies the migrations and starts the rest. A supervisor therefore
// sees a live process that is not ready, not a crash loop. Errors that
// waiting cannot cure (a schema newer than this roster, a failed
// migration) end Run.
func (d *Daemon) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return errors.New("daemon: Run was already called")
	}
	d.started = true
	cfg := d.cfg
	d.mu.Unlock()

	unlock, err := lockDatabase(d.store)
	if err != nil {
		return err
	}
	defer unlock()
	servers, err := d.listen(cfg)
	if err != nil {
		return err
	}
	d.setWaiting(reasonUnreachable)
	serveErr := make(chan error, len(servers))
	for _, s := range servers {
		go func() { serveErr <- s.serve() }()
	}
	d.serving.Store(true)
	close(d.listening)

	// Tasks outlive ctx by up to Drain; then this context is cancelled.
	taskCtx, cancelTasks := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTasks()
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	var watchers sync.WaitGroup
	upErr := make(chan error, 1)
	go func() { upErr <- d.bringUp(runCtx, taskCtx, &watchers) }()

	var runErr error
	for waitUp := true; ; {
		select {
		case <-ctx.Done():
			d.log.Info("stopping: draining requests and running tasks", "drain", d.Drain)
		case runErr = <-serveErr:
			d.log.Error("a listener failed; stopping", "err", runErr)
		case err := <-upErr:
			waitUp = false
			if err == nil || ctx.Err() != nil {
				continue
			}
			runErr = err
			d.log.Error("roster cannot start; stopping", "err", err)
		}
		cancelRun()
		if waitUp {
			<-upErr // bringUp starts nothing more once runCtx ends
		}
		break
	}
	d.stop(servers, cancelTasks)
	watchers.Wait()
	d.sinks.wg.Wait()
	if runErr == nil {
		d.log.Info("stopped")
	}
	return runErr
}

// bringUp waits for the database (see waitForStore), then starts the
// task queues, the scheduler, the watcher and the start-up syncs, and
// opens every route. It returns ctx's error when Run stops first; the
// watchers it starts end with ctx.
func (d *Daemon) bringUp(ctx, taskCtx context.Context, watchers *sync.WaitGroup) error {
	for {
		if err := d.waitForStore(ctx); err != nil {
			return err
		}
		err := d.startParts(ctx, taskCtx, watchers)
		if err == nil || ctx.Err() != nil || !store.IsUnavailable(err) {
			return err
		}
		d.log.Warn("the database stopped answering while roster started: waiting for it again", "err", err)
	}
}

// waitForStore returns once the database answers and is migrated, or
// with an error that waiting cannot cure, or ctx's.
func (d *Daemon) waitForStore(ctx context.Context) error {
	wait := d.StoreBackoff
	for attempt := 1; ; attempt++ {
		err := d.prepareStore(ctx)
		if err == nil {
			if attempt > 1 {
				d.log.Info("the database answers: starting", "driver", d.store.Driver(), "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !store.IsUnavailable(err) {
			return err
		}
		d.log.Warn("the database does not answer: /healthz is served, /readyz and every other route answer 503 until it does",
			"driver", d.store.Driver(), "err", err, "attempt", attempt, "retry_in", wait)
		if d.StoreWaiting != nil {
			d.StoreWaiting(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, d.MaxStoreBackoff)
	}
}

// prepareStore pings the database and applies the migrations it lacks.
func (d *Daemon) prepareStore(ctx context.Context) error {
	d.setWaiting(reasonUnreachable)
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	err := d.store.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("connect to the %s database: %w", d.store.Driver(), err)
	}
	d.setWaiting(reasonMigrations)
	applied, err := d.store.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		d.log.Info("database migrated", "driver", d.store.Driver(), "versions", applied)
	}
	return nil
}

// setWaiting sets the reason /readyz gives until the daemon is up.
func (d *Daemon) setWaiting(reason string) { d.waiting.Store(&reason) }

// startParts starts everything that needs the database, with the
// configuration in force (a reload waits meanwhile, and one that came
// while the database did not answer has left its sources for this to
// record).
func (d *Daemon) startParts(ctx, taskCtx context.Context, watchers *sync.WaitGroup) error {
	d.setWaiting(reasonStopping)
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg := d.Config()
	if err := d.recordSources(ctx, cfg); err != nil {
		return err
	}
	// Before any task or SCIM write creates a user (startSinks wipes).
	if err := d.store.KeepInitialPasswords(cfg.Secrets.KeyBytes(), cfg.PasswordSinks()); err != nil {
		return err
	}
	runner, _ := d.currentRunner()
	if failed, err := runner.Recover(ctx); err != nil {
		d.log.Warn("could not check for tasks interrupted by a crash", "err", err)
	} else if len(failed) > 0 {
		d.log.Warn("tasks interrupted by a crash were marked failed", "tasks", failed)
	}
	d.metrics.start(ctx, d.store, cfg, d.Version)

	d.mu.Lock()
	if err := ctx.Err(); err != nil {
		d.mu.Unlock()
		return err
	}
	d.taskCtx, d.running = taskCtx, true
	d.updateQueues(cfg)
	d.reschedule(cfg)
	d.mu.Unlock()
	if err := d.startSinks(ctx, cfg); err != nil {
		return err
	}
	watchers.Go(func() { d.pollPushes(ctx) })
	watchers.Go(func() { d.recoverOutages(ctx) })
	watchers.Go(func() { d.watch(ctx) })
	d.initialSyncs(ctx, cfg, nil)

	d.up.Store(true)
	close(d.ready)
	d.log.Info("roster is running", "sources", len(cfg.Sources))
	return nil
}

// stop shuts everything down within Drain (plus abandonGrace for tasks
// that must be cancelled).
func (d *Daemon) stop(servers []*server, cancelTasks context.CancelFunc) {
	d.serving.Store(false)
	deadline := time.Now().Add(d.Drain)

	d.mu.Lock()
	d.running = false
	if d.sched != nil {
		d.sched.Stop()
		d.sched = nil
	}
	for t := range d.timers {
		t.Stop()
	}
	clear(d.timers)
	for name, q := range d.queues {
		if dropped := q.close(); dropped != nil {
			d.log.Info("a queued task was dropped by the shutdown", "source", name, "trigger", dropped.trigger)
		}
	}
	d.queues = nil
	d.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			sctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			if err := s.Shutdown(sctx); err != nil {
				d.log.Warn("requests still running at the end of the drain time were cut off", "listener", s.name, "err", err)
				s.Close()
			}
		})
	}

	workersDone := make(chan struct{})
	go func() {
		d.workers.Wait()
		close(workersDone)
	}()
	select {
	case <-workersDone:
	case <-time.After(time.Until(deadline)):
		d.log.Warn("tasks still running at the end of the drain time are cancelled", "drain", d.Drain)
		cancelTasks()
		select {
		case <-workersDone:
		case <-time.After(abandonGrace):
			d.log.Error("a task did not stop; it will be marked failed at the next start")
		}
	}
	wg.Wait()
}

// recordSources makes sure the store knows every configured source.
func (d *Daemon) recordSources(ctx context.Context, cfg *config.Config) error {
	names, types := make([]string, 0, len(cfg.Sources)), make([]string, 0, len(cfg.Sources))
	for _, s := range cfg.Sources {
		names, types = append(names, s.Name), append(types, s.Type)
	}
	return d.store.SyncSources(ctx, names, types)
}

// initialSyncs triggers every enabled csv source that has never synced
// successfully; only, when not nil, limits it to those sources.
func (d *Daemon) initialSyncs(ctx context.Context, cfg *config.Config, only map[string]bool) {
	for _, src := range cfg.Sources {
		if !queued(&src) || only != nil && !only[src.Name] {
			continue
		}
		if src.Type == config.TypePush {
			// Pushes accepted before a crash or a stop are applied now.
			if err := d.Trigger(src.Name, tasks.TriggerPush); err != nil {
				d.log.Warn("could not apply the stored pushes", "source", src.Name, "err", err)
			}
			continue
		}
		state, err := d.store.GetSource(ctx, src.Name)
		if err != nil {
			d.log.Warn("could not read the state of a source", "source", src.Name, "err", err)
			continue
		}
		if state.LastSuccessAt == nil {
			d.log.Info("source has never synced: syncing it now", "source", src.Name)
			if err := d.Trigger(src.Name, tasks.TriggerSchedule); err != nil {
				d.log.Warn("could not start the first sync", "source", src.Name, "err", err)
			}
		}
	}
}

// pollPushes looks every PushPoll for pushes that wait (accepted by a
// replica that died, or left by a drain that stopped) and drains the push
// sources that have some, until ctx ends. A source with nothing waiting
// costs one indexed query: no drain, no lock, no log line (an idle daemon
// used to queue a drain every PushPoll, taking the source's lock and
// logging "sync queued" each time).
func (d *Daemon) pollPushes(ctx context.Context) {
	t := time.NewTicker(d.PushPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, src := range d.Config().Sources {
			if !queued(&src) || src.Type != config.TypePush {
				continue
			}
			// When the look fails (the database down), the drain runs
			// anyway: it fails the same way, and its source then waits
			// for the database (see waitForDatabase).
			if waiting, err := d.store.PushesWaiting(ctx, src.Name); err == nil && !waiting {
				continue
			}
			_ = d.Trigger(src.Name, tasks.TriggerPush) // a busy queue merges it
		}
	}
}

// queued reports whether the daemon runs tasks of a source.
func queued(src *config.Source) bool {
	return src.Enabled && (src.Type == config.TypeCSV || src.Type == config.TypeHTTP || src.Type == config.TypeLDAP || src.Type == config.TypePush)
}

// pulled reports whether the daemon syncs a source on a schedule.
func pulled(src *config.Source) bool { return queued(src) && src.Type != config.TypePush }

// reschedule replaces the cron scheduler by one for cfg; d.mu is held.
func (d *Daemon) reschedule(cfg *config.Config) {
	if d.sched != nil {
		d.sched.Stop()
	}
	c := cron.New(cron.WithLogger(cronLogger{d.log}))
	for _, src := range cfg.Sources {
		if src.Schedule == "" || !src.Enabled {
			continue
		}
		if !pulled(&src) {
			d.log.Debug("schedule not used: only csv and http sources sync on a schedule", "source", src.Name, "type", src.Type)
			continue
		}
		sched, err := parseSchedule(src.Schedule)
		if err != nil { // config.Load rejects these; this is a second line of defence
			d.log.Error("invalid schedule; the source is not scheduled", "source", src.Name, "schedule", src.Schedule, "err", err)
			continue
		}
		name := src.Name
		// Replicas fire the same tick at about the same time; whoever
		// comes second within half an interval leaves it to the first.
		next := sched.Next(time.Now())
		half := sched.Next(next).Sub(next) / 2
		c.Schedule(sched, cron.FuncJob(func() {
			if err := d.push(name, job{trigger: tasks.TriggerSchedule, oncePer: half}); err != nil {
				d.log.Warn("scheduled sync not started", "source", name, "err", err)
			}
		}))
	}
	c.Start()
	d.sched = c
}

// parseSchedule is cron.ParseStandard without its panics on odd input.
func parseSchedule(spec string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return cron.ParseStandard(spec)
}

// cronLogger sends robfig/cron's messages to slog (its errors only; its
// informational lines are per job run and would drown the task lines).
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(string, ...any) {}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("scheduler: "+msg, append([]any{"err", err}, kv...)...)
}
