package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/rosterd/roster/config"
)

// Reload replaces the configuration in force by the one load returns (on
// SIGHUP, `roster serve` reads the config file again). Sources, schedules,
// watched files, tokens, limits, retries and the log level change at once;
// the listeners are not touched, so no request is dropped, and running
// tasks finish with the settings they started with. Changes to the listen
// addresses, TLS files, store and log format need a restart: they are
// logged and the running values stay. A configuration that does not load
// or validate is refused: the reason is logged and returned, the running
// configuration stays, and roster_config_last_reload_successful is 0 until
// a reload succeeds. Sources added by the reload that have never synced
// sync once.
func (d *Daemon) Reload(ctx context.Context, load func() (*config.Config, error)) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := load()
	if err != nil {
		return d.refuse(err)
	}
	old := d.Config()
	cfg = keepRestartOnly(old, cfg, d.log)
	if err := d.recordSources(ctx, cfg); err != nil {
		return d.refuse(err)
	}
	before := map[string]bool{}
	for _, src := range old.Sources {
		if queued(&src) {
			before[src.Name] = true
		}
	}
	added := map[string]bool{}
	for _, src := range cfg.Sources {
		if queued(&src) && !before[src.Name] {
			added[src.Name] = true
		}
	}

	d.mu.Lock()
	d.cfg, d.runner = cfg, d.newRunner(cfg)
	running := d.running
	if running {
		d.updateQueues(cfg)
		d.reschedule(cfg)
	}
	d.mu.Unlock()

	if d.LogLevel != nil {
		d.LogLevel.Set(cfg.Log.SlogLevel())
	}
	d.metrics.reloadOK.Set(1)
	d.metrics.reloadTime.SetToCurrentTime()
	d.metrics.loadLastSuccess(ctx, d.store, cfg)
	d.log.Info("configuration reloaded", "path", cfg.Path, "sources", len(cfg.Sources), "tokens", len(cfg.Tokens), "log_level", cfg.Log.Level)
	if running && len(added) > 0 {
		d.initialSyncs(ctx, cfg, added)
	}
	return nil
}

func (d *Daemon) refuse(err error) error {
	d.metrics.reloadOK.Set(0)
	d.log.Error("configuration reload refused; the running configuration stays", "err", err)
	return fmt.Errorf("reload refused: %w", err)
}

// keepRestartOnly returns cfg with the settings that only a restart can
// change set back to old's, and logs each one that differed.
func keepRestartOnly(old, cfg *config.Config, log *slog.Logger) *config.Config {
	c := *cfg
	keep := func(key string, differs bool) {
		if differs {
			log.Warn("changing this setting needs a restart; the running value stays until then", "key", key)
		}
	}
	keep("listen", c.Listen != old.Listen)
	keep("metrics_listen", c.MetricsListen != old.MetricsListen)
	keep("tls", c.TLS != old.TLS)
	keep("store", c.Store.Driver != old.Store.Driver || c.Store.DSN != old.Store.DSN)
	keep("log.format", c.Log.Format != old.Log.Format)
	c.Listen, c.MetricsListen, c.TLS = old.Listen, old.MetricsListen, old.TLS
	c.Store.Driver, c.Store.DSN = old.Store.Driver, old.Store.DSN
	c.Log.Format = old.Log.Format
	return &c
}
