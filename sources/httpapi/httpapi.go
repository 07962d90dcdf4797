// Package httpapi is the pull client of the `http` source type (SPEC §3.2):
// it reads every page of a JSON API, maps each record to a sources.Record
// through JSON pointers and validates the whole result.
//
// Decisions:
//
//   - Pages: the records are the array at Options.Records (RFC 6901) in
//     each page body. The next page is the URL at Options.Next in the body,
//     or, when Next is empty, the first `Link` header target with rel="next"
//     (RFC 8288). A missing, null or empty next URL ends the walk. A next URL
//     is resolved against the current page's URL; it must keep the scheme
//     and host of the configured URL (credentials are sent to that host
//     only), must not have been fetched before (a loop), and at most
//     MaxPages pages are read. The default client refuses redirects to
//     another host for the same reason (a permanent error).
//   - Retries: 429, 5xx and transport failures (including a connection
//     broken while the body is read, and the per-request Timeout) are
//     retried Retries times with exponential backoff (Backoff, doubling,
//     at most 30s), or after Retry-After (seconds or an HTTP date, at most
//     5 minutes) when the answer gives it. Any other non-2xx answer fails at
//     once. What is still failing after the last retry is returned wrapped in
//     a *TransientError (see IsTransient), so that the task runner can retry
//     the task later; everything else (4xx, malformed bodies, invalid
//     records, configuration) is permanent until someone changes something.
//   - OAuth2 client credentials: a token is fetched before the first request
//     and kept until 30s before expires_in (or half its life when shorter);
//     a 401 answer makes Fetch fetch a new token once and repeat the request.
//   - Bodies are decoded as a stream through a MaxBody limit, numbers as
//     json.Number so that ids keep every digit. Result.SHA256 covers every
//     page body in order (only the successful attempt of a page counts), so
//     that unchanged upstream data gives the same digest.
//   - Mapping: without a Map, each directory field is read from the member
//     of its own name ("/externalId", ...). With a Map, unmapped fields stay
//     empty, and externalId and userName must be mapped. Strings are
//     trimmed; numbers become their exact decimal text; groups is an array of
//     names or one name; active is true, false, "true" or "false" (any
//     case); null or missing means empty (Active nil).
//   - Validation collects every problem of every page into one
//     *sources.ValidationError, returned together with the Result, after
//     every page has been read. Records are numbered 1, 2, ... across pages
//     and that number is FieldError.Line.
//   - Secrets (Authorization values, the bearer token, the basic password,
//     the client secret, access tokens, the values of headers whose names
//     suggest a credential, URL passwords, and the values of URL query
//     parameters whose names suggest one: key, token, secret, sig, auth,
//     pass, ... as in ?api_key=) never appear in errors or warnings: URLs
//     are printed redacted and every message is scrubbed. Other query
//     parameters (page=3) stay readable.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rosterd/roster/sources"
)

// Defaults applied by Fetch to zero Options fields.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultBackoff  = time.Second
	DefaultMaxPages = 10000
	DefaultMaxBody  = 64 << 20
	// MaxBackoff caps the doubling backoff between retries.
	MaxBackoff = 30 * time.Second
	// MaxRetryAfter caps how long a Retry-After answer makes Fetch wait.
	MaxRetryAfter = 5 * time.Minute
)

// Options configures one Fetch.
type Options struct {
	URL     string
	Method  string // default GET
	Headers map[string]string
	// At most one of Bearer, Basic and OAuth2.
	Bearer string
	Basic  *Basic
	OAuth2 *OAuth2
	// Records is the RFC 6901 JSON pointer to the record array in each
	// page; "" means the body itself is the array.
	Records string
	// Next is the JSON pointer to the next page's URL; "" means follow the
	// `Link: <...>; rel="next"` header.
	Next string
	// Map maps directory fields (see Fields) to JSON pointers inside one
	// record. Any other name is an attribute path (SPEC §2.1) whose value
	// goes to Record.Attributes; the configuration has checked it.
	Map map[string]string
	// Check checks the values of attribute paths in Map beyond
	// sources.CheckAttribute (custom attributes' types); nil: nothing more.
	Check    sources.AttributeCheck
	Timeout  time.Duration // per request, default 30s
	Retries  int           // retries per request on 429, 5xx and network errors; 0 means none
	Client   *http.Client  // nil: a client with sane transport timeouts
	Backoff  time.Duration // first backoff, default 1s, doubling, capped at 30s
	MaxPages int           // default 10000
	MaxBody  int64         // per page, default 64 MiB; larger fails
	// Page, when set, receives each page as the upstream sent it, in
	// order: the body of the attempt that counts (a 2xx answer read
	// whole, including one whose body is malformed), for the task's raw
	// record (SPEC §5). Attempts that are retried do not count.
	Page func(Page) error
}

// Page is one page as the upstream sent it.
type Page struct {
	Number int
	// URL is redacted: a secret in its query stays out of the raw record.
	URL         string
	Status      int
	ContentType string
	Body        []byte
}

// Basic is HTTP basic authentication.
type Basic struct {
	Username, Password string
}

// OAuth2 is the OAuth 2.0 client credentials grant (RFC 6749, 4.4).
type OAuth2 struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scopes       []string
}

// Result is what one Fetch read.
type Result struct {
	// Records in the order read; Line is the 1-based record number across
	// all pages.
	Records []sources.Record
	// SHA256 is the hex SHA-256 over every page body in order.
	SHA256   string
	Pages    int
	Warnings []string
}

// TransientError wraps a failure that may go away by itself: a network
// error, a timeout, a 429 or 5xx answer still failing after the last retry,
// or a token endpoint that is unreachable or answers 429/5xx.
type TransientError struct {
	Err error
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// IsTransient reports whether err (or an error it wraps) is a
// *TransientError, a failure worth retrying later unchanged.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

// StatusError is a non-2xx answer from the API. URL is redacted; Body is
// the start of the answer, scrubbed of secrets.
type StatusError struct {
	URL        string
	Page       int
	StatusCode int
	Status     string
	Body       string
	Attempts   int
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "httpapi: page %d (%s): the API answered %s", e.Page, e.URL, e.Status)
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %s", e.Body)
	}
	return b.String()
}

// PageError is a page that could be fetched but not used: malformed JSON, a
// body over MaxBody, no record array, a record that is not an object, a bad
// or looping next URL, too many pages. URL is redacted.
type PageError struct {
	URL     string
	Page    int
	Message string
}

func (e *PageError) Error() string {
	return fmt.Sprintf("httpapi: page %d (%s): %s", e.Page, e.URL, e.Message)
}

// TokenError is a failure of the OAuth2 token endpoint. StatusCode is 0 when
// no answer came. It is wrapped in a *TransientError when it may pass.
type TokenError struct {
	URL        string
	StatusCode int
	Message    string
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("httpapi: token endpoint %s: %s", e.URL, e.Message)
}

// Check reports what is wrong with o without making any request: bad URLs,
// JSON pointers, map fields, headers or auth settings. Configuration
// loading can call it so that a bad source fails at start-up.
func Check(o Options) error {
	_, err := newFetcher(o)
	return err
}

// Pages reads the records of page bodies kept earlier (a task's raw
// record) as Fetch read them from the upstream: the same mapping,
// validation, warnings and digest, without a request.
func Pages(ctx context.Context, o Options, bodies [][]byte) (*Result, error) {
	f, err := newFetcher(o)
	if err != nil {
		return nil, err
	}
	defer f.close()
	res := &Result{}
	for i, body := range bodies {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		recs, _, err := readPage(io.TeeReader(bytes.NewReader(body), f.hasher), f.o.MaxBody, f.m, f.v, len(res.Records))
		if err != nil {
			return nil, &PageError{URL: "the raw record", Page: i + 1, Message: f.redact(err.Error())}
		}
		res.Records = append(res.Records, recs...)
		res.Pages = i + 1
	}
	res.SHA256 = hex.EncodeToString(f.hasher.Sum(nil))
	if len(f.v.errs) > 0 {
		return res, &sources.ValidationError{Errors: f.v.errs}
	}
	return res, nil
}

// Fetch reads every page, maps and validates the records. When records are
// invalid it returns the Result together with a *sources.ValidationError
// listing every problem; on any other error the Result is nil.
func Fetch(ctx context.Context, o Options) (*Result, error) {
	f, err := newFetcher(o)
	if err != nil {
		return nil, err
	}
	defer f.close()
	return f.run(ctx)
}

type fetcher struct {
	o         Options
	base      *url.URL
	client    *http.Client
	ownClient bool
	m         *mapping
	v         *validator
	secrets   []string
	hasher    hash.Hash
	warnings  []string
	tok       token
}

type token struct {
	value   string // "Bearer abc"
	expires time.Time
}

func newFetcher(o Options) (*fetcher, error) {
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxPages <= 0 {
		o.MaxPages = DefaultMaxPages
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	f := &fetcher{o: o, hasher: sha256.New()}
	f.collectSecrets()
	if !isToken(o.Method) {
		return nil, fmt.Errorf("httpapi: method %q is not a valid HTTP method", o.Method)
	}
	base, err := parseHTTPURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("httpapi: url: %s", f.redact(err.Error()))
	}
	f.base = base
	auths := 0
	if o.Bearer != "" {
		auths++
	}
	if o.Basic != nil {
		auths++
	}
	if o.OAuth2 != nil {
		auths++
		if _, err := parseHTTPURL(o.OAuth2.TokenURL); err != nil {
			return nil, fmt.Errorf("httpapi: oauth2 token_url: %s", f.redact(err.Error()))
		}
		if o.OAuth2.ClientID == "" {
			return nil, errors.New("httpapi: oauth2 needs a client id")
		}
	}
	if auths > 1 {
		return nil, errors.New("httpapi: set only one of bearer, basic and oauth2")
	}
	for k, v := range o.Headers {
		if !isToken(k) {
			return nil, fmt.Errorf("httpapi: header name %q is not valid", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("httpapi: the value of header %s holds a line break or NUL", k)
		}
		if auths > 0 && strings.EqualFold(k, "Authorization") {
			return nil, errors.New("httpapi: an Authorization header and bearer, basic or oauth2 exclude each other")
		}
	}
	if f.m, err = compileMapping(o.Records, o.Next, o.Map); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	f.v = newValidator(f.m)
	f.v.check = o.Check
	f.client = o.Client
	if f.client == nil {
		f.client, f.ownClient = defaultClient(o.Timeout), true
	}
	return f, nil
}

func (f *fetcher) close() {
	if f.ownClient {
		f.client.CloseIdleConnections()
	}
}

// defaultClient returns a client with bounded dial, TLS and header waits,
// which refuses redirects to another host.
func defaultClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = timeout
	t.ExpectContinueTimeout = time.Second
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Transport: t,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if !sameOrigin(req.URL, via[0].URL) {
				return fmt.Errorf("%w (%s)", errRedirect, req.URL.Host)
			}
			return nil
		},
	}
}

// errRedirect marks a refused redirect, which no retry cures.
var errRedirect = errors.New("refused a redirect to another host")

func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%s is not an http or https URL", redactURL(u))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s has no host", redactURL(u))
	}
	return u, nil
}

// sameOrigin reports whether a and b share scheme, host and port (an
// omitted port being the scheme's default).
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "https") {
			return "443"
		}
		return "80"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// isToken reports an RFC 9110 token, as header names and methods are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// sensitiveHeaderWords mark header names whose values are treated as
// secrets.
var sensitiveHeaderWords = []string{"auth", "token", "key", "secret", "cookie", "session", "password", "signature", "credential"}

// sensitiveQueryWords mark URL query parameters whose values are treated
// as secrets (api_key, access_token, sig, X-Amz-Signature, ...). Only
// those are hidden: page=3 or limit=100 in a message helps an operator.
var sensitiveQueryWords = append([]string{"sig", "pass", "pwd"}, sensitiveHeaderWords...)

// minQuerySecret is the shortest query value scrubbed from every message
// once it is known; shorter ones (auth=1) are no secret, and scrubbing
// them would mangle the text around them.
const minQuerySecret = 4

func sensitive(name string, words []string) bool {
	name = strings.ToLower(name)
	for _, w := range words {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

func (f *fetcher) collectSecrets() {
	add := func(s string) {
		if s != "" {
			f.secrets = append(f.secrets, s)
			if e := url.QueryEscape(s); e != s {
				f.secrets = append(f.secrets, e)
			}
		}
	}
	// basic adds a basic password and the header credential made of it.
	basic := func(user, pass string) {
		add(pass)
		if pass != "" {
			add(base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)))
		}
	}
	add(f.o.Bearer)
	if f.o.Basic != nil {
		basic(f.o.Basic.Username, f.o.Basic.Password)
	}
	if f.o.OAuth2 != nil {
		add(f.o.OAuth2.ClientSecret)
	}
	for k, v := range f.o.Headers {
		if sensitive(k, sensitiveHeaderWords) {
			add(v)
			// "Bearer xyz": the credential alone may be echoed too.
			if _, cred, ok := strings.Cut(v, " "); ok {
				add(strings.TrimSpace(cred))
			}
		}
	}
	for _, raw := range []string{f.o.URL, tokenURL(f.o.OAuth2)} {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				basic(u.User.Username(), p)
			}
		}
		// An upstream echoes its URL in error bodies and the transport in
		// its errors; the key is scrubbed wherever it appears.
		for name, values := range u.Query() {
			if sensitive(name, sensitiveQueryWords) {
				for _, v := range values {
					if len(v) >= minQuerySecret {
						add(v)
					}
				}
			}
		}
	}
}

func tokenURL(o *OAuth2) string {
	if o == nil {
		return ""
	}
	return o.TokenURL
}

// redact replaces every known secret in s.
func (f *fetcher) redact(s string) string {
	for _, sec := range f.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// redactURL prints u with its password and the values of its sensitive
// query parameters replaced, so that a next page URL from the upstream,
// whose secrets roster does not know, is safe to show too.
func redactURL(u *url.URL) string {
	if u.RawQuery == "" {
		return u.Redacted()
	}
	c := *u
	parts := strings.Split(c.RawQuery, "&")
	for i, part := range parts {
		name, value, ok := strings.Cut(part, "=")
		if !ok || value == "" {
			continue
		}
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if sensitive(name, sensitiveQueryWords) {
			parts[i] = part[:len(part)-len(value)] + "xxxxx"
		}
	}
	c.RawQuery = strings.Join(parts, "&")
	return c.Redacted()
}

func (f *fetcher) printURL(u *url.URL) string { return f.redact(redactURL(u)) }

func (f *fetcher) warn(format string, args ...any) {
	f.warnings = append(f.warnings, f.redact(fmt.Sprintf(format, args...)))
}

func (f *fetcher) run(ctx context.Context) (*Result, error) {
	res := &Result{}
	u := f.base
	seen := map[string]bool{u.String(): true}
	for page := 1; ; page++ {
		recs, next, err := f.fetchPage(ctx, page, u, len(res.Records))
		if err != nil {
			return nil, err
		}
		res.Records = append(res.Records, recs...)
		res.Pages = page
		if next == "" {
			break
		}
		nu, err := u.Parse(next)
		if err != nil {
			// Its query cannot be parsed to hide what looks secret in it.
			shown, _, cut := strings.Cut(next, "?")
			if cut {
				shown += "?..."
			}
			return nil, f.pageError(page, u, "the next page URL %s is not a valid URL", sources.QuoteValue(f.redact(shown)))
		}
		nu.Fragment, nu.RawFragment = "", ""
		if !sameOrigin(nu, f.base) {
			return nil, f.pageError(page, u, "the next page URL %s leaves %s://%s; roster reads pages from the configured host only", f.printURL(nu), f.base.Scheme, f.base.Host)
		}
		if seen[nu.String()] {
			return nil, f.pageError(page, u, "the next page URL %s was read before; the pages form a loop", f.printURL(nu))
		}
		if page >= f.o.MaxPages {
			return nil, f.pageError(page, u, "there are more than %d pages (max_pages)", f.o.MaxPages)
		}
		seen[nu.String()] = true
		u = nu
	}
	res.SHA256 = hex.EncodeToString(f.hasher.Sum(nil))
	res.Warnings = f.warnings
	if len(f.v.errs) > 0 {
		return res, &sources.ValidationError{Errors: f.v.errs}
	}
	return res, nil
}

func (f *fetcher) pageError(page int, u *url.URL, format string, args ...any) error {
	return &PageError{URL: f.printURL(u), Page: page, Message: f.redact(fmt.Sprintf(format, args...))}
}

// attemptResult is the outcome of one request for a page.
type attemptResult struct {
	recs       []sources.Record
	next       string
	err        error // final when retryable is false
	retryable  bool
	status     int
	retryAfter time.Duration
}

// fetchPage reads one page with retries. line is the number of records read
// before it.
func (f *fetcher) fetchPage(ctx context.Context, page int, u *url.URL, line int) ([]sources.Record, string, error) {
	state, err := f.hasher.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, "", err
	}
	refreshed := false
	for attempt := 1; ; attempt++ {
		if err := f.hasher.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
			return nil, "", err
		}
		r := f.attempt(ctx, page, u, line)
		if r.err == nil {
			return r.recs, r.next, nil
		}
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("httpapi: page %d (%s): %w", page, f.printURL(u), ctx.Err())
		}
		if r.status == http.StatusUnauthorized && f.o.OAuth2 != nil && !refreshed {
			refreshed = true
			f.tok = token{}
			f.warn("page %d (%s): the API answered 401; fetched a new access token and repeated the request", page, f.printURL(u))
			attempt--
			continue
		}
		if !r.retryable {
			return nil, "", r.err
		}
		if attempt > f.o.Retries {
			if se, ok := r.err.(*StatusError); ok {
				se.Attempts = attempt
			} else {
				r.err = fmt.Errorf("%w (after %d attempts)", r.err, attempt)
			}
			return nil, "", &TransientError{Err: r.err}
		}
		wait := f.backoff(attempt)
		if r.retryAfter > 0 {
			wait = r.retryAfter
		}
		f.warn("%s; tried again after %s", strings.TrimPrefix(r.err.Error(), "httpapi: "), wait)
		if err := sleep(ctx, wait); err != nil {
			return nil, "", fmt.Errorf("httpapi: page %d (%s): %w", page, f.printURL(u), err)
		}
	}
}

// backoff is the wait after the attempt-th failed attempt (1-based).
func (f *fetcher) backoff(attempt int) time.Duration {
	d := f.o.Backoff
	for i := 1; i < attempt && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// It returns 0 when absent or unreadable, and at most MaxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0
	}
	return max(0, min(d, MaxRetryAfter))
}

// attempt makes one request for a page and reads it.
func (f *fetcher) attempt(ctx context.Context, page int, u *url.URL, line int) attemptResult {
	where := fmt.Sprintf("page %d (%s)", page, f.printURL(u))
	auth, err := f.authorization(ctx)
	if err != nil {
		return attemptResult{err: err}
	}
	actx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, f.o.Method, u.String(), nil)
	if err != nil {
		return attemptResult{err: fmt.Errorf("httpapi: %s: %s", where, f.redact(err.Error()))}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "roster-httpapi")
	for k, v := range f.o.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return attemptResult{err: fmt.Errorf("httpapi: %s: %s", where, f.transportMessage(err)), retryable: !errors.Is(err, errRedirect)}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body := f.excerpt(resp.Body)
		retryable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return attemptResult{
			err: &StatusError{URL: f.printURL(u), Page: page, StatusCode: resp.StatusCode,
				Status: resp.Status, Body: body, Attempts: 1},
			retryable:  retryable,
			status:     resp.StatusCode,
			retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	}
	saved := len(f.v.errs)
	body := io.Reader(resp.Body)
	var kept *bytes.Buffer
	if f.o.Page != nil {
		kept = &bytes.Buffer{}
		body = io.TeeReader(body, kept)
	}
	recs, next, err := readPage(io.TeeReader(body, f.hasher), f.o.MaxBody, f.m, f.v, line)
	var be *bodyError
	transient := err != nil && errors.As(err, &be) && be.transient
	if kept != nil && !transient {
		// The rest of a body that did not decode is kept as sent too
		// (up to the bound of a page).
		_, cerr := io.Copy(kept, io.LimitReader(resp.Body, max(f.o.MaxBody-int64(kept.Len()), 0)))
		if cerr == nil {
			cerr = f.o.Page(Page{Number: page, URL: f.printURL(u), Status: resp.StatusCode,
				ContentType: resp.Header.Get("Content-Type"), Body: kept.Bytes()})
		}
		if cerr != nil {
			return attemptResult{err: fmt.Errorf("httpapi: %s: keep the page: %w", where, cerr)}
		}
	}
	if err != nil {
		f.v.errs = f.v.errs[:saved]
		if transient {
			return attemptResult{err: fmt.Errorf("httpapi: %s: %s", where, f.transportMessage(errors.New(be.msg))), retryable: true}
		}
		if ct := resp.Header.Get("Content-Type"); errors.As(err, &be) && !be.tooLarge && ct != "" && !strings.Contains(ct, "json") {
			return attemptResult{err: f.pageError(page, u, "%s (the answer's Content-Type is %s)", err.Error(), ct)}
		}
		return attemptResult{err: f.pageError(page, u, "%s", err.Error())}
	}
	if !f.m.useNext {
		next = nextLink(resp.Header.Values("Link"))
	}
	return attemptResult{recs: recs, next: next}
}

// transportMessage describes a transport error without the URL that
// url.Error repeats, scrubbed of secrets.
func (f *fetcher) transportMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "deadline exceeded") {
		msg = fmt.Sprintf("no complete answer within %s (timeout): %s", f.o.Timeout, msg)
	}
	return f.redact(msg)
}

// excerptBytes is how much of an error answer's body an error quotes.
const excerptBytes = 200

// excerpt reads the start of an error answer for a message: at most
// excerptBytes, cut at a character boundary, control characters escaped,
// secrets scrubbed. The rest of a short body is drained so that the
// connection can be reused.
func (f *fetcher) excerpt(r io.Reader) string {
	buf, _ := io.ReadAll(io.LimitReader(r, 4096))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
	s := strings.ToValidUTF8(string(buf), "\uFFFD")
	s = f.redact(s) // before cutting, so that no secret is cut in half
	cut := false
	if len(s) > excerptBytes {
		i := excerptBytes
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s, cut = s[:i], true
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7F {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if cut {
		s += "..."
	}
	return s
}
