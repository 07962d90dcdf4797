package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon"
	"github.com/rosterd/roster/daemon/sdnotify"
	"github.com/rosterd/roster/daemon/store"
)

// runServe runs the daemon until ctx ends (SIGTERM or SIGINT, see main):
// it then drains running tasks and requests and exits 0. A second SIGTERM
// or SIGINT exits at once, with code 1; tasks cut off are marked failed at
// the next start. SIGHUP reloads the configuration (see daemon.Reload).
// Without a configuration file roster serves the built-in default.
//
// The listen address is --listen, else $ROSTER_LISTEN, else the config's
// listen (so that a demo or a second instance needs no edited file); it
// holds across reloads.
func runServe(ctx context.Context, e *env, args []string) error {
	fs := e.flags("serve")
	listen := fs.String("listen", "", "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("serve takes no arguments")
	}
	e.serving = true // the log below says when the built-in default is used
	override, from := *listen, "--listen"
	if override == "" {
		override, from = os.Getenv("ROSTER_LISTEN"), "$ROSTER_LISTEN"
	}
	// The published tokens are checked against the listen address the
	// daemon will use, override included.
	load := func() (*config.Config, error) {
		cfg, err := e.loadConfig()
		if err != nil {
			return nil, err
		}
		if override != "" {
			if err := cfg.SetListen(override, from); err != nil {
				return nil, fmt.Errorf("%w: %w", errConfig, err)
			}
		}
		if err := config.CheckPublishedTokens(cfg); err != nil {
			return nil, fmt.Errorf("%w: %w", errConfig, err)
		}
		return cfg, nil
	}
	// Signals are caught from here on; they are acted upon once the
	// daemon exists (SIGHUP would otherwise kill roster while it starts).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigs)

	cfg, err := load()
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.SlogLevel())
	log := serveLogger(e.stderr, cfg.Log.Format, level)
	slog.SetDefault(log) // packages that log on their own write the same format
	if cfg.Path == "" {
		log.Info("no configuration file: using the built-in default", "dir", cfg.Dir, "listen", cfg.Listen, "store", cfg.Store.DSN)
	} else {
		log.Info("configuration loaded", "path", cfg.Path)
	}
	if override != "" {
		log.Info("listen address from "+from, "listen", cfg.Listen)
	}
	if !cfg.TLS.Enabled() && !config.IsLoopback(cfg.Listen) {
		log.Warn("listening beyond loopback without TLS: tokens and directory data cross the network in clear text unless a TLS proxy or mesh in front terminates it (set tls.cert_file and tls.key_file to serve TLS)",
			"listen", cfg.Listen)
	}
	if limit := debug.SetMemoryLimit(-1); limit < math.MaxInt64 {
		// From GOMEMLIMIT or the cgroup (see daemon/memlimit).
		log.Info("soft memory limit", "MiB", limit>>20)
	}

	// The database need not answer yet: the daemon serves /healthz and
	// waits for it, then migrates it (see daemon.Run), so that a
	// PostgreSQL that is down or still starting makes roster unready, not
	// a process in a restart loop.
	st, err := store.Connect(cfg.Store.Driver, cfg.Store.DSN)
	if err != nil {
		return err
	}
	defer st.Close()

	d, err := daemon.New(cfg, st, log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	d.Version = version
	d.LogLevel = level
	d.StoreWaiting = func(err error) {
		notify(log, "STATUS=waiting for the database, /readyz answers 503: "+err.Error())
	}

	// The daemon stops when this function's signal handling says so, not
	// when main's signal context ends: that one is cancelled by the same
	// SIGTERM, and the daemon would log "stopped" before the line below
	// said why.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		stopping := false
		for {
			select {
			case <-done:
				return
			case sig := <-sigs:
				switch {
				case sig == syscall.SIGHUP && !stopping:
					log.Info("SIGHUP: reloading the configuration")
					notify(log, "RELOADING=1")
					d.Reload(ctx, load) //nolint:errcheck // Reload logs why it refused
					notify(log, "READY=1")
				case sig == syscall.SIGHUP:
				case stopping:
					log.Error("second signal: exiting now; tasks cut off are marked failed at the next start", "signal", sig.String())
					os.Exit(exitFailed)
				default:
					stopping = true
					log.Info("signal received: stopping (send it again to exit at once)", "signal", sig.String())
					notify(log, "STOPPING=1")
					cancel()
				}
			}
		}
	}()
	go tellSystemd(ctx, d, log)
	return d.Run(ctx)
}

// loadServeConfig is loadConfig for the daemon, at start and on SIGHUP:
// a configuration that accepts a token printed in roster's examples is
// refused as a configuration error (see config.CheckPublishedTokens).
// tellSystemd reports readiness once the daemon's listeners serve, then
// pings the watchdog at half its interval for as long as the daemon runs
// (Type=notify and WatchdogSec= in the unit). The process is up then,
// though the database may not answer yet: systemd would otherwise kill it
// after TimeoutStartSec= and start it again, the restart loop that waiting
// for the database avoids; /readyz tells whether it serves, and the
// unit's status line says what it waits for.
func tellSystemd(ctx context.Context, d *daemon.Daemon, log *slog.Logger) {
	select {
	case <-ctx.Done():
		return
	case <-d.Listening():
	}
	notify(log, "READY=1")
	up := d.Ready()
	var tick <-chan time.Time
	if every, ok := sdnotify.WatchdogInterval(); ok {
		t := time.NewTicker(every / 2)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-up:
			notify(log, "STATUS=running")
			up = nil
		case <-tick:
			notify(log, "WATCHDOG=1")
		}
	}
}

func notify(log *slog.Logger, state string) {
	if _, err := sdnotify.Notify(state); err != nil {
		log.Warn("could not notify systemd", "state", state, "err", err)
	}
}

// serveLogger logs as log.format says, at a level a reload can change.
func serveLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
