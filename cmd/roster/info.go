package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if v == "" {
		v = "(devel)"
		if ok && info.Main.Version != "" {
			v = info.Main.Version
		}
	}
	goVersion := ""
	if ok {
		goVersion = info.GoVersion
	}
	return fmt.Sprintf("roster %s (%s)", v, goVersion)
}

func runVersion(_ context.Context, e *env, args []string) error {
	if _, err := parse(e.flags("version"), args); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, versionString())
	return nil
}

// runToken prints the config hash of a token read on stdin, or makes a new
// random token. The clear token is printed only when generated.
func runToken(_ context.Context, e *env, args []string) error {
	fs := e.flags("token")
	gen := fs.Bool("generate", false, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var token string
	if *gen {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		token = base64.RawURLEncoding.EncodeToString(b)
		fmt.Fprintf(e.stdout, "token: %s\n", token)
	} else {
		b, err := io.ReadAll(io.LimitReader(e.stdin, 64<<10))
		if err != nil {
			return err
		}
		token = strings.TrimRight(string(b), "\r\n")
		if token == "" {
			return usagef("write the token on stdin, e.g. printf %%s \"$TOKEN\" | roster token")
		}
	}
	sum := sha256.Sum256([]byte(token))
	if *gen {
		fmt.Fprint(e.stdout, "hash:  ")
	}
	fmt.Fprintf(e.stdout, "sha256:%s\n", hex.EncodeToString(sum[:]))
	return nil
}

func runMigrate(ctx context.Context, e *env, args []string) error {
	if _, err := parse(e.flags("migrate"), args); err != nil {
		return err
	}
	// open applies the migrations; say what it found.
	r, closeStore, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	v, err := r.Store.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s store at schema version %d (this roster needs %d)\n", r.Store.Driver(), v, store.Latest())
	return nil
}

func runSources(ctx context.Context, e *env, args []string) error {
	fs := e.flags("sources")
	asJSON := fs.Bool("json", false, "")
	orphans := fs.String("orphans", "", "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0 && *orphans != "":
		return usagef("--orphans goes with retire: roster sources retire NAME --orphans deactivate|delete")
	case len(pos) == 2 && pos[0] == "retire":
		return runRetire(ctx, e, pos[1], *orphans, *asJSON)
	case len(pos) > 0:
		return usagef("roster sources lists the sources; roster sources retire NAME retires one")
	}
	r, closeStore, err := e.openExisting(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	counts, err := r.Store.DirectoryCounts(ctx)
	if err != nil {
		return err
	}
	type row struct {
		Name     string       `json:"name"`
		Type     string       `json:"type"`
		Enabled  bool         `json:"enabled"`
		Schedule string       `json:"schedule,omitempty"`
		State    string       `json:"state"`
		Counts   tasks.Counts `json:"counts"`
		LastTask *tasks.View  `json:"last_task"`
	}
	rows := []row{}
	last := func(rw *row) error {
		t, err := r.Store.LastTask(ctx, rw.Name)
		if err != nil {
			return err
		}
		if t != nil {
			v := tasks.ViewOf(t, nil)
			rw.LastTask, rw.State = &v, t.Status
		}
		return nil
	}
	for _, src := range r.Config.Sources {
		rw := row{Name: src.Name, Type: src.Type, Enabled: src.Enabled, Schedule: src.Schedule, State: "never synced",
			Counts: tasks.CountsOf(counts, src.Name)}
		if err := last(&rw); err != nil {
			return err
		}
		if !src.Enabled {
			rw.State = "disabled"
		}
		rows = append(rows, rw)
	}
	retired, err := r.Retired(ctx, counts)
	if err != nil {
		return err
	}
	for _, src := range retired {
		rw := row{Name: src.Name, Type: src.Type, Counts: src.Counts}
		if err := last(&rw); err != nil {
			return err
		}
		rw.State = "retired"
		rows = append(rows, rw)
	}
	if *asJSON {
		return writeJSON(e.stdout, rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tSCHEDULE\tSTATE\tLAST TASK\tOWNS")
	for _, rw := range rows {
		last := "-"
		if rw.LastTask != nil {
			last = fmt.Sprintf("%d at %s", rw.LastTask.ID, rw.LastTask.CreatedAt.Local().Format(time.DateTime))
		}
		owns := fmt.Sprintf("%d active, %d inactive users; %d groups", rw.Counts.Active, rw.Counts.Inactive, rw.Counts.Groups)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", rw.Name, rw.Type, dash(rw.Schedule), rw.State, last, owns)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(retired) > 0 {
		fmt.Fprintln(e.stdout, "\nretired sources are no longer configured but still own users or groups: another source can adopt")
		fmt.Fprintln(e.stdout, "them (on_conflict: adopt), and roster sources retire NAME plans the removal of the rest")
	}
	return nil
}

// runRetire plans the removal of what a retired source owns as a held
// task; its exit code is 0 (the held task is what was asked for).
func runRetire(ctx context.Context, e *env, name, orphans string, asJSON bool) error {
	r, closeStore, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	res, err := r.Retire(ctx, name, orphans)
	if err != nil {
		return err
	}
	hp, err := r.Store.GetHeldPlan(ctx, res.Task.ID)
	if err != nil {
		return err
	}
	if err := printResult(e.stdout, res.Task, res.Plan, hp, asJSON); err != nil && !errors.Is(err, exitError{exitHeld}) {
		return err
	}
	return nil
}

func runTasks(ctx context.Context, e *env, args []string) error {
	fs := e.flags("tasks")
	var f store.TaskFilter
	fs.StringVar(&f.Source, "source", "", "")
	fs.StringVar(&f.Status, "status", "", "")
	fs.IntVar(&f.Limit, "limit", 50, "")
	fs.IntVar(&f.Offset, "offset", 0, "")
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	r, closeStore, err := e.openExisting(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	list, total, err := r.Store.ListTasks(ctx, f)
	if err != nil {
		return err
	}
	views := make([]tasks.View, len(list))
	for i := range list {
		views[i] = tasks.ViewOf(&list[i], nil)
	}
	if *asJSON {
		return writeJSON(e.stdout, views)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSOURCE\tTRIGGER\tSTATUS\tCREATED\tCHANGES")
	for _, v := range views {
		c := v.Counts
		changes := fmt.Sprintf("+%d ~%d -%d", c.Created+c.Restored, c.Updated, c.Deactivated+c.Deleted)
		if c.Adopted > 0 {
			changes += fmt.Sprintf(" adopted %d", c.Adopted)
		}
		if len(v.Errors) > 0 {
			changes = sources.Plural(len(v.Errors), "error")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Source, v.Trigger, v.Status, v.CreatedAt.Local().Format(time.DateTime), changes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if int64(f.Offset+len(list)) < total {
		fmt.Fprintf(e.stdout, "(%d of %d tasks; see more with --offset %d)\n", len(list), total, f.Offset+len(list))
	}
	return nil
}

func runTask(ctx context.Context, e *env, args []string) error {
	return withTaskID(ctx, e, "task", args, true, func(r *tasks.Runner, id int64, asJSON bool) error {
		t, err := r.Store.GetTask(ctx, id)
		if err != nil {
			return fmt.Errorf("%w: %w", tasks.ErrUsage, err)
		}
		hp, _ := r.Store.GetHeldPlan(ctx, id) // nil unless the task was held
		v := tasks.ViewOf(t, hp)
		if asJSON {
			return writeJSON(e.stdout, v)
		}
		printTask(e.stdout, v)
		return nil
	})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
