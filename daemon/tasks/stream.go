package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/csv"
	"github.com/rosterd/roster/sources/ldap"
)

// streamChunk is how many records one part of a streamed plan holds (a
// variable for tests).
var streamChunk = 5000

// errWhole sends a streamed sync back to planning the whole input at once:
// a login that another user holds (a move, a swap, another owner), or a
// plan that the safety valve stops. PlanSnapshot resolves and explains
// those with the whole picture, as it does for small inputs.
type errWhole struct{ why string }

func (e errWhole) Error() string { return e.why }

// streams reports whether a sync of src's file should stream. A csv file
// of at least limits.stream_from bytes (4 MiB by default, some 40,000
// people) is validated, hashed and kept as its raw record in a first pass
// that holds no records, then planned and applied a chunk at a time in one
// transaction, reading the raw record again. Memory then follows the
// number of ids (a few dozen bytes each) instead of the records, plans and
// snapshots of every user (over a kilobyte each).
func (r *Runner) streams(src *config.Source) bool {
	if src.Type != config.TypeCSV {
		return false
	}
	fi, err := os.Stat(src.Path)
	return err == nil && fi.Size() >= int64(r.Config.Limits.StreamFrom)
}

// firstPass is what the first pass over a streamed input keeps.
type firstPass struct {
	records int
	// ids are every record's id (and line).
	ids         map[string]int
	groupNames  []string
	warnings    []string
	fingerprint string
	// passwords are the clear initial passwords of the records that may
	// create users, by id, kept only while the store keeps initial
	// passwords for sinks: the second pass reads the raw record, which
	// holds their hashes only.
	passwords map[string]string
	// nested are an ldap source's groups nested in its groups, managers
	// the ids of the users that manage others, and index what maps its
	// raw record again (nil for csv).
	nested   []reconcile.Nesting
	managers []string
	index    *ldap.Index
}

// count counts rec and keeps the names of its groups not seen before
// (a copy: the reader's buffer is reused).
func (fp *firstPass) count(rec sources.Record, seen map[string]bool) {
	fp.records++
	for _, g := range rec.Groups {
		if !seen[g] {
			g = strings.Clone(g)
			seen[g] = true
			fp.groupNames = append(fp.groupNames, g)
		}
	}
}

// readFirst validates the source's file, hashes its initial passwords and
// writes its raw record (the file byte for byte, password cells replaced
// by their hashes), a chunk at a time. A valid file leaves the raw record
// in place and t pointing at it. An invalid one returns the validation
// errors and keeps its raw record too, with no password hashed or kept:
// every password cell empty and the rows that have errors blanked where
// they may hold a password (SPEC §5), as a file read whole gives it.
func (r *Runner) readFirst(ctx context.Context, t *store.Task, src *config.Source) (*firstPass, error) {
	fp, hashedThenInvalid, err := r.readFirstOnce(ctx, t, src, true)
	if hashedThenInvalid {
		// An error came after chunks whose hashes were written: write the
		// raw record again without hashing. Only an invalid large file
		// pays the second read.
		fp, _, err = r.readFirstOnce(ctx, t, src, false)
	}
	return fp, err
}

// readFirstOnce is one pass of readFirst. With hash false, or once a row
// with errors was read, password cells are left empty instead of hashed;
// hashedThenInvalid reports an invalid file whose raw record holds hashes
// of the rows read before its first error.
func (r *Runner) readFirstOnce(ctx context.Context, t *store.Task, src *config.Source, hash bool) (fp *firstPass, hashedThenInvalid bool, _ error) {
	fp = &firstPass{}
	// bad says that a row with errors was read: the file is invalid, and
	// nothing of it is hashed any more. hashed says that a hash was written.
	bad, hashed := false, false
	seen := map[string]bool{}
	// inputErr is a problem of the input (invalid, unreadable, changed, a
	// password that cannot be hashed); keepRaw's own errors are the raw
	// record's. An invalid input's raw record is kept: its write succeeds.
	var inputErr, invalid error
	var chunk []sources.Record
	// edits are the spans to replace before the next flush, in file
	// order: a record of chunk's password cell (rec >= 0) or a span that
	// Read asks to blank (rec < 0).
	type edit struct {
		span sources.Span
		rec  int
	}
	var edits []edit
	err := r.keepRaw(t, "csv", func(w io.Writer) error {
		f, err := os.Open(src.Path)
		if err != nil {
			inputErr = fmt.Errorf("open the input of source %s: %w", src.Name, err)
			return inputErr
		}
		defer f.Close()
		again, err := os.Open(src.Path)
		if err != nil {
			inputErr = fmt.Errorf("open the input of source %s: %w", src.Name, err)
			return inputErr
		}
		defer again.Close()
		rw := csv.NewRewriter(w, again)
		flush := func() error {
			hashing := hash && !bad
			if hashing {
				if err := r.hashPasswords(ctx, src.Name, chunk); err != nil {
					inputErr = err
					return err
				}
				for i := range chunk {
					if pw := chunk[i].InitialPassword; pw != "" {
						if fp.passwords == nil {
							fp.passwords = map[string]string{}
						}
						fp.passwords[strings.Clone(chunk[i].ExternalID)] = strings.Clone(pw)
					}
				}
			}
			for _, e := range edits {
				with := ""
				if e.rec >= 0 && hashing {
					if rec := &chunk[e.rec]; rec.PasswordHash != "" && rec.Password == "" {
						with, hashed = csv.Quote(rec.PasswordHash), true
					}
				}
				if err := rw.Replace(e.span, with); err != nil {
					if csv.IsShort(err) {
						inputErr = errFileChanged
					}
					return err
				}
			}
			chunk, edits = chunk[:0], edits[:0]
			return nil
		}
		opts := csv.Options{PasswordMinLength: src.PasswordMinLength, Extra: src.ExtraColumns, Check: r.Config.Attributes.Model().Check,
			Redact: func(s sources.Span) {
				bad = true
				edits = append(edits, edit{span: s, rec: -1})
			},
			Each: func(rec sources.Record) error {
				fp.count(rec, seen)
				chunk = append(chunk, rec)
				if !rec.PasswordAt.Empty() {
					edits = append(edits, edit{span: rec.PasswordAt, rec: len(chunk) - 1})
				}
				if len(chunk) == streamChunk {
					return flush()
				}
				return nil
			}}
		if r.Progress != nil {
			opts.Progress = func(n int) { r.Progress(src.Name, "read", n) }
		}
		res, err := csv.Read(ctx, f, opts)
		if err != nil {
			if inputErr == nil {
				inputErr = fmt.Errorf("read %s: %w", src.Path, err)
			}
			return err
		}
		// An error of the whole file (a duplicate id found late) makes it
		// invalid too: the last chunk is not hashed.
		bad = bad || res.Err() != nil
		if err := flush(); err != nil {
			return err
		}
		sum, err := rw.Finish()
		if err != nil {
			return err
		}
		if sum != res.SHA256 {
			inputErr = errFileChanged
			return inputErr
		}
		invalid = res.Err()
		fp.ids, fp.warnings, fp.fingerprint = res.IDs, res.Warnings, fingerprint(res.SHA256, src)
		return nil
	})
	switch {
	case inputErr != nil:
		return nil, false, inputErr
	case err != nil:
		return nil, false, err
	case invalid != nil:
		return nil, hashed, invalid
	}
	return fp, false, nil
}

// syncStream runs a streamed sync of src for the running task t, whose
// file had the fingerprint want when the sync began.
func (r *Runner) syncStream(ctx context.Context, t *store.Task, src *config.Source, want string, force bool) (*Result, error) {
	began := time.Now()
	first, err := r.readFirst(ctx, t, src)
	r.log().Debug("input read", "source", src.Name, "task", t.ID, "streamed", true, "took", time.Since(began))
	if err != nil {
		if now, ferr := fileFingerprint(src); ferr == nil && now != want {
			return r.finishFailed(ctx, t, nil, errFileChanged)
		}
		return r.finishFailed(ctx, t, nil, err)
	}
	if !readWhole(src, first.fingerprint, want) {
		return r.finishFailed(ctx, t, nil, errFileChanged)
	}
	t.Fingerprint = first.fingerprint
	if err := r.Store.SaveTask(ctx, t); err != nil {
		return r.finishFailed(ctx, t, nil, transient(err))
	}
	return r.applyStreamed(ctx, t, src, first, force, func() (*input, error) {
		in, err := r.readCSV(ctx, src, r.rawPath(t), true)
		if err != nil {
			return nil, err
		}
		in.fingerprint, in.warnings = first.fingerprint, first.warnings
		for i := range in.records {
			in.records[i].InitialPassword = first.passwords[in.records[i].ExternalID]
		}
		return in, nil
	})
}

// applyStreamed plans and applies the streamed input of task t, whose
// first pass kept first, in one transaction. A plan that needs the whole
// picture (errWhole) is made from whole's input instead, as for a small
// input.
func (r *Runner) applyStreamed(ctx context.Context, t *store.Task, src *config.Source, first *firstPass, force bool, whole func() (*input, error)) (*Result, error) {
	if r.Progress != nil {
		r.Progress(src.Name, "apply", first.records)
	}

	began := time.Now()
	done := *t
	// The store stamps finished_at in the apply's transaction, after every
	// part is written (store.Task.BeforeSave).
	done.Status, done.FinishedAt = store.StatusSucceeded, nil
	var summary *reconcile.Plan
	err := r.Store.ApplyStream(ctx, src.Name, first.fingerprint, &done, func(tx *store.StreamTx) error {
		var err error
		summary, err = r.applyStream(ctx, tx, &done, src, first, force)
		return err
	})
	r.log().Debug("plan applied", "source", src.Name, "task", t.ID, "streamed", true, "took", time.Since(began))
	var ew errWhole
	switch {
	case errors.As(err, &ew):
		r.log().Info("planning the whole input at once", "source", src.Name, "task", t.ID, "reason", ew.why)
		in, err := whole()
		if err != nil {
			return r.finishFailed(ctx, t, nil, err)
		}
		return r.process(ctx, t, src, in, force)
	case err != nil:
		if store.IsTransient(err) {
			err = transient(err)
		}
		return r.finishFailed(ctx, t, nil, err)
	}
	*t = done
	r.log().Info("task succeeded", "source", t.Source, "task", t.ID, "counts", t.Counts)
	r.expire(ctx)
	return &Result{Task: t, Plan: summary}, nil
}

// applyStream plans and applies a streamed input inside tx: the head (the
// groups and the orphans), then the raw record a chunk at a time. It fills
// in the task's counts and warnings and returns the plan's summary.
func (r *Runner) applyStream(ctx context.Context, tx *store.StreamTx, t *store.Task, src *config.Source, first *firstPass, force bool) (*reconcile.Plan, error) {
	summary, err := r.planStream(ctx, tx, src, first, force, r.records(ctx, src, first, r.rawPath(t), true), tx.Apply)
	if err != nil {
		return nil, err
	}
	t.Counts, t.Warnings = mustJSON(summary.Counts), mustJSON(nonNil(summary.Warnings))
	return summary, nil
}

// planStream plans a streamed input against what tx reads: the head (the
// groups, their nesting and the orphans), then the records that read
// hands over, a chunk at a time, each part handed to emit as soon as it is
// planned (and before the next is): a sync applies it, a dry run writes
// its changes out (dryRunStream). It returns the plan's summary: counts,
// warnings, and the head's groups created and deleted.
func (r *Runner) planStream(ctx context.Context, tx *store.StreamTx, src *config.Source, first *firstPass, force bool,
	read func(each func(sources.Record) error) error, emit func(*reconcile.Plan) error) (*reconcile.Plan, error) {
	groups, err := tx.Groups()
	if err != nil {
		return nil, err
	}
	set := settings(src, force, r.Config.Attributes.Model())
	in := reconcile.StreamInput{Records: first.records, GroupNames: first.groupNames, Nested: first.nested}
	if src.Type == config.TypeLDAP {
		if in.HadNested, err = tx.Nested(); err != nil {
			return nil, err
		}
	}
	if len(first.managers) > 0 {
		in.Managers = make(map[string]string, len(first.managers))
		for _, ext := range first.managers {
			in.Managers[ext] = ""
		}
	}
	// The records' ids map to their lines; an id whose user exists gets
	// what is known of that user instead (reconcile.Known.Pack).
	known := first.ids
	first.ids = nil
	owned := 0 // tombstones included
	err = tx.EachUser(func(u *reconcile.User) error {
		owned++
		if _, ok := in.Managers[u.ExternalID]; ok {
			in.Managers[u.ExternalID] = u.ID
		}
		if u.State == reconcile.StateDeleted {
			return nil
		}
		in.Total++
		if _, ok := known[u.ExternalID]; ok {
			known[u.ExternalID] = reconcile.KnownOf(u, set).Pack()
		} else {
			in.Absent = append(in.Absent, *u)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Each of the source's users (tombstones included) matches one record
	// at most, so the rest are created (or adopted): on SQLite an initial
	// import builds an index once at its end instead of row by row
	// (store.StreamTx.Expect). A dry run's read-only stream ignores it.
	if err := tx.Expect(first.records - owned); err != nil {
		return nil, err
	}
	plan, head := reconcile.NewStream(in, groups, set, newID)
	if head.Hold != "" {
		return nil, errWhole{"the safety valve holds the plan"}
	}
	summary := &reconcile.Plan{Source: src.Name, Records: first.records, Total: in.Total, Warnings: first.warnings,
		GroupCreates: head.GroupCreates, GroupDeletes: head.GroupDeletes}
	if err := emit(head); err != nil {
		return nil, err
	}

	chunk := make([]sources.Record, 0, streamChunk)
	apply := func() error {
		part, err := r.planChunk(tx, plan, known, owned > 0, set.Adopt, src.Name, chunk)
		if err == nil && part != nil {
			err = emit(part)
		}
		chunk = chunk[:0]
		return err
	}
	err = read(func(rec sources.Record) error {
		chunk = append(chunk, rec)
		if len(chunk) == streamChunk {
			return apply()
		}
		return nil
	})
	if err == nil {
		err = apply()
	}
	if err != nil {
		return nil, err
	}
	summary.Counts = plan.Counts
	return summary, nil
}

// records reads a streamed input's records again, from path: the raw
// record of an ldap source, mapped again by its first pass's index, or a
// csv file. hashed says a csv file's passwords are hashes (the raw
// record); a dry run reads the source's file, and its passwords are only
// known to be set.
func (r *Runner) records(ctx context.Context, src *config.Source, first *firstPass, path string, hashed bool) func(func(sources.Record) error) error {
	return func(each func(sources.Record) error) error {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("read the input again: %w", err)
		}
		defer f.Close()
		if first.index != nil {
			return first.index.Each(config.LDAPOptions(src, r.Config.Attributes.Model()), f, each)
		}
		opts := csv.Options{HashedPasswords: hashed, Checked: true, Extra: src.ExtraColumns, Check: r.Config.Attributes.Model().Check,
			Each: func(rec sources.Record) error {
				if !hashed && rec.Password != "" {
					// Hashing is skipped: the plan only needs to know that a
					// password is set.
					rec.Password, rec.PasswordHash = "", "(hash)"
				}
				rec.InitialPassword = first.passwords[rec.ExternalID]
				return each(rec)
			}}
		res, err := csv.Read(ctx, f, opts)
		if err == nil {
			err = res.Err()
		}
		return err
	}
}

// planChunk plans one chunk of records, unless a login of the chunk is
// held by someone other than its record's own user, and returns its part
// (nil when it changes nothing). Records that leave their user as known
// change nothing and are only counted; when the source owned nobody (a
// first import), there is nobody to read.
func (r *Runner) planChunk(tx *store.StreamTx, plan *reconcile.Stream, known map[string]int, owns, adopts bool, source string, chunk []sources.Record) (*reconcile.Plan, error) {
	changed := chunk[:0]
	for _, rec := range chunk {
		if k, ok := reconcile.Unpack(known[rec.ExternalID]); ok && plan.Unchanged(&rec, k) {
			plan.Counts.Unchanged++
			continue
		}
		changed = append(changed, rec)
	}
	if len(changed) == 0 {
		return nil, nil
	}
	ids := make([]string, len(changed))
	for i := range changed {
		ids[i] = changed[i].ExternalID
	}
	users := map[string]*reconcile.User{}
	if owns {
		var err error
		if users, err = tx.Users(ids); err != nil {
			return nil, err
		}
	}
	// A user who keeps their login holds it alone (the index is unique);
	// only new and changed logins can be someone else's.
	var keys []string
	var asked []int
	for i := range changed {
		key := reconcile.Key(changed[i].UserName)
		if u := users[ids[i]]; u == nil || u.State == reconcile.StateDeleted || reconcile.Key(u.UserName) != key {
			keys, asked = append(keys, key), append(asked, i)
		}
	}
	holders, err := tx.Holders(keys)
	if err != nil {
		return nil, err
	}
	// A record without a user of the source whose login a user of another
	// source holds adopts that user when the source adopts; every other
	// login held by someone else is resolved by the whole plan.
	var adopt []string
	for n, i := range asked {
		h, ok := holders[keys[n]]
		switch {
		case !ok || (h[0] == source && h[1] == ids[i]):
		case adopts && h[0] != source && users[ids[i]] == nil && !plan.Manages(ids[i]):
			adopt = append(adopt, keys[n])
		default:
			return nil, errWhole{fmt.Sprintf("line %d: the login %q is held by another user", changed[i].Line, changed[i].UserName)}
		}
	}
	adoptable, err := tx.Adoptable(adopt)
	if err != nil {
		return nil, err
	}
	part := plan.Chunk(changed, users, adoptable)
	if plan.Held() {
		return nil, errWhole{"the safety valve holds the plan"}
	}
	return part, nil
}
