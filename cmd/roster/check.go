package main

import (
	"context"
	"fmt"
	"os"

	"github.com/rosterd/roster/config"
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
	} else if *path == "" || len(pos) > 0 {
		return usagef("name one file with --csv")
	}
	opts := csv.Options{PasswordMinLength: *minLen}
	if *source != "" {
		cfg, err := e.loadConfig()
		if err != nil {
			return err
		}
		src, ok := cfg.Source(*source)
		if !ok || src.Type != config.TypeCSV {
			return usagef("the config has no csv source %q", *source)
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
		fmt.Fprintf(e.stdout, "%s: %s; nothing of it would be imported\n", *path, plural(len(res.Errors), "error"))
		return exitError{exitFailed}
	}
	fmt.Fprintf(e.stdout, "%s: valid, %d people\n", *path, len(res.Records))
	return nil
}
