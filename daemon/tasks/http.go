package tasks

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/httpapi"
)

// http sources (SPEC §3.2) go through the same steps as csv sources: the
// whole upstream snapshot is read and validated first, then planned and
// applied in one transaction (orphans, restore, safety valve, dry run).
//
// Their raw record (<task id>.json) holds the pages as the upstream sent
// them, written while they are read, so that a page that fails the task
// is kept too:
//
//	{"source": "hr", "pages": [
//	{"page": 1, "url": "https://hr.example.com/people?page=1", "status": 200,
//	 "content_type": "application/json", "body": <the body, byte for byte>},
//	...]}
//
// A body that is JSON (and UTF-8) stands in "body" exactly as it came (the
// white space around it also in "body_lead" and "body_trail", which JSON
// readers drop, so that RawPages gives back every byte); one
// that is not (the malformed page that failed a task) is "body_text", a
// JSON string, or "body_base64" when it is not even UTF-8. URLs are
// redacted like in messages. A retry or an approval reads the pages from
// there, not the upstream again. An unchanged upstream (the same page
// bodies and settings) is recorded as skipped, without a raw record.

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

// fetch reads and validates an http source's snapshot, handing each page
// to page when it is set.
func (r *Runner) fetch(ctx context.Context, src *config.Source, page func(httpapi.Page) error) (*input, error) {
	o := httpOptions(src)
	o.Page = page
	o.Check = r.Config.Attributes.Model().Check
	res, err := httpapi.Fetch(ctx, o)
	return httpInput(res, err, src)
}

func httpInput(res *httpapi.Result, err error, src *config.Source) (*input, error) {
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
	in, err := r.fetchKept(ctx, t, src)
	if err != nil {
		return r.finishFailed(ctx, t, nil, err)
	}
	if !opt.Force {
		if res, skipped, err := r.skipUnchanged(ctx, t, src, in, "the upstream data", true); skipped || err != nil {
			return res, err
		}
	}
	return r.process(ctx, t, src, in, opt.Force)
}

// skipUnchanged records t as skipped when in is what the source's last
// successful sync read (what names the input in the task's warning), and
// reports whether it did; dropRaw removes the raw record written while
// the input was read.
func (r *Runner) skipUnchanged(ctx context.Context, t *store.Task, src *config.Source, in *input, what string, dropRaw bool) (*Result, bool, error) {
	state, err := r.Store.GetSource(ctx, src.Name)
	if err != nil {
		res, err := r.finishFailed(ctx, t, nil, transient(err))
		return res, true, err
	}
	if state.LastFingerprint != in.fingerprint {
		return nil, false, nil
	}
	if dropRaw {
		os.Remove(r.rawPath(t))
		t.RawRecord = ""
	}
	t.Status, t.Fingerprint = store.StatusSkipped, in.fingerprint
	t.Warnings = mustJSON(append(nonNil(in.warnings), what+" is unchanged since the last successful sync"))
	if err := r.Store.SaveTask(ctx, t); err != nil {
		return nil, true, err
	}
	r.log().Info("sync skipped: input unchanged", "source", src.Name, "task", t.ID)
	return &Result{Task: t}, true, nil
}

// fetchKept fetches src's snapshot for task t, keeping the pages as its
// raw record while they arrive: also when they fail the task, unless none
// arrived at all (the upstream could not be reached).
func (r *Runner) fetchKept(ctx context.Context, t *store.Task, src *config.Source) (*input, error) {
	var in *input
	var ferr error
	pages := 0
	kerr := r.keepRaw(t, "json", func(w io.Writer) error {
		pw := &pageWriter{w: w, source: src.Name}
		in, ferr = r.fetch(ctx, src, func(p httpapi.Page) error { pages++; return pw.page(p) })
		return pw.close()
	})
	if kerr == nil && pages == 0 {
		os.Remove(r.rawPath(t))
		t.RawRecord = ""
	}
	if ferr != nil {
		return nil, ferr
	}
	if kerr != nil {
		return nil, kerr
	}
	in.rawKept = true
	return in, nil
}

// pageWriter writes the pages of an http source's raw record as they
// arrive, so that the record never holds more than one page in memory.
type pageWriter struct {
	w      io.Writer
	source string
	n      int
	err    error
}

// rawPage is a page of the raw record without its body.
type rawPage struct {
	Page        int    `json:"page"`
	URL         string `json:"url"`
	Status      int    `json:"status"`
	ContentType string `json:"content_type,omitempty"`
}

func (pw *pageWriter) write(b []byte) {
	if pw.err == nil {
		_, pw.err = pw.w.Write(b)
	}
}

func (pw *pageWriter) page(p httpapi.Page) error {
	if pw.n == 0 {
		name, _ := json.Marshal(pw.source)
		pw.write([]byte(`{"source":` + string(name) + `,"pages":[` + "\n"))
	} else {
		pw.write([]byte(",\n"))
	}
	pw.n++
	head, err := json.Marshal(rawPage{Page: p.Number, URL: p.URL, Status: p.Status, ContentType: p.ContentType})
	if err != nil {
		return err
	}
	pw.write(head[:len(head)-1])
	switch {
	case utf8.Valid(p.Body) && json.Valid(p.Body):
		// The white space around the value is in the file too; noting
		// it lets RawPages give back every byte (JSON drops it).
		core := bytes.TrimLeft(p.Body, " \t\r\n")
		lead := p.Body[:len(p.Body)-len(core)]
		trail := core[len(bytes.TrimRight(core, " \t\r\n")):]
		for _, ws := range []struct {
			key string
			b   []byte
		}{{"body_lead", lead}, {"body_trail", trail}} {
			if len(ws.b) > 0 {
				text, _ := json.Marshal(string(ws.b))
				pw.write([]byte(`,"` + ws.key + `":`))
				pw.write(text)
			}
		}
		pw.write([]byte(`,"body":`))
		pw.write(p.Body)
	case utf8.Valid(p.Body):
		text, _ := json.Marshal(string(p.Body))
		pw.write([]byte(`,"body_text":`))
		pw.write(text)
	default:
		pw.write([]byte(`,"body_base64":"` + base64.StdEncoding.EncodeToString(p.Body) + `"`))
	}
	pw.write([]byte("}"))
	return pw.err
}

func (pw *pageWriter) close() error {
	if pw.n == 0 {
		name, _ := json.Marshal(pw.source)
		pw.write([]byte(`{"source":` + string(name) + `,"pages":[`))
	}
	pw.write([]byte("\n]}\n"))
	return pw.err
}

// RawPages reads the page bodies of an http source's raw record, byte for
// byte as the upstream sent them.
func RawPages(data []byte) ([][]byte, error) {
	var raw struct {
		Pages []struct {
			Body       json.RawMessage `json:"body"`
			Lead       string          `json:"body_lead"`
			Trail      string          `json:"body_trail"`
			BodyText   *string         `json:"body_text"`
			BodyBase64 *string         `json:"body_base64"`
		} `json:"pages"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	bodies := make([][]byte, len(raw.Pages))
	for i, p := range raw.Pages {
		switch {
		case p.BodyText != nil:
			bodies[i] = []byte(*p.BodyText)
		case p.BodyBase64 != nil:
			b, err := base64.StdEncoding.DecodeString(*p.BodyBase64)
			if err != nil {
				return nil, fmt.Errorf("page %d: %w", i+1, err)
			}
			bodies[i] = b
		default:
			bodies[i] = slices.Concat([]byte(p.Lead), p.Body, []byte(p.Trail))
		}
	}
	return bodies, nil
}

// rawRecord is one record in an http source's raw record file as roster
// wrote them before it kept the pages; such files are still read.
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

// readRaw reads a task's stored input again: a csv file, or an http
// source's pages (or, from before pages were kept, its mapped records).
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
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		bodies, err := RawPages(data)
		if err != nil {
			return nil, fmt.Errorf("the raw record %s is not readable: %w", path, err)
		}
		res, err := httpapi.Pages(ctx, httpOptions(src), bodies)
		in, err := httpInput(res, err, src)
		if err != nil {
			return nil, err
		}
		in.origin = path
		return in, nil
	}
	var raw []rawRecord
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("the raw record %s is not readable: %w", path, err)
	}
	in := &input{records: make([]sources.Record, len(raw)), origin: path}
	for i, x := range raw {
		in.records[i] = sources.Record{Line: x.Line, ExternalID: x.ExternalID, UserName: x.UserName, GivenName: x.GivenName,
			FamilyName: x.FamilyName, Email: x.Email, Phone: x.Phone, Groups: x.Groups, Active: x.Active}
	}
	return in, nil
}
