package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/csv"
)

// runCheck validates a CSV file on its own: no database, and no config
// unless --source names a csv source of it, whose extra_columns and
// password_min_length then apply. Errors that need the directory (a login
// owned by another source) show up only in a sync.
func runCheck(ctx context.Context, e *env, args []string) error {
	fs := e.flags("check")
	path := fs.String("csv", "", "")
	minLen := fs.Int("password-min-length", csv.DefaultPasswordMinLength, "")
	source := fs.String("source", "", "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *path == "" && len(pos) == 1 {
		*path = pos[0]
	} else if *path == "" && len(pos) == 0 && *source != "" {
		return checkSource(ctx, e, *source)
	} else if *path == "" || len(pos) > 0 {
		return usagef("name one file with --csv, or an ldap source with --source")
	}
	opts := csv.Options{PasswordMinLength: *minLen}
	if *source != "" {
		cfg, err := e.loadConfig()
		if err != nil {
			return err
		}
		src, ok := cfg.Source(*source)
		if !ok || src.Type != config.TypeCSV {
			return usagef("the config has no csv source %q (--csv checks a file for a csv source)", *source)
		}
		opts.Extra, opts.PasswordMinLength = src.ExtraColumns, src.PasswordMinLength
		opts.Check = cfg.Attributes.Model().Check
	}
	f, err := os.Open(*path)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := csv.Read(ctx, f, opts)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stdout, "warning: %s\n", w)
	}
	for _, fe := range res.Errors {
		fmt.Fprintln(e.stdout, fe.Message)
	}
	if len(res.Errors) > 0 {
		fmt.Fprintf(e.stdout, "%s: %s; nothing of it would be imported\n", *path, sources.Plural(len(res.Errors), "error"))
		return exitError{exitFailed}
	}
	fmt.Fprintf(e.stdout, "%s: valid, %d people\n", *path, len(res.Records))
	return nil
}

// checkSource binds to an ldap source's server, reads it and prints what a
// sync would plan, writing nothing: the plan is made against the
// configured store when it exists (opened as it is: no migration, no
// source registered, no task), and against an empty directory otherwise.
func checkSource(ctx context.Context, e *env, name string) error {
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	src, ok := cfg.Source(name)
	switch {
	case !ok:
		return usagef("the config has no source %q", name)
	case src.Type == config.TypeCSV:
		return usagef("source %q is a csv source: check a file for it with --csv FILE --source %s", name, name)
	case src.Type != config.TypeLDAP:
		return usagef("source %q is a %s source; --source alone checks ldap sources", name, src.Type)
	}
	s, note, closeStore, err := openForCheck(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	r := &tasks.Runner{Store: s, Config: cfg, Log: e.logger(cfg)}
	res, err := r.Sync(ctx, name, tasks.Options{Trigger: tasks.TriggerManual, DryRun: true})
	if err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintf(e.stdout, "%s: %s", name, note)
	}
	return printDryRun(e.stdout, name, res, false)
}

// openForCheck opens the configured store when it exists and is migrated,
// and otherwise an empty store in a temporary folder, removed on Close,
// with a note saying so.
func openForCheck(ctx context.Context, cfg *config.Config) (*store.Store, string, func(), error) {
	if cfg.Store.Driver != store.SQLite || sqliteExists(cfg.Store.DSN) {
		s, err := store.Open(ctx, cfg.Store.Driver, cfg.Store.DSN)
		if err != nil {
			return nil, "", nil, err
		}
		v, err := s.SchemaVersion(ctx)
		if err == nil && v == store.Latest() {
			return s, "", func() { s.Close() }, nil
		}
		s.Close()
		if err != nil {
			return nil, "", nil, err
		}
	}
	dir, err := os.MkdirTemp("", "roster-check-")
	if err != nil {
		return nil, "", nil, err
	}
	s, err := store.Open(ctx, store.SQLite, filepath.Join(dir, "empty.db"))
	if err == nil {
		_, err = s.Migrate(ctx)
	}
	if err != nil {
		if s != nil {
			s.Close()
		}
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	return s, "the store is empty, not migrated or not there yet: planned against an empty directory\n",
		func() { s.Close(); os.RemoveAll(dir) }, nil
}

// sqliteExists reports whether an SQLite DSN names a file that exists.
func sqliteExists(dsn string) bool {
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	_, err := os.Stat(path)
	return err == nil
}
