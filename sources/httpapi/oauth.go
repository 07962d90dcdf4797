package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxTokenBody bounds a token endpoint's answer.
const maxTokenBody = 1 << 20

// authorization returns the Authorization header value for the next request,
// fetching an OAuth2 token when none is cached or it is about to expire.
func (f *fetcher) authorization(ctx context.Context) (string, error) {
	switch {
	case f.o.Bearer != "":
		return "Bearer " + f.o.Bearer, nil
	case f.o.Basic != nil:
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(f.o.Basic.Username, f.o.Basic.Password)
		return req.Header.Get("Authorization"), nil
	case f.o.OAuth2 != nil:
		if f.tok.value != "" && (f.tok.expires.IsZero() || time.Now().Before(f.tok.expires)) {
			return f.tok.value, nil
		}
		tok, err := f.fetchToken(ctx)
		if err != nil {
			return "", err
		}
		f.tok = tok
		return tok.value, nil
	}
	return "", nil
}

// fetchToken runs the client credentials grant, with the same retries as a
// page.
func (f *fetcher) fetchToken(ctx context.Context) (token, error) {
	c := f.o.OAuth2
	tu, _ := url.Parse(c.TokenURL) // checked by newFetcher
	shown := f.printURL(tu)
	for attempt := 1; ; attempt++ {
		tok, retryAfter, err := f.tokenAttempt(ctx, c)
		if err == nil {
			return tok, nil
		}
		if ctx.Err() != nil {
			return token{}, fmt.Errorf("httpapi: token endpoint %s: %w", shown, ctx.Err())
		}
		te := err.(*tokenFailure)
		if !te.retryable {
			return token{}, &TokenError{URL: shown, StatusCode: te.status, Message: te.msg}
		}
		if attempt > f.o.Retries {
			msg := te.msg
			if attempt > 1 {
				msg += fmt.Sprintf(" (after %d attempts)", attempt)
			}
			return token{}, &TransientError{Err: &TokenError{URL: shown, StatusCode: te.status, Message: msg}}
		}
		wait := f.backoff(attempt)
		if retryAfter > 0 {
			wait = retryAfter
		}
		f.warn("token endpoint %s: %s; tried again after %s", shown, te.msg, wait)
		if err := sleep(ctx, wait); err != nil {
			return token{}, fmt.Errorf("httpapi: token endpoint %s: %w", shown, err)
		}
	}
}

type tokenFailure struct {
	status    int
	msg       string // scrubbed
	retryable bool
}

func (e *tokenFailure) Error() string { return e.msg }

func (f *fetcher) tokenAttempt(ctx context.Context, c *OAuth2) (token, time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(c.Scopes) > 0 {
		form.Set("scope", strings.Join(c.Scopes, " "))
	}
	actx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return token{}, 0, &tokenFailure{msg: f.redact(err.Error())}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "roster-httpapi")
	// RFC 6749, 2.3.1: client id and secret are form-encoded, then sent
	// as HTTP basic authentication.
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	resp, err := f.client.Do(req)
	if err != nil {
		return token{}, 0, &tokenFailure{msg: "unreachable: " + f.transportMessage(err), retryable: true}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := "answered " + resp.Status
		if body := f.excerpt(resp.Body); body != "" {
			msg += ": " + body
		}
		return token{}, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), &tokenFailure{
			status:    resp.StatusCode,
			msg:       msg,
			retryable: resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500,
		}
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	cr := &countingReader{r: io.LimitReader(resp.Body, maxTokenBody+1)}
	err = json.NewDecoder(cr).Decode(&tr)
	if cr.err != nil {
		return token{}, 0, &tokenFailure{status: resp.StatusCode, msg: "reading the answer failed: " + f.transportMessage(cr.err), retryable: true}
	}
	if cr.n > maxTokenBody {
		return token{}, 0, &tokenFailure{status: resp.StatusCode, msg: fmt.Sprintf("the answer is larger than %d bytes", maxTokenBody)}
	}
	if err != nil {
		// The decoder's message never quotes string values.
		return token{}, 0, &tokenFailure{status: resp.StatusCode, msg: "the answer is not a JSON token response: " + f.redact(strings.TrimPrefix(err.Error(), "json: "))}
	}
	if tr.AccessToken == "" {
		return token{}, 0, &tokenFailure{status: resp.StatusCode, msg: "the answer has no access_token"}
	}
	f.secrets = append(f.secrets, tr.AccessToken)
	typ := tr.TokenType
	if typ == "" || strings.EqualFold(typ, "bearer") {
		typ = "Bearer"
	}
	tok := token{value: typ + " " + tr.AccessToken}
	if secs, ok := expiresIn(tr.ExpiresIn); ok && secs > 0 {
		life := time.Duration(secs) * time.Second
		margin := 30 * time.Second
		if life < 2*margin {
			margin = life / 2
		}
		tok.expires = time.Now().Add(life - margin)
	}
	return tok, 0, nil
}

// expiresIn reads expires_in as a number or a string of digits, as some
// servers send it.
func expiresIn(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || n < 0 || n > 1<<31 {
		return 0, false
	}
	return int64(n), true
}
