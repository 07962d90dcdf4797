package tasks

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/csv"
)

// A dry run of a file that a sync would stream (Runner.streams) is planned
// as the sync plans it, by planStream, a chunk at a time against the
// chunk's users: each part's changes are written to a temporary file as
// they are planned, and read back one at a time when the plan is shown
// (Result.EachChange). Memory then follows the ids of the input, as the
// sync's does, instead of every record, user and change at once (issue
// 16: a dry run of 490,000 people peaked at 2.0 GB). The changes come in
// the order the whole plan gives: the records' in file order, then the
// orphans'. Where the sync would plan the whole input (a login held by
// another user, a plan the safety valve holds), so does the dry run.

// changeSpool holds a streamed dry run's changes in a temporary file.
type changeSpool struct {
	f   *os.File
	w   *bufio.Writer
	enc *gob.Encoder
}

func newChangeSpool() (*changeSpool, error) {
	f, err := os.CreateTemp("", "roster-dry-run-*")
	if err != nil {
		return nil, fmt.Errorf("keep the dry run's changes: %w", err)
	}
	// Removed at once: the open file is all that needs it, and nothing is
	// left behind if the process dies.
	os.Remove(f.Name())
	w := bufio.NewWriterSize(f, 64<<10)
	return &changeSpool{f: f, w: w, enc: gob.NewEncoder(w)}, nil
}

func (s *changeSpool) add(changes []reconcile.Change) error {
	for i := range changes {
		if err := s.enc.Encode(&changes[i]); err != nil {
			return fmt.Errorf("keep the dry run's changes: %w", err)
		}
	}
	return nil
}

// each reads the changes back, in the order they were added.
func (s *changeSpool) each(fn func(*reconcile.Change) error) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("keep the dry run's changes: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read the dry run's changes: %w", err)
	}
	dec := gob.NewDecoder(bufio.NewReaderSize(s.f, 64<<10))
	for {
		var c reconcile.Change
		err := dec.Decode(&c)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the dry run's changes: %w", err)
		}
		if err := fn(&c); err != nil {
			return err
		}
	}
}

// EachChange calls fn with the plan's changes in order: Plan.Changes, or,
// for a streamed dry run, its changes read back one at a time.
func (res *Result) EachChange(fn func(*reconcile.Change) error) error {
	if res.spool != nil {
		return res.spool.each(fn)
	}
	if res.Plan == nil {
		return nil
	}
	for i := range res.Plan.Changes {
		if err := fn(&res.Plan.Changes[i]); err != nil {
			return err
		}
	}
	return nil
}

// Close releases what a streamed dry run keeps of its changes.
func (res *Result) Close() error {
	if res == nil || res.spool == nil {
		return nil
	}
	return res.spool.f.Close()
}

// dryRunStream is dryRun for a file a sync would stream. whole is false
// when the sync would plan the whole input too; the caller then does.
func (r *Runner) dryRunStream(ctx context.Context, src *config.Source) (res *Result, whole bool, err error) {
	first, err := r.readFirstDry(ctx, src)
	if err != nil {
		res, err := dryRunFailure(err)
		return res, false, err
	}
	spool, err := newChangeSpool()
	if err != nil {
		return nil, false, err
	}
	var orphans []reconcile.Change
	heads := 0
	summary, err := r.planStream(ctx, r.Store.ReadStream(ctx, src.Name), src, first, false, r.records(ctx, src, first, src.Path, false), func(p *reconcile.Plan) error {
		if heads == 0 {
			// The head's orphans come last, as in the whole plan.
			heads, orphans = 1, p.Changes
			return nil
		}
		return spool.add(p.Changes)
	})
	if err == nil {
		err = spool.add(orphans)
	}
	var ew errWhole
	if err != nil {
		spool.f.Close()
		if errors.As(err, &ew) {
			r.log().Info("dry run: planning the whole input at once", "source", src.Name, "reason", ew.why)
			return nil, true, nil
		}
		return nil, false, err
	}
	return &Result{Plan: summary, spool: spool}, false, nil
}

// readFirstDry is the first pass of a streamed dry run: the file is
// validated and its ids and group names kept, as readFirst does, without
// hashing a password or writing a raw record.
func (r *Runner) readFirstDry(ctx context.Context, src *config.Source) (*firstPass, error) {
	f, err := os.Open(src.Path)
	if err != nil {
		return nil, fmt.Errorf("open the input of source %s: %w", src.Name, err)
	}
	defer f.Close()
	fp := &firstPass{}
	seen := map[string]bool{}
	opts := csv.Options{PasswordMinLength: src.PasswordMinLength, Extra: src.ExtraColumns, Check: r.Config.Attributes.Model().Check,
		Each: func(rec sources.Record) error {
			fp.count(rec, seen)
			return nil
		}}
	if r.Progress != nil {
		opts.Progress = func(n int) { r.Progress(src.Name, "read", n) }
	}
	res, err := csv.Read(ctx, f, opts)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src.Path, err)
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	fp.ids, fp.warnings = res.IDs, res.Warnings
	return fp, nil
}
