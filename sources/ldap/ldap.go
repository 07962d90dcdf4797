// Package ldap is the pull client of the `ldap` source type (SPEC §3.5):
// it binds to an LDAP v3 server (OpenLDAP, Active Directory), reads the
// users and groups under a base DN page by page, and maps them to
// sources.Records, writing what it read as LDIF, the task's raw record.
//
// Decisions:
//
//   - Connection: ldap:// (optionally upgraded by StartTLS, which must
//     succeed: no silent fall back to clear text) or ldaps://. A CA file
//     replaces the system roots; ServerName checks another name than the
//     URL's host. A simple bind with a DN and password; an empty DN binds
//     anonymously.
//   - Reading: two searches under BaseDN (subtree), users then groups,
//     each with RFC 2696 paged results of PageSize entries, only the
//     attributes the map names (so no password attribute is ever read; a
//     map naming one is refused), a per-request Timeout, and a SizeLimit
//     and TimeLimit the server enforces. Every page is mapped as it comes
//     and its entries dropped: memory holds the records and each group's
//     member DNs, never the directory's entries.
//   - Large groups: Active Directory answers member;range=0-1499 for a
//     group with more members; the rest is read by further range requests
//     on that group until the range ends in *.
//   - Retries: dialling and binding are retried Retries times with a
//     doubling backoff. A failure after that, or a connection lost in the
//     middle of a read, is returned as a *TransientError and nothing is
//     kept: the task fails and the task runner retries it later.
//   - Mapping: a flavor's default map (see Flavors) with Map's entries
//     laid over it, from directory fields (externalId, userName, ...,
//     active, manager) or attribute paths (SPEC §2.1) to LDAP attributes.
//     objectGUID is rendered as a UUID; userAccountControl gives active
//     from its ACCOUNTDISABLE bit; a manager DN becomes the manager's
//     externalId; a group's member DNs become memberships of the users
//     read and nested groups of the groups read. Members outside the
//     read are left out with a warning.
//   - Changed-only reads (Options.Since): the next read's watermark is
//     taken from the root DSE before the users are searched
//     (highestCommittedUSN, or the start time less ChangeMargin for
//     modifyTimestamp), never from the users read, which would miss a
//     change made while the read went on. Reading an entry twice is
//     harmless; missing one is not.
//   - Validation collects every problem into one *sources.ValidationError,
//     each naming the source and the entry's DN.
package ldap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/sources"
)

// Defaults applied to zero Options fields.
const (
	DefaultPageSize = 500
	DefaultTimeout  = 30 * time.Second
	DefaultBackoff  = time.Second
	MaxBackoff      = 30 * time.Second
	// ChangeMargin is how far before a read's start the next
	// modifyTimestamp read begins: it covers a change stamped before the
	// start but committed after the search passed its entry, and a client
	// clock that is ahead of the server's. What changed in the margin is
	// read again, which is harmless.
	ChangeMargin = 5 * time.Minute
)

// Options configures one read.
type Options struct {
	// Source is the source's name, for messages.
	Source   string
	URL      string
	StartTLS bool
	// CAFile is a PEM file of the CAs that sign the server's certificate;
	// "" trusts the system's roots.
	CAFile     string
	ServerName string
	// TLSConfig, when set, is used as it is (tests).
	TLSConfig    *tls.Config
	BindDN       string
	BindPassword string
	BaseDN       string
	// UserFilter and GroupFilter default to the flavor's; a GroupFilter
	// of "-" reads no groups.
	UserFilter  string
	GroupFilter string
	Flavor      string
	Map         map[string]string
	PageSize    int
	Timeout     time.Duration // per request
	SizeLimit   int           // entries per search; 0 is the server's limit
	Retries     int
	Backoff     time.Duration
	// Attributes are the configured custom attributes, which Map may name
	// (nil: none); Check checks their values beyond CheckAttribute.
	Attributes *attrs.Model
	Check      sources.AttributeCheck
	// Since, when set, makes a changed-only read: the users whose change
	// marker (the flavor's ChangeAttr) is at or after it, and every group.
	Since string
	// Index makes a read of every user (no Since) keep an Index instead of
	// the records: Result.Index, Result.Records nil.
	Index bool
}

// Nesting says that the group Child is a member of the group Parent.
type Nesting struct {
	Child, Parent string
}

// Result is what one read found.
type Result struct {
	Records []sources.Record
	// Groups are the names of every group read, members or not.
	Groups   []string
	Nested   []Nesting
	Warnings []string
	// SHA256 is the hex SHA-256 of the LDIF written.
	SHA256 string
	// Entries and Requests count what was read and how many LDAP
	// requests (bind, pages, ranges) it took.
	Entries  int
	Requests int
	// Partial says that Records are the users changed since
	// Options.Since only (the groups are all of them).
	Partial bool
	// Watermark is where the next changed-only read begins, taken before
	// the users were searched (see nextWatermark): Since when a
	// changed-only read found no user; "" when the server gives no change
	// markers, and from FromLDIF, which cannot know what the server had
	// committed when the record was read.
	Watermark string
	// Index is what a read with Options.Index keeps instead of Records.
	Index *Index
}

// TransientError wraps a failure that may pass: the server unreachable,
// busy or unavailable, a connection lost or a request timed out.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// IsTransient reports whether err is worth retrying later unchanged.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

type reader struct {
	o        Options
	m        *mapping
	userF    string
	groupF   string
	tls      *tls.Config
	u        *url.URL
	requests int
}

// Check reports what is wrong with o without connecting.
func Check(o Options) error {
	_, err := newReader(o)
	return err
}

func newReader(o Options) (*reader, error) {
	if o.Flavor == "" {
		o.Flavor = FlavorOpenLDAP
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	r := &reader{o: o}
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" || (u.Scheme != "ldap" && u.Scheme != "ldaps") {
		return nil, fmt.Errorf("ldap source %s: url must be ldap://host[:port] or ldaps://host[:port]", o.Source)
	}
	if u.Scheme == "ldaps" && o.StartTLS {
		return nil, fmt.Errorf("ldap source %s: start_tls is for ldap:// URLs; an ldaps:// URL is TLS already", o.Source)
	}
	r.u = u
	if o.BaseDN == "" {
		return nil, fmt.Errorf("ldap source %s: base_dn is required", o.Source)
	}
	if _, err := goldap.ParseDN(o.BaseDN); err != nil {
		return nil, fmt.Errorf("ldap source %s: base_dn %q is not a DN: %v", o.Source, o.BaseDN, err)
	}
	if o.BindDN != "" {
		if _, err := goldap.ParseDN(o.BindDN); err != nil {
			return nil, fmt.Errorf("ldap source %s: bind_dn %q is not a DN: %v", o.Source, o.BindDN, err)
		}
	}
	if r.m, err = compileMapping(o.Flavor, o.Map, o.Attributes, o.Check); err != nil {
		return nil, fmt.Errorf("ldap source %s: %w", o.Source, err)
	}
	fl := Flavors[o.Flavor]
	r.userF, r.groupF = cmpOr(o.UserFilter, fl.UserFilter), cmpOr(o.GroupFilter, fl.GroupFilter)
	for name, f := range map[string]string{"user_filter": r.userF, "group_filter": r.groupF} {
		if f == "-" && name == "group_filter" {
			continue
		}
		if _, err := goldap.CompileFilter(f); err != nil {
			return nil, fmt.Errorf("ldap source %s: %s %q is not an LDAP filter: %v", o.Source, name, f, err)
		}
	}
	if o.TLSConfig != nil {
		r.tls = o.TLSConfig.Clone()
	} else if u.Scheme == "ldaps" || o.StartTLS {
		r.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cmpOr(o.ServerName, u.Hostname())}
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("ldap source %s: ca_file: %w", o.Source, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ldap source %s: ca_file %s holds no PEM certificate", o.Source, o.CAFile)
			}
			r.tls.RootCAs = pool
		}
	}
	return r, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Fetch reads the directory, writes what it read to raw as LDIF and maps
// it. Invalid entries give the Result together with a
// *sources.ValidationError listing every problem (the LDIF is complete
// then); any other error gives a nil Result, and raw holds part of a read
// that must not be kept.
func Fetch(ctx context.Context, o Options, raw io.Writer) (*Result, error) {
	r, err := newReader(o)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	lw := NewLDIFWriter(io.MultiWriter(raw, h))
	b := newBuilder(o.Source, r.m)
	if o.Index && o.Since == "" {
		b.index = &Index{}
		// A file to read back: the DNs of the first entries of
		// duplicates are found there, not kept for every user.
		_, b.later = raw.(io.ReaderAt)
	}
	userF := r.userF
	if o.Since != "" {
		lw.MarkChanged(o.Since)
		b.partial = true
		userF = r.changedFilter(o.Since)
	}
	conn, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	next := r.nextWatermark(conn, time.Now())
	entries, users, marked := 0, 0, false
	each := func(kind Kind, e *Entry) error {
		entries++
		if kind == KindUser {
			users++
			marked = marked || len(e.Values(r.m.changeAttr)) > 0
		}
		if err := lw.Write(kind, e); err != nil {
			return err
		}
		b.add(kind, e)
		return nil
	}
	if clearTextBind(r.u, o.StartTLS, o.BindPassword) {
		b.warn("ldap source %s: the bind password went to %s in clear text; use ldaps:// or start_tls: true", o.Source, r.u.Host)
	}
	if err := r.search(ctx, conn, KindUser, userF, r.m.userAttributes(r.m.changeAttr), each); err != nil {
		return nil, err
	}
	if r.groupF != "-" {
		if err := r.search(ctx, conn, KindGroup, r.groupF, r.m.groupAttributes(), each); err != nil {
			return nil, err
		}
	}
	if err := lw.Flush(); err != nil {
		return nil, fmt.Errorf("ldap source %s: write the raw record: %w", o.Source, err)
	}
	if marked && next == "" && o.Since == "" {
		b.warn("ldap source %s: the server's root DSE gives no highestCommittedUSN, so every read reads all users", o.Source)
	}
	res := b.finish()
	res.SHA256, res.Entries, res.Requests = hex.EncodeToString(h.Sum(nil)), entries, r.requests
	res.Watermark = watermark(o.Since, next, users, marked)
	if ra, ok := raw.(io.ReaderAt); ok && b.later {
		if err := b.nameFirsts(io.NewSectionReader(ra, 0, math.MaxInt64)); err != nil {
			return nil, fmt.Errorf("ldap source %s: read the raw record back: %w", o.Source, err)
		}
	}
	if len(b.errs) > 0 {
		return res, &sources.ValidationError{Errors: b.errs}
	}
	return res, nil
}

// nextWatermark reads, before the users are searched, where the next
// changed-only read may begin. The highest change marker among the users
// read would miss a change: a user read on the first page who changes
// while a later page is read, behind a later user whose newer change is
// read. So: Active Directory's highestCommittedUSN from the root DSE
// (every later change has a higher uSNChanged), or for modifyTimestamp
// the read's start, the server's currentTime when its root DSE gives one
// (slapd's does not) and this machine's clock otherwise, less
// ChangeMargin. "" when the server gives no highestCommittedUSN.
func (r *reader) nextWatermark(conn *goldap.Conn, now time.Time) string {
	usn := strings.EqualFold(r.m.changeAttr, "uSNChanged")
	attr := "currentTime"
	if usn {
		attr = "highestCommittedUSN"
	}
	req := goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, int(r.o.Timeout/time.Second), false,
		"(objectClass=*)", []string{attr}, nil)
	r.requests++
	value := ""
	// A root DSE that cannot be read gives no value: the user search that
	// follows reports a connection that failed.
	if res, err := conn.Search(req); err == nil && len(res.Entries) == 1 {
		value = strings.TrimSpace(res.Entries[0].GetAttributeValue(attr))
	}
	if usn {
		if digits(value) {
			return value
		}
		return ""
	}
	if t, err := ber.ParseGeneralizedTime([]byte(value)); err == nil && value != "" {
		now = t
	}
	return now.Add(-ChangeMargin).UTC().Format("20060102150405Z")
}

// watermark is where the read after this one begins: next, taken before
// the users were searched; since when a changed-only read found no user
// (so that the next read's raw record is the same and it is skipped) or
// the server gave no next; "" when a full read saw no change marker on
// its users (the server keeps none).
func watermark(since, next string, users int, marked bool) string {
	switch {
	case since != "" && (users == 0 || next == ""):
		return since
	case since == "" && !marked:
		return ""
	}
	return next
}

// FromLDIF maps a raw record written by Fetch again, as a retry or an
// approval reads it.
func FromLDIF(o Options, raw io.Reader) (*Result, error) {
	r, err := newReader(o)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	b := newBuilder(o.Source, r.m)
	br := bufio.NewReader(io.TeeReader(raw, h))
	if o.Index {
		b.index = &Index{}
	}
	if head, _ := br.Peek(256); bytes.HasPrefix(head, []byte("version: 1\n"+changedMark)) {
		b.partial, b.index = true, nil
	}
	entries := 0
	err = ReadLDIF(br, func(kind Kind, e *Entry) error {
		entries++
		b.add(kind, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ldap source %s: the raw record: %w", o.Source, err)
	}
	res := b.finish()
	res.SHA256, res.Entries = hex.EncodeToString(h.Sum(nil)), entries
	if len(b.errs) > 0 {
		return res, &sources.ValidationError{Errors: b.errs}
	}
	return res, nil
}

// changedFilter is the user filter of a changed-only read: numbers
// (uSNChanged) after since, times (modifyTimestamp) from since on, as a
// time has whole seconds only and another change may share its second.
func (r *reader) changedFilter(since string) string {
	a := r.m.changeAttr
	if digits(since) {
		if n, err := strconv.ParseUint(since, 10, 64); err == nil {
			return fmt.Sprintf("(&%s(%s>=%d))", r.userF, a, n+1)
		}
	}
	return fmt.Sprintf("(&%s(%s>=%s))", r.userF, a, goldap.EscapeFilter(since))
}

// clearTextBind reports a password sent without TLS to another machine
// (a server on the loopback interface is this machine).
func clearTextBind(u *url.URL, startTLS bool, password string) bool {
	if u.Scheme != "ldap" || startTLS || password == "" {
		return false
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		return !ip.IsLoopback()
	}
	return !strings.EqualFold(host, "localhost")
}

// connect dials and binds, retrying what may pass.
func (r *reader) connect(ctx context.Context) (*goldap.Conn, error) {
	wait := r.o.Backoff
	for attempt := 0; ; attempt++ {
		conn, err := r.dialBind(ctx)
		if err == nil {
			return conn, nil
		}
		if !IsTransient(err) || attempt >= r.o.Retries {
			if IsTransient(err) && attempt > 0 {
				err = &TransientError{fmt.Errorf("%w (after %d attempts)", err, attempt+1)}
			}
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, MaxBackoff)
	}
}

func (r *reader) dialBind(ctx context.Context) (*goldap.Conn, error) {
	where := fmt.Sprintf("ldap source %s: %s", r.o.Source, r.u.Redacted())
	d := &net.Dialer{Timeout: r.o.Timeout}
	opts := []goldap.DialOpt{goldap.DialWithDialer(d)}
	if r.u.Scheme == "ldaps" {
		opts = append(opts, goldap.DialWithTLSConfig(r.tls))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := goldap.DialURL(r.u.String(), opts...)
	if err != nil {
		if msg, ok := tlsProblem(err); ok {
			return nil, fmt.Errorf("%s: TLS: %s", where, msg)
		}
		return nil, &TransientError{fmt.Errorf("%s: connect: %w", where, unwrapLDAP(err))}
	}
	conn.SetTimeout(r.o.Timeout)
	// Closing the connection when ctx ends stops a request in flight.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	ok := false
	defer func() {
		if !ok {
			stop()
			conn.Close()
		}
	}()
	if r.o.StartTLS {
		r.requests++
		if err := conn.StartTLS(r.tls); err != nil {
			if msg, isTLS := tlsProblem(err); isTLS {
				return nil, fmt.Errorf("%s: StartTLS: %s", where, msg)
			}
			return nil, fmt.Errorf("%s: StartTLS failed, and roster does not fall back to clear text: %w", where, unwrapLDAP(err))
		}
	}
	r.requests++
	if r.o.BindDN == "" {
		err = conn.UnauthenticatedBind("")
	} else {
		err = conn.Bind(r.o.BindDN, r.o.BindPassword)
	}
	if err != nil {
		if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
			return nil, fmt.Errorf("%s: the bind as %q was refused: invalid credentials (check bind_dn and bind_password)", where, r.o.BindDN)
		}
		return nil, classify(fmt.Errorf("%s: bind as %q: %w", where, r.o.BindDN, unwrapLDAP(err)), err)
	}
	ok = true
	return conn, nil
}

// tlsProblem describes a certificate the client refused.
func tlsProblem(err error) (string, bool) {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var ve *tls.CertificateVerificationError
	// go-ldap's StartTLS keeps only the text of the handshake's error.
	if msg := err.Error(); !errors.As(err, &ve) && strings.Contains(msg, "TLS handshake failed") {
		switch {
		case strings.Contains(msg, "unknown authority"):
			return "the server's certificate is not signed by a trusted CA (check ca_file): " + msg, true
		case strings.Contains(msg, "certificate is valid for") || strings.Contains(msg, "doesn't contain any IP SANs"):
			return "the server's certificate is not valid for this name (check the url's host or server_name): " + msg, true
		case strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate"):
			return "the server's certificate was refused: " + msg, true
		}
	}
	switch {
	case errors.As(err, &ua):
		return "the server's certificate is not signed by a trusted CA (check ca_file): " + ua.Error(), true
	case errors.As(err, &hn):
		return "the server's certificate is not valid for this name (check the url's host or server_name): " + hn.Error(), true
	case errors.As(err, &ci):
		return "the server's certificate is not valid: " + ci.Error(), true
	case errors.As(err, &ve):
		return "the server's certificate was refused: " + ve.Error(), true
	}
	return "", false
}

// unwrapLDAP leaves go-ldap's result code text and the cause.
func unwrapLDAP(err error) error {
	var le *goldap.Error
	if errors.As(err, &le) && le.Err != nil {
		if le.ResultCode == goldap.ErrorNetwork {
			return le.Err
		}
		return fmt.Errorf("%s: %v", goldap.LDAPResultCodeMap[le.ResultCode], le.Err)
	}
	return err
}

// classify marks errors that may pass as transient.
func classify(wrapped, cause error) error {
	var le *goldap.Error
	if errors.As(cause, &le) {
		switch le.ResultCode {
		case goldap.ErrorNetwork, goldap.LDAPResultBusy, goldap.LDAPResultUnavailable, goldap.LDAPResultTimeLimitExceeded,
			goldap.LDAPResultUnwillingToPerform, goldap.LDAPResultOther:
			return &TransientError{wrapped}
		}
		return wrapped
	}
	var ne net.Error
	if errors.As(cause, &ne) || errors.Is(cause, io.EOF) {
		return &TransientError{wrapped}
	}
	return wrapped
}

// search reads every page of one search, handing each entry to each.
func (r *reader) search(ctx context.Context, conn *goldap.Conn, kind Kind, filter string, attributes []string,
	each func(Kind, *Entry) error) error {
	paging := goldap.NewControlPaging(uint32(r.o.PageSize))
	timeLimit := int(r.o.Timeout / time.Second)
	req := goldap.NewSearchRequest(r.o.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, r.o.SizeLimit, timeLimit, false,
		filter, attributes, []goldap.Control{paging})
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.requests++
		res, err := conn.Search(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return r.searchError(kind, page, err)
		}
		for _, le := range res.Entries {
			e := fromLDAP(le)
			if kind == KindGroup {
				if err := r.ranges(ctx, conn, e); err != nil {
					return err
				}
			}
			if err := each(kind, e); err != nil {
				return err
			}
		}
		c, _ := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
		if c == nil || len(c.Cookie) == 0 {
			return nil
		}
		paging.SetCookie(c.Cookie)
	}
}

func (r *reader) searchError(kind Kind, page int, err error) error {
	where := fmt.Sprintf("ldap source %s: search for %s under %q, page %d", r.o.Source, kind, r.o.BaseDN, page)
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
		return fmt.Errorf("ldap source %s: base_dn %q does not exist on the server (or the bind DN may not see it)", r.o.Source, r.o.BaseDN)
	case goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded):
		return fmt.Errorf("%s: more entries than the size limit allows (size_limit, or the server's own); nothing was synced", where)
	case goldap.IsErrorWithCode(err, goldap.LDAPResultInsufficientAccessRights):
		return fmt.Errorf("%s: the bind DN may not read there: %w", where, unwrapLDAP(err))
	}
	return classify(fmt.Errorf("%s: %w", where, unwrapLDAP(err)), err)
}

func fromLDAP(le *goldap.Entry) *Entry {
	e := &Entry{DN: le.DN, Attrs: make([]Attr, 0, len(le.Attributes))}
	for _, a := range le.Attributes {
		e.Attrs = append(e.Attrs, Attr{Name: a.Name, Values: a.ByteValues})
	}
	return e
}

// ParseRange reads an attribute description with a range option, such as
// member;range=0-1499 or member;range=1500-*: its base name, the first
// index and the last ("*" is -1). ok is false when there is no range.
func ParseRange(desc string) (base string, lo, hi int, ok bool) {
	base, opts, found := strings.Cut(desc, ";")
	if !found {
		return desc, 0, 0, false
	}
	for opt := range strings.SplitSeq(opts, ";") {
		v, isRange := strings.CutPrefix(strings.ToLower(opt), "range=")
		if !isRange {
			continue
		}
		a, b, dash := strings.Cut(v, "-")
		l, err := strconv.Atoi(a)
		if !dash || err != nil || l < 0 {
			return base, 0, 0, false
		}
		if b == "*" {
			return base, l, -1, true
		}
		h, err := strconv.Atoi(b)
		if err != nil || h < l {
			return base, 0, 0, false
		}
		return base, l, h, true
	}
	return base, 0, 0, false
}

// maxRangeRequests bounds the range requests for one attribute: at 1,500
// values a step, ten million members.
const maxRangeRequests = 10000

// ranges completes the ranged attributes of a group entry (Active
// Directory's member;range=0-1499) with further requests on the entry,
// and names them without the option.
func (r *reader) ranges(ctx context.Context, conn *goldap.Conn, e *Entry) error {
	for i := range e.Attrs {
		base, _, hi, ok := ParseRange(e.Attrs[i].Name)
		if !ok {
			continue
		}
		vals := e.Attrs[i].Values
		for n := 0; hi >= 0; n++ {
			if n >= maxRangeRequests {
				return fmt.Errorf("ldap source %s: group %q: %s needs more than %d range requests", r.o.Source, e.DN, base, maxRangeRequests)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			want := fmt.Sprintf("%s;range=%d-*", base, hi+1)
			req := goldap.NewSearchRequest(e.DN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, int(r.o.Timeout/time.Second), false,
				"(objectClass=*)", []string{want}, nil)
			r.requests++
			res, err := conn.Search(req)
			if err != nil {
				return classify(fmt.Errorf("ldap source %s: group %q: read %s: %w", r.o.Source, e.DN, want, unwrapLDAP(err)), err)
			}
			next := -2
			for _, le := range res.Entries {
				for _, a := range le.Attributes {
					if b, _, h, ok := ParseRange(a.Name); ok && strings.EqualFold(b, base) {
						vals = append(vals, a.ByteValues...)
						next = h
					}
				}
			}
			if next == -2 {
				return fmt.Errorf("ldap source %s: group %q: the server answered no %s; the group's members would be incomplete", r.o.Source, e.DN, want)
			}
			hi = next
		}
		e.Attrs[i] = Attr{Name: base, Values: vals}
	}
	return nil
}
