package scimerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rosterd/roster/scim/schema"
)

func TestMarshalJSON(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{InvalidFilter(`unexpected "foo" at 9`),
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidFilter","detail":"unexpected \"foo\" at 9"}`},
		{NotFound("User", "2819c223"),
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404","detail":"User \"2819c223\" not found"}`},
		{&Error{Status: 409, ScimType: TypeUniqueness},
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.err)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("json.Marshal(%v)\n got %s\nwant %s", tt.err, b, tt.want)
		}
	}
}

func TestStatusIsString(t *testing.T) {
	b, _ := json.Marshal(Uniqueness("userName bjensen is taken"))
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if s, ok := m["status"].(string); !ok || s != "409" {
		t.Errorf("status = %#v; want the string \"409\"", m["status"])
	}
	if m["schemas"].([]any)[0] != schema.ErrorURN {
		t.Errorf("schemas = %v", m["schemas"])
	}
}

func TestUnmarshalJSON(t *testing.T) {
	for _, in := range []string{
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidPath","detail":"d"}`,
		`{"status":400,"scimType":"invalidPath","detail":"d"}`,
	} {
		var e Error
		if err := json.Unmarshal([]byte(in), &e); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if e.Status != 400 || e.ScimType != TypeInvalidPath || e.Detail != "d" {
			t.Errorf("%s: %+v", in, e)
		}
	}
	for _, in := range []string{`{"detail":"no status"}`, `{"status":"bad"}`, `[]`} {
		var e Error
		if err := json.Unmarshal([]byte(in), &e); err == nil {
			t.Errorf("%s: decoded as %+v", in, e)
		}
	}
}

func TestConstructors(t *testing.T) {
	tests := []struct {
		err      *Error
		status   int
		scimType string
	}{
		{InvalidFilter("x"), 400, "invalidFilter"},
		{TooMany("x"), 400, "tooMany"},
		{Uniqueness("x"), 409, "uniqueness"},
		{Mutability("x"), 400, "mutability"},
		{InvalidSyntax("x"), 400, "invalidSyntax"},
		{InvalidPath("x"), 400, "invalidPath"},
		{NoTarget("x"), 400, "noTarget"},
		{InvalidValue("x"), 400, "invalidValue"},
		{InvalidVers("x"), 400, "invalidVers"},
		{Sensitive("x"), 400, "sensitive"},
		{NotFound("Group", "g1"), 404, ""},
		{Unauthorized("x"), 401, ""},
		{Forbidden("x"), 403, ""},
		{MethodNotAllowed("DELETE", "GET"), 405, ""},
		{PreconditionFailed("x"), 412, ""},
		{PayloadTooLarge(10 << 20), 413, ""},
		{NotImplemented("x"), 501, ""},
	}
	for _, tt := range tests {
		if tt.err.Status != tt.status || tt.err.ScimType != tt.scimType || tt.err.Detail == "" {
			t.Errorf("%v: want %d %q with a detail", tt.err, tt.status, tt.scimType)
		}
	}
}

func TestPayloadTooLargeNamesLimit(t *testing.T) {
	for limit, want := range map[int64]string{
		10 << 20: "10 MiB",
		64 << 20: "64 MiB",
		1 << 30:  "1 GiB",
		1500:     "1500 bytes",
		2048:     "2 KiB",
		1:        "1 byte",
	} {
		if d := PayloadTooLarge(limit).Detail; !strings.Contains(d, want) {
			t.Errorf("PayloadTooLarge(%d).Detail = %q; want it to name %s", limit, d, want)
		}
	}
}

func TestError(t *testing.T) {
	if got := InvalidFilter("bad").Error(); got != "scim 400 invalidFilter: bad" {
		t.Errorf("Error() = %q", got)
	}
	if got := Forbidden("no scope").Error(); got != "scim 403: no scope" {
		t.Errorf("Error() = %q", got)
	}
}

func write(err error) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	Write(rec, err)
	return rec
}

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return m
}

func TestWrite(t *testing.T) {
	rec := write(Uniqueness(`userName "bjensen" is taken`))
	if rec.Code != http.StatusConflict {
		t.Errorf("status %d; want 409", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/scim+json" {
		t.Errorf("Content-Type %q", ct)
	}
	m := decodeBody(t, rec)
	if m["status"] != "409" || m["scimType"] != "uniqueness" || m["detail"] != `userName "bjensen" is taken` {
		t.Errorf("body %v", m)
	}
}

func TestWriteWrapped(t *testing.T) {
	err := fmt.Errorf("parse filter: %w", InvalidFilter("unexpected end"))
	rec := write(err)
	m := decodeBody(t, rec)
	if rec.Code != 400 || m["scimType"] != "invalidFilter" || m["detail"] != "unexpected end" {
		t.Errorf("%d %v", rec.Code, m)
	}
}

func TestWriteHidesInternalErrors(t *testing.T) {
	secret := `pq: duplicate key value violates unique constraint "users_pkey" at /var/lib/roster/roster.db`
	for _, err := range []error{
		errors.New(secret),
		fmt.Errorf("wrapped: %w", errors.New(secret)),
		nil,
		(*Error)(nil),
		&Error{Status: 200, Detail: secret}, // not an error status: a bug
		&Error{Detail: secret},
	} {
		rec := write(err)
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("%v: status %d; want 500", err, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "pq:") || strings.Contains(rec.Body.String(), "/var/lib") {
			t.Errorf("%v: body leaks the internal error: %s", err, rec.Body)
		}
		m := decodeBody(t, rec)
		if m["status"] != "500" || m["detail"] == "" {
			t.Errorf("%v: body %v", err, m)
		}
		if _, ok := m["scimType"]; ok {
			t.Errorf("%v: scimType on a 500", err)
		}
		if ct := rec.Header().Get("Content-Type"); ct != ContentType {
			t.Errorf("Content-Type %q", ct)
		}
	}
}

func TestWriteHeaders(t *testing.T) {
	rec := write(Unauthorized("missing bearer token"))
	if rec.Code != 401 || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401: %d, WWW-Authenticate %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	rec = write(MethodNotAllowed("DELETE", "GET", "POST"))
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, POST" {
		t.Errorf("405: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}

	rec = httptest.NewRecorder()
	rec.Header().Set("Content-Type", "text/plain")
	rec.Header().Set("ETag", `W/"3"`)
	rec.Header().Set("Content-Length", "12")
	Write(rec, PreconditionFailed("the resource changed"))
	if rec.Header().Get("Content-Type") != ContentType || rec.Header().Get("ETag") != "" || rec.Header().Get("Content-Length") != "" {
		t.Errorf("headers left from the failed response: %v", rec.Header())
	}
}

func TestFrom(t *testing.T) {
	e := NotFound("User", "x")
	if From(fmt.Errorf("get: %w", e)) != e {
		t.Error("From does not find a wrapped *Error")
	}
	if got := From(errors.New("boom")); got.Status != 500 || strings.Contains(got.Detail, "boom") {
		t.Errorf("From(other) = %+v", got)
	}
}

func TestUnavailable(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, fmt.Errorf("list /Users: %w", Unavailable()))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" {
		t.Fatalf("Unavailable: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if body := rec.Body.String(); !strings.Contains(body, `"status":"503"`) || strings.Contains(body, "list /Users") {
		t.Errorf("Unavailable body: %s", body)
	}
}
