package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/rosterd/roster/config"
)

// maxAnswer bounds what is read of one answer of the service; a list of
// one page of users is far smaller.
const maxAnswer = 16 << 20

// attempts is how often one request is tried when the service answers
// 429 or 5xx, or cannot be reached, before the round gives up.
const attempts = 5

// ServiceError is an answer of the service that is not a success. Detail
// is the start of its body: what the service said about the resource.
type ServiceError struct {
	Method, Path string
	Status       int
	Detail       string
}

func (e *ServiceError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%s %s: the service answered %d", e.Method, e.Path, e.Status)
	}
	return fmt.Sprintf("%s %s: the service answered %d: %s", e.Method, e.Path, e.Status, e.Detail)
}

// transient reports whether asking again later may succeed: the service
// was overloaded, failing or unreachable, not refusing the resource.
func transient(err error) bool {
	var se *ServiceError
	if errors.As(err, &se) {
		return se.Status == http.StatusTooManyRequests || se.Status >= 500
	}
	return err != nil
}

// client speaks RFC 7644 to one service, within the sink's limits.
type client struct {
	base    string
	http    *http.Client
	auth    func(*http.Request)
	timeout time.Duration
	slots   chan struct{}
	pace    *pacer
	// backoff is the wait after the first failed attempt; tests shorten it.
	backoff time.Duration
	// intercept, when set, sees each request first and answers it
	// instead of the service when it reports handled (a dry run's
	// writes).
	intercept func(ctx context.Context, method, path string, body, out any) (handled bool, err error)
}

func newClient(cfg config.Sink, base *http.Client) *client {
	if base == nil {
		base = &http.Client{}
	}
	c := &client{
		base:    strings.TrimRight(cfg.URL, "/"),
		http:    base,
		auth:    func(*http.Request) {},
		timeout: time.Duration(cfg.Limits.Timeout),
		slots:   make(chan struct{}, max(cfg.Limits.Concurrency, 1)),
		pace:    newPacer(float64(cfg.Limits.Rate)),
		backoff: 500 * time.Millisecond,
	}
	a := cfg.Auth
	switch {
	case a.Bearer != "":
		c.auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+a.Bearer) }
	case a.Basic != nil:
		c.auth = func(r *http.Request) { r.SetBasicAuth(a.Basic.Username, a.Basic.Password) }
	case a.OAuth2 != nil:
		cc := clientcredentials.Config{ClientID: a.OAuth2.ClientID, ClientSecret: a.OAuth2.ClientSecret,
			TokenURL: a.OAuth2.TokenURL, Scopes: a.OAuth2.Scopes}
		// The token source keeps the token until it expires; the base
		// client is used for the token requests too.
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, base)
		c.http = cc.Client(ctx)
		c.http.Timeout = base.Timeout
	}
	return c
}

// do sends one request and decodes a successful answer into out (when not
// nil). It retries 429, 5xx and network failures with back-off, waiting
// what Retry-After asks for. Errors name the method and the path below the
// base URL only: the URL and the answer may not carry credentials, but the
// configuration's URL might.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	if c.intercept != nil {
		if handled, err := c.intercept(ctx, method, path, body, out); handled {
			return err
		}
	}
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	wait := c.backoff
	var last error
	for attempt := range attempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		retryAfter, err := c.once(ctx, method, path, payload, out)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		last = err
		if retryAfter > 0 {
			wait = min(retryAfter, time.Minute)
		}
	}
	return last
}

func (c *client) once(ctx context.Context, method, path string, payload []byte, out any) (time.Duration, error) {
	if err := c.pace.wait(ctx); err != nil {
		return 0, err
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-c.slots }()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/scim+json, application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	c.auth(req)
	res, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is the configuration's, and may hold a key
		}
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return 0, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		var retryAfter time.Duration
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
		return retryAfter, &ServiceError{Method: method, Path: path, Status: res.StatusCode, Detail: detail(data)}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return 0, fmt.Errorf("%s %s: the answer is not SCIM JSON: %w", method, path, err)
		}
	}
	return 0, nil
}

// detail is what a SCIM error (RFC 7644 §3.12) says, or the start of
// another body.
func detail(body []byte) string {
	var e struct {
		Detail   string `json:"detail"`
		SCIMType string `json:"scimType"`
	}
	if json.Unmarshal(body, &e) == nil && e.Detail != "" {
		if e.SCIMType != "" {
			return e.SCIMType + ": " + e.Detail
		}
		return e.Detail
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// pacer spaces requests to a rate; a zero rate does not wait.
type pacer struct {
	mu    sync.Mutex
	every time.Duration
	next  time.Time
}

func newPacer(perSecond float64) *pacer {
	p := &pacer{}
	if perSecond > 0 {
		p.every = time.Duration(float64(time.Second) / perSecond)
	}
	return p
}

func (p *pacer) wait(ctx context.Context) error {
	if p.every == 0 {
		return nil
	}
	p.mu.Lock()
	now := time.Now()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.every)
	p.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return nil
}
