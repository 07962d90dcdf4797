package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/httpapi"
)

// http sources (SPEC §3.2) go through the same steps as csv sources: the
// whole upstream snapshot is read and validated first, then planned and
// applied in one transaction (orphans, restore, safety valve, dry run).
// Their raw record is the mapped records as JSON (<task id>.json); a
// retry or an approval reads that, not the upstream again. An unchanged
// upstream (the same page bodies and settings) is recorded as skipped.

func httpOptions(src *config.Source) httpapi.Options {
	o := httpapi.Options{URL: src.URL, Method: src.Method, Headers: src.Headers, Bearer: src.Auth.Bearer,
		Records: src.Records, Next: src.Next, Map: src.Map, Timeout: time.Duration(src.Timeout), Retries: src.Retries}
	if b := src.Auth.Basic; b != nil {
		o.Basic = &httpapi.Basic{Username: b.Username, Password: b.Password}
	}
	if a := src.Auth.OAuth2; a != nil {
		o.OAuth2 = &httpapi.OAuth2{TokenURL: a.TokenURL, ClientID: a.ClientID, ClientSecret: a.ClientSecret, Scopes: a.Scopes}
	}
	return o
}

// fetch reads and validates an http source's snapshot.
func (r *Runner) fetch(ctx context.Context, src *config.Source) (*input, error) {
	res, err := httpapi.Fetch(ctx, httpOptions(src))
	if err != nil {
		var verr *sources.ValidationError
		switch {
		case errors.As(err, &verr):
			return nil, verr
		case httpapi.IsTransient(err):
			return nil, transient(err)
		}
		return nil, err
	}
	return &input{records: res.Records, warnings: res.Warnings, fingerprint: fingerprint(res.SHA256, src)}, nil
}

// syncHTTP runs one task of an http source; the caller holds the lock.
func (r *Runner) syncHTTP(ctx context.Context, src *config.Source, opt Options) (*Result, error) {
	t, err := r.start(ctx, src.Name, opt.Trigger, opt.Force, nil)
	if err != nil {
		return nil, err
	}
	opt.started(t)
	in, err := r.fetch(ctx, src)
	if err != nil {
		return r.finishFailed(ctx, t, nil, err)
	}
	if !opt.Force {
		state, err := r.Store.GetSource(ctx, src.Name)
		if err != nil {
			return r.finishFailed(ctx, t, nil, transient(err))
		}
		if state.LastFingerprint == in.fingerprint {
			t.Status, t.Fingerprint = store.StatusSkipped, in.fingerprint
			t.Warnings = mustJSON(append(nonNil(in.warnings), "the upstream data is unchanged since the last successful sync"))
			if err := r.Store.SaveTask(ctx, t); err != nil {
				return nil, err
			}
			r.log().Info("sync skipped: input unchanged", "source", src.Name, "task", t.ID)
			return &Result{Task: t}, nil
		}
	}
	return r.process(ctx, t, src, in, opt.Force)
}

// rawRecord is one record in an http source's raw record file.
type rawRecord struct {
	Line       int      `json:"record"`
	ExternalID string   `json:"externalId"`
	UserName   string   `json:"userName"`
	GivenName  string   `json:"givenName,omitempty"`
	FamilyName string   `json:"familyName,omitempty"`
	Email      string   `json:"email,omitempty"`
	Phone      string   `json:"phone,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	Active     *bool    `json:"active,omitempty"`
}

func writeRecordsJSON(w io.Writer, recs []sources.Record) error {
	out := make([]rawRecord, len(recs))
	for i, r := range recs {
		out[i] = rawRecord{r.Line, r.ExternalID, r.UserName, r.GivenName, r.FamilyName, r.Email, r.Phone, r.Groups, r.Active}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

// readRaw reads a task's stored input again.
func (r *Runner) readRaw(ctx context.Context, src *config.Source, path string) (*input, error) {
	if strings.HasSuffix(path, ".ldif") {
		return r.readLDIF(src, path)
	}
	if !strings.HasSuffix(path, ".json") {
		return r.readCSV(ctx, src, path, true)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the raw record: %w", err)
	}
	var raw []rawRecord
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("the raw record %s is not readable: %w", path, err)
	}
	in := &input{records: make([]sources.Record, len(raw))}
	for i, x := range raw {
		in.records[i] = sources.Record{Line: x.Line, ExternalID: x.ExternalID, UserName: x.UserName, GivenName: x.GivenName,
			FamilyName: x.FamilyName, Email: x.Email, Phone: x.Phone, Groups: x.Groups, Active: x.Active}
	}
	return in, nil
}
