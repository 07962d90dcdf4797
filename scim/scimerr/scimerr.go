// Package scimerr is the SCIM error response of RFC 7644 §3.12.
package scimerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rosterd/roster/scim/schema"
)

// ContentType is the media type of SCIM responses (RFC 7644 §3.1).
const ContentType = "application/scim+json"

// The scimType keywords of RFC 7644 §3.12, Table 9.
const (
	TypeInvalidFilter = "invalidFilter"
	TypeTooMany       = "tooMany"
	TypeUniqueness    = "uniqueness"
	TypeMutability    = "mutability"
	TypeInvalidSyntax = "invalidSyntax"
	TypeInvalidPath   = "invalidPath"
	TypeNoTarget      = "noTarget"
	TypeInvalidValue  = "invalidValue"
	TypeInvalidVers   = "invalidVers"
	TypeSensitive     = "sensitive"
)

// internalDetail is all a client learns of an unexpected error: the
// error's own text may hold SQL, file paths or personal data.
const internalDetail = "internal server error; the server log has the details"

// Error is a SCIM error. Its Detail is sent to the client, so it must
// not hold anything the client may not see.
type Error struct {
	Status   int
	ScimType string // one of the Type constants, or empty
	Detail   string
	// Header holds response headers the status calls for, such as Allow
	// with 405 or WWW-Authenticate with 401; Write sends them.
	Header http.Header
}

func (e *Error) Error() string {
	if e.ScimType == "" {
		return fmt.Sprintf("scim %d: %s", e.Status, e.Detail)
	}
	return fmt.Sprintf("scim %d %s: %s", e.Status, e.ScimType, e.Detail)
}

// wire is the JSON form; status is a string there (RFC 7644 §3.12).
type wire struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// MarshalJSON encodes the error as RFC 7644 §3.12 has it, with the status
// as a JSON string.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(wire{
		Schemas:  []string{schema.ErrorURN},
		Status:   strconv.Itoa(e.Status),
		ScimType: e.ScimType,
		Detail:   e.Detail,
	})
}

// UnmarshalJSON decodes an error response. It also takes the status as a
// JSON number, which some SCIM servers send, so that tests and clients
// can read either.
func (e *Error) UnmarshalJSON(b []byte) error {
	var w struct {
		Status   json.RawMessage `json:"status"`
		ScimType string          `json:"scimType"`
		Detail   string          `json:"detail"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	s := strings.Trim(string(w.Status), `"`)
	status, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("scim error status %s is not an HTTP status code", w.Status)
	}
	*e = Error{Status: status, ScimType: w.ScimType, Detail: w.Detail}
	return nil
}

// From returns the *Error that Write sends for err: the *Error in err's
// chain, or a generic 500 for anything else. Callers use it to log the
// errors that turn into a 500 and to count responses by status.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e != nil && e.Status >= 400 && e.Status <= 599 {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Detail: internalDetail}
}

// Write sends err as a SCIM error response. An *Error anywhere in err's
// chain is sent as it is; any other error, including nil, becomes a 500
// whose detail says nothing of the error, since its text could leak
// internals. The caller logs such errors (see From).
func Write(w http.ResponseWriter, err error) {
	e := From(err)
	h := w.Header()
	for k, vs := range e.Header {
		h.Del(k)
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	h.Set("Content-Type", ContentType)
	// A length or validator set for the response that failed would be
	// wrong for the error body.
	h.Del("Content-Length")
	h.Del("ETag")
	body, _ := json.Marshal(e) // cannot fail: strings and a slice only
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

func bad(scimType, detail string) *Error {
	return &Error{Status: http.StatusBadRequest, ScimType: scimType, Detail: detail}
}

// InvalidFilter is a filter that does not parse, or compares an attribute
// in a way that is not supported (400).
func InvalidFilter(detail string) *Error { return bad(TypeInvalidFilter, detail) }

// TooMany is a query whose result the server will not compute (400).
func TooMany(detail string) *Error { return bad(TypeTooMany, detail) }

// Uniqueness is a value already taken, such as a duplicate userName
// (409, RFC 7644 §3.3).
func Uniqueness(detail string) *Error {
	return &Error{Status: http.StatusConflict, ScimType: TypeUniqueness, Detail: detail}
}

// Mutability is a change to a read-only or immutable attribute, or to a
// resource the caller's source does not own (400).
func Mutability(detail string) *Error { return bad(TypeMutability, detail) }

// InvalidSyntax is a request body that is not valid JSON or does not fit
// the request's schema (400).
func InvalidSyntax(detail string) *Error { return bad(TypeInvalidSyntax, detail) }

// InvalidPath is a PATCH path that is malformed or names no attribute
// (400).
func InvalidPath(detail string) *Error { return bad(TypeInvalidPath, detail) }

// NoTarget is a PATCH path whose filter matches no value (400).
func NoTarget(detail string) *Error { return bad(TypeNoTarget, detail) }

// InvalidValue is a missing required value or a value of the wrong type
// (400).
func InvalidValue(detail string) *Error { return bad(TypeInvalidValue, detail) }

// InvalidVers is a SCIM protocol version the server does not speak (400).
func InvalidVers(detail string) *Error { return bad(TypeInvalidVers, detail) }

// Sensitive is personal data passed in a request URI (400, RFC 7644
// §7.5.2).
func Sensitive(detail string) *Error { return bad(TypeSensitive, detail) }

// NotFound is a resource that does not exist, or is deleted (404).
func NotFound(resource, id string) *Error {
	return &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("%s %q not found", resource, id)}
}

// Unauthorized is a request without valid credentials (401). It carries
// the WWW-Authenticate challenge that RFC 6750 §3 requires of a 401.
func Unauthorized(detail string) *Error {
	return &Error{
		Status: http.StatusUnauthorized,
		Detail: detail,
		Header: http.Header{"Www-Authenticate": {`Bearer realm="roster"`}},
	}
}

// Forbidden is an authenticated request the token's scopes do not allow
// (403).
func Forbidden(detail string) *Error {
	return &Error{Status: http.StatusForbidden, Detail: detail}
}

// MethodNotAllowed is a method the endpoint does not take (405). HTTP
// requires the Allow header with a 405, so the allowed methods are
// arguments.
func MethodNotAllowed(method string, allowed ...string) *Error {
	e := &Error{
		Status: http.StatusMethodNotAllowed,
		Detail: fmt.Sprintf("method %s is not allowed here", method),
	}
	if len(allowed) > 0 {
		e.Header = http.Header{"Allow": {strings.Join(allowed, ", ")}}
	}
	return e
}

// PreconditionFailed is an If-Match whose version is no longer current
// (412).
func PreconditionFailed(detail string) *Error {
	return &Error{Status: http.StatusPreconditionFailed, Detail: detail}
}

// PayloadTooLarge is a request body over the configured limit of limit
// bytes (413); the detail names the limit so the client can adapt.
func PayloadTooLarge(limit int64) *Error {
	return &Error{
		Status: http.StatusRequestEntityTooLarge,
		Detail: fmt.Sprintf("the request body exceeds the limit of %s", size(limit)),
	}
}

// NotImplemented is an operation roster does not offer, such as /Bulk or
// /Me (501).
func NotImplemented(detail string) *Error {
	return &Error{Status: http.StatusNotImplemented, Detail: detail}
}

// RetryAfter is the Retry-After, in seconds, of Unavailable.
const RetryAfter = 5

// Unavailable is a request that failed because the directory's database
// could not be reached; the client may send it again (503, with
// Retry-After). The detail says nothing of the database.
func Unavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable,
		Detail: "the directory is unavailable for a moment; try again later",
		Header: http.Header{"Retry-After": {strconv.Itoa(RetryAfter)}}}
}

// size writes a byte count in the units the configuration spells limits
// in ("10MiB"), falling back to bytes so the figure is never rounded.
func size(n int64) string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.n && n%u.n == 0 {
			return fmt.Sprintf("%d %s", n/u.n, u.name)
		}
	}
	if n == 1 {
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}
