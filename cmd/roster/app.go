package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources"
)

// Exit codes (SPEC §8.1, and the README's table of them): 4 and 5 tell a
// script that the request was well formed but named nothing, or something
// whose state refuses it, which retrying with other flags will not fix.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitHeld     = 3
	exitNotFound = 4 // no such task or source, no store yet
	exitRefused  = 5 // the task or source is not in a state that allows it
)

// usageError makes run exit with exitUsage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitError carries an exit code chosen by a command (failed, held).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

type command struct {
	name, args, help string
	run              func(ctx context.Context, e *env, args []string) error
}

// env is what every command gets: its streams and the global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	configPath     string
	configSet      bool
	verbose        bool
	// serving: the note that the built-in default config is in use goes
	// to serve's log instead of a bare line on stderr.
	serving     bool
	defaultSaid bool
	// fs is the flag set of the command being run (docs_test.go lists
	// each command's flags through it).
	fs *flag.FlagSet
}

var commands []command

func init() {
	commands = []command{
		{"serve", "[--listen ADDR]", "run the daemon: schedules, file watching, health and metrics (--listen or $ROSTER_LISTEN overrides listen)", runServe},
		{"sync", "SOURCE [--dry-run] [--force] [--file F] [--json]", "run a sync task of a source now", runSync},
		{"check", "--csv FILE [--password-min-length N] [--source NAME] | --source LDAP-SOURCE", "validate a CSV file without a database (--source: with that csv source's extra_columns); or bind to an ldap source, read it and print what a sync would plan, writing nothing", runCheck},
		{"sources", "[--json] | retire NAME [--orphans deactivate|delete] [--json]", "list the sources (configured and retired) with their state, counts and last task; retire: plan the removal of a retired source's users as a held task", runSources},
		{"sinks", "[--json]", "list the sinks (downstream SCIM services) with their state, lag, queue and last error", runSinks},
		{"sink", "NAME [--approve] [--run] [--dry-run] [--json]", "show one sink: state, lag, queue, failures in a row, last error and its recent runs; --approve lets a sink held by max_removals deliver its removals; --run runs it now and prints the run; --dry-run prints what it would send now, sending nothing", runSink},
		{"tasks", "[--source S] [--status X] [--limit N] [--offset N] [--json]", "list tasks, newest first", runTasks},
		{"task", "ID [--json]", "show one task with its errors and, when held, its plan", runTask},
		{"retry", "ID [--json]", "run a failed task's stored input again as a new task", runRetry},
		{"approve", "ID [--json]", "apply the plan of a task held by the safety valve", runApprove},
		{"reject", "ID [--json]", "discard the plan of a held task", runReject},
		{"migrate", "", "apply the database migrations this version needs", runMigrate},
		{"token", "[--generate]", "read a token on stdin and print the hash for the config", runToken},
		{"version", "", "print the version", runVersion},
		{"help", "", "show this help", nil},
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	name := args[0]
	for _, c := range commands {
		if c.name != name || c.run == nil {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var ee exitError
		var ue usageError
		var verr *sources.ValidationError
		switch {
		case err == nil:
			return exitOK
		case errors.As(err, &ee):
			return ee.code
		case errors.As(err, &verr):
			// An invalid upload: every error, as `roster check` prints them.
			for _, fe := range verr.Errors {
				fmt.Fprintln(stdout, fe.Message)
			}
			fmt.Fprintf(stderr, "roster %s: the file is invalid (%s); nothing was changed\n", name, sources.Plural(len(verr.Errors), "error"))
			return exitFailed
		case errors.Is(err, flag.ErrHelp):
			// Asked for: the usage on stdout, and no error.
			fmt.Fprintf(stdout, "usage: roster %s %s\n\n%s.\n\n", c.name, c.args, c.help)
			fmt.Fprintln(stdout, globalFlags)
			return exitOK
		case errors.Is(err, store.ErrNotFound), errors.Is(err, errNoStore):
			fmt.Fprintf(stderr, "roster %s: %s\n", name, strings.TrimPrefix(err.Error(), "usage: "))
			return exitNotFound
		case errors.Is(err, tasks.ErrState):
			fmt.Fprintf(stderr, "roster %s: %s\n", name, strings.TrimPrefix(err.Error(), "usage: "))
			return exitRefused
		case errors.As(err, &ue), errors.Is(err, tasks.ErrUsage):
			fmt.Fprintf(stderr, "roster %s: %s\n", name, strings.TrimPrefix(err.Error(), "usage: "))
			fmt.Fprintf(stderr, "usage: roster %s %s\n", c.name, c.args)
			return exitUsage
		default:
			fmt.Fprintf(stderr, "roster %s: %v\n", name, err)
			if errors.Is(err, errConfig) {
				return exitUsage
			}
			return exitFailed
		}
	}
	fmt.Fprintf(stderr, "roster: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "roster keeps a user directory in sync with its sources and serves it over SCIM 2.0.")
	fmt.Fprintln(w, "\nUsage: roster COMMAND [flags] [arguments]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.help)
	}
	fmt.Fprintln(w, "\n"+globalFlags)
	fmt.Fprintln(w, "\nExit codes: 0 done, 1 failed, 2 usage or configuration error, 3 held by the safety")
	fmt.Fprintln(w, "valve, 4 no such task, source or store, 5 refused by the state of the task or source.")
}

const globalFlags = `Every command takes --config FILE (default roster.yaml, or $ROSTER_CONFIG) and -v for
informational logs; flags may stand before or after the arguments; --help shows a command's usage.`

// flags returns a flag set with the global flags bound to e.
func (e *env) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("config", "configuration file", func(s string) error { e.configPath, e.configSet = s, true; return nil })
	fs.BoolVar(&e.verbose, "v", false, "log informational messages")
	e.fs = fs
	return fs
}

// parse parses flags that may stand before, between or after positional
// arguments and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// loadConfig reads --config, $ROSTER_CONFIG or ./roster.yaml; without any
// of them (and no roster.yaml) it uses the built-in default.
func (e *env) loadConfig() (*config.Config, error) {
	path := e.configPath
	if !e.configSet {
		if env := os.Getenv("ROSTER_CONFIG"); env != "" {
			path = env
		} else {
			path = "roster.yaml"
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				wd, err := os.Getwd()
				if err != nil {
					return nil, err
				}
				cfg := config.Default(wd)
				if !e.serving && !e.defaultSaid {
					e.defaultSaid = true
					fmt.Fprintf(e.stderr, "roster: no roster.yaml here, no --config, no $ROSTER_CONFIG: using the built-in default (store %s, push source api)\n", cfg.Store.DSN)
				}
				return cfg, nil
			}
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	return cfg, nil
}

// errConfig marks configuration problems: exit code 2.
var errConfig = errors.New("configuration error")

func (e *env) logger(cfg *config.Config) *slog.Logger {
	level := cfg.Log.SlogLevel()
	if !e.verbose && level < slog.LevelWarn {
		level = slog.LevelWarn // a CLI prints its results; logs are for trouble
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// notFoundError names what does not exist (exit 4).
type notFoundError struct{ msg string }

func (e notFoundError) Error() string        { return e.msg }
func (e notFoundError) Is(target error) bool { return target == store.ErrNotFound }

// errNoStore: a read-only command found no store to read (exit 4).
var errNoStore = errors.New("no roster store")

// openExisting is open for commands that only read: where no store exists
// yet it creates none (no empty roster.db, no lock folder) and says so.
func (e *env) openExisting(ctx context.Context) (*tasks.Runner, func(), error) {
	cfg, err := e.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	ok, err := store.Exists(ctx, cfg.Store.Driver, cfg.Store.DSN)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		where := cfg.Store.DSN
		if cfg.Store.Driver == config.DriverPostgres {
			where = "the PostgreSQL database of store.dsn (no migration applied)"
		}
		return nil, nil, fmt.Errorf("%w at %s: nothing has run with this configuration yet; `roster serve`, `roster sync` or `roster migrate` creates it (is --config right?)", errNoStore, where)
	}
	return e.openConfig(ctx, cfg)
}

// open loads the configuration and opens the migrated store, records the
// configured sources and fails tasks that a dead process left running.
func (e *env) open(ctx context.Context) (*tasks.Runner, func(), error) {
	cfg, err := e.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	return e.openConfig(ctx, cfg)
}

func (e *env) openConfig(ctx context.Context, cfg *config.Config) (*tasks.Runner, func(), error) {
	log := e.logger(cfg)
	s, err := store.Open(ctx, cfg.Store.Driver, cfg.Store.DSN)
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, nil, err
	}
	// A sync run here creates users as the daemon's would: their
	// initial passwords are kept for the sinks that ask for them.
	if err := s.KeepInitialPasswords(cfg.Secrets.KeyBytes(), cfg.PasswordSinks()); err != nil {
		s.Close()
		return nil, nil, err
	}
	var names, types []string
	for _, src := range cfg.Sources {
		names, types = append(names, src.Name), append(types, src.Type)
	}
	if err := s.SyncSources(ctx, names, types); err != nil {
		s.Close()
		return nil, nil, err
	}
	r := &tasks.Runner{Store: s, Config: cfg, Log: log}
	if failed, err := r.Recover(ctx); err != nil {
		log.Warn("could not check for interrupted tasks", "err", err)
	} else if len(failed) > 0 {
		log.Warn("tasks interrupted by a crash were marked failed", "tasks", failed)
	}
	return r, func() { s.Close() }, nil
}

// configName names where the configuration came from, for messages.
func configName(cfg *config.Config) string {
	if cfg.Path == "" {
		return "the built-in default configuration"
	}
	return cfg.Path
}
