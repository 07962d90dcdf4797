package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/adminui"
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
// sync once. Admin page sessions of a token the reload takes away (removed,
// rotated, or without the scope admin) end on every replica: coming back
// later does not revive them.
func (d *Daemon) Reload(ctx context.Context, load func() (*config.Config, error)) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := load()
	if err != nil {
		return d.refuse(err)
	}
	old := d.Config()
	if !config.SameAttributes(old.Attributes, cfg.Attributes) {
		// The SCIM endpoint serves one schema for the life of the process:
		// identity providers read /Schemas once, and a filter or sort
		// compiled for one declaration would meet values of another.
		return d.refuse(fmt.Errorf("attributes (the custom attributes and their schema) changed; restart roster to serve the new ones"))
	}
	cfg = keepRestartOnly(old, cfg, d.log)
	// Before the database first answered, Run records the sources of the
	// configuration in force once it does (it holds reloadMu meanwhile).
	up := d.up.Load()
	if up {
		if err := d.recordSources(ctx, cfg); err != nil {
			return d.refuse(err)
		}
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

	if up {
		d.revokeSessions(ctx, old, cfg)
		if err := d.updateSinks(cfg); err != nil {
			d.log.Error("reload: the sinks could not be updated; they run as before", "err", err)
		}
	}
	if d.LogLevel != nil {
		d.LogLevel.Set(cfg.Log.SlogLevel())
	}
	d.metrics.reloadOK.Set(1)
	d.metrics.reloadTime.SetToCurrentTime()
	if up {
		d.metrics.loadLastSuccess(ctx, d.store, cfg)
	}
	d.log.Info("configuration reloaded", "path", cfg.Path, "sources", len(cfg.Sources), "tokens", len(cfg.Tokens), "log_level", cfg.Log.Level)
	if running && len(added) > 0 {
		d.initialSyncs(ctx, cfg, added)
	}
	return nil
}

// revokeSessions ends the admin page sessions of every token that could
// log in under old and cannot under cfg. The new configuration already
// refuses them here; renewing the token's session epoch also refuses them
// on replicas that still run the old configuration, and if the token
// comes back. A failure is logged and does not refuse the reload: the
// token stays refused here all the same.
func (d *Daemon) revokeSessions(ctx context.Context, old, cfg *config.Config) {
	for _, name := range lostAdmin(old, cfg) {
		if err := adminui.RevokeSessions(ctx, d.store, name); err != nil {
			d.log.Error("reload: the admin page sessions of a removed token could not be ended on other replicas", "token", name, "err", err)
			continue
		}
		d.log.Info("reload: admin page sessions ended", "token", name)
	}
}

// lostAdmin names the tokens with the scope admin in old that cfg removes,
// rotates or takes the scope away from.
func lostAdmin(old, cfg *config.Config) []string {
	var names []string
	for _, t := range old.Tokens {
		if !t.HasScope(config.ScopeAdmin) {
			continue
		}
		kept := false
		for _, n := range cfg.Tokens {
			if n.Name == t.Name && n.Hash == t.Hash && n.HasScope(config.ScopeAdmin) {
				kept = true
			}
		}
		if !kept {
			names = append(names, t.Name)
		}
	}
	return names
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
