package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/ldap"
)

// ldap sources (SPEC §3.5) go through the same steps as http sources: the
// whole directory is read and validated first, then planned and applied in
// one transaction. Their raw record is the LDIF of what was read
// (<task id>.ldif, written while the pages arrive, password attributes
// never among it); a retry or an approval maps that again. A read that
// breaks off keeps no raw record, so its retry reads the server again. An
// unchanged directory (the same LDIF and settings) is recorded as skipped.
//
// A sync that reads every user keeps no records while it reads, only an
// index (ids, memberships and managers, ldap.Index); a raw record of at
// least limits.stream_from bytes is then planned and applied a chunk at a
// time as a large csv file is (syncIndexed), and a smaller one is mapped
// again whole. Changed-only reads, retries, approvals and dry runs map
// the whole read at once.

// fetchLDAP reads an ldap source. With a task, the LDIF goes to the task's
// raw record; without (a dry run, roster check), nowhere. index asks a
// read of every user to keep an index instead of its records.
func (r *Runner) fetchLDAP(ctx context.Context, src *config.Source, t *store.Task, since string, index bool) (*input, error) {
	o := config.LDAPOptions(src, r.Config.Attributes.Model())
	o.Since, o.Index = since, index && t != nil
	var res *ldap.Result
	var readErr error
	read := func(w io.Writer) error {
		res, readErr = ldap.Fetch(ctx, o, w)
		var verr *sources.ValidationError
		if readErr != nil && !errors.As(readErr, &verr) {
			return readErr // the LDIF is partial: keep none
		}
		return nil
	}
	if t == nil {
		_ = read(io.Discard)
	} else if err := r.keepRaw(t, "ldif", read); err != nil && readErr == nil {
		return nil, err
	}
	if readErr != nil {
		var verr *sources.ValidationError
		switch {
		case errors.As(readErr, &verr):
			return nil, verr
		case ldap.IsTransient(readErr):
			return nil, transient(readErr)
		}
		return nil, readErr
	}
	r.log().Debug("ldap read", "source", src.Name, "entries", res.Entries, "requests", res.Requests, "changed_only", res.Partial)
	return ldapInput(res, src, t != nil), nil
}

func ldapInput(res *ldap.Result, src *config.Source, rawKept bool) *input {
	in := &input{records: res.Records, warnings: res.Warnings, fingerprint: fingerprint(res.SHA256, src), rawKept: rawKept,
		groups: &reconcile.Groups{Names: res.Groups, Partial: res.Partial}, watermark: res.Watermark, index: res.Index}
	for _, n := range res.Nested {
		in.groups.Nested = append(in.groups.Nested, reconcile.Nesting{Child: n.Child, Parent: n.Parent})
	}
	return in
}

// readLDIF maps an ldap task's raw record again; the new task keeps a copy.
func (r *Runner) readLDIF(src *config.Source, path string) (*input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the raw record: %w", err)
	}
	defer f.Close()
	res, err := ldap.FromLDIF(config.LDAPOptions(src, r.Config.Attributes.Model()), f)
	if err != nil {
		return nil, err
	}
	in := ldapInput(res, src, false)
	in.raw = func(w io.Writer) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}
	return in, nil
}

// syncLDAP runs one task of an ldap source; the caller holds the lock.
func (r *Runner) syncLDAP(ctx context.Context, src *config.Source, opt Options) (*Result, error) {
	t, err := r.start(ctx, src.Name, opt.Trigger, opt.Force, nil)
	if err != nil {
		return nil, err
	}
	opt.started(t)
	last, err := r.Store.GetLDAPRead(ctx, src.Name)
	if err != nil {
		return r.finishFailed(ctx, t, nil, transient(err))
	}
	since := ""
	if changedOnly(src, opt, last) {
		since = last.Watermark
	}
	in, err := r.fetchLDAP(ctx, src, t, since, since == "")
	if err != nil {
		// Invalid entries keep their raw record (t.RawRecord) to read the
		// cause in.
		return r.finishFailed(ctx, t, nil, err)
	}
	if !opt.Force {
		if res, skipped, err := r.skipUnchanged(ctx, t, src, in, "the directory", false); skipped || err != nil {
			return res, err
		}
	}
	var res *Result
	if in.index != nil {
		res, err = r.syncIndexed(ctx, t, src, in, opt.Force)
	} else {
		res, err = r.process(ctx, t, src, in, opt.Force)
	}
	if err == nil && res.Task.Status == store.StatusSucceeded && in.watermark != "" {
		if err := r.Store.SaveLDAPRead(ctx, src.Name, in.watermark, since == ""); err != nil {
			// The sync is applied; the next read starts from the older
			// watermark, or reads everything.
			r.log().Warn("could not record where the next changed-only read begins", "source", src.Name, "task", t.ID, "err", err)
		}
	}
	return res, err
}

// syncIndexed syncs the read of every user that in indexes, whose LDIF
// is t's raw record: as a stream when the raw record holds at least
// limits.stream_from bytes, else mapped again whole.
func (r *Runner) syncIndexed(ctx context.Context, t *store.Task, src *config.Source, in *input, force bool) (*Result, error) {
	path := r.rawPath(t)
	whole := func() (*input, error) {
		w, err := r.readLDIF(src, path)
		if err != nil {
			return nil, err
		}
		w.raw, w.rawKept = nil, true
		return w, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return r.finishFailed(ctx, t, nil, fmt.Errorf("read the raw record: %w", err))
	}
	if fi.Size() < int64(r.Config.Limits.StreamFrom) {
		w, err := whole()
		if err != nil {
			return r.finishFailed(ctx, t, nil, err)
		}
		return r.process(ctx, t, src, w, force)
	}
	x := in.index
	first := &firstPass{records: x.Records, ids: x.IDs, groupNames: in.groups.Names, warnings: in.warnings, fingerprint: in.fingerprint,
		nested: in.groups.Nested, managers: x.Managers(), index: x}
	t.Fingerprint = in.fingerprint
	if err := r.Store.SaveTask(ctx, t); err != nil {
		return r.finishFailed(ctx, t, nil, transient(err))
	}
	return r.applyStreamed(ctx, t, src, first, force, whole)
}

// changedOnly reports whether a sync reads only the users changed since
// the last read: scheduled syncs do, while the last full read is younger
// than full_every and the server gave a change marker. Manual syncs,
// retries, dry runs and checks read everything, and so orphans are found.
func changedOnly(src *config.Source, opt Options, last store.LDAPRead) bool {
	return opt.Trigger == TriggerSchedule && !opt.Force && src.FullEvery > 0 && last.Watermark != "" &&
		!last.FullAt.IsZero() && time.Since(last.FullAt) < time.Duration(src.FullEvery)
}
