package scim

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/rosterd/roster/scim/filter"
)

// Directory is what the SCIM layer reads resources from. It is small and
// storage-agnostic: a parsed filter goes in, wire-form resources come out.
// The store implements it by turning the filter into parameterised SQL.
//
// Resources come back complete except for what depends on where the
// endpoint is served or on the request: Schemas, meta.resourceType,
// meta.location and the $ref of references are filled in by the Handler,
// which also applies the attributes and excludedAttributes parameters.
type Directory interface {
	// Users returns one page of the users q selects. Deleted users
	// (tombstones) are never part of it; inactive users are.
	Users(ctx context.Context, q Query) (*Page[User], error)
	// User returns the user with the given id, or an error wrapping
	// ErrNotFound for an unknown id or a tombstone.
	User(ctx context.Context, id string, inc Include) (*User, error)
	// Groups returns one page of the groups q selects.
	Groups(ctx context.Context, q Query) (*Page[Group], error)
	// Group returns the group with the given id, or an error wrapping
	// ErrNotFound.
	Group(ctx context.Context, id string, inc Include) (*Group, error)
}

// Query selects, orders and pages resources.
type Query struct {
	// Filter selects resources; nil selects all of them. Attribute names
	// are as the client wrote them (RFC 7643 §2.1: case-insensitive, with
	// or without the schema URN); the Handler has checked every path
	// against the resource type's schema and every value against the
	// attribute's type. A Directory that cannot evaluate a filter returns
	// a *FilterError.
	Filter filter.Expr
	// SortBy is an attribute path in canonical spelling (see the Sort
	// constants), or "" for the default order, which is by id (ids are UUIDv7, so that is
	// creation order). Resources with equal sort values are ordered by id.
	SortBy string
	// Descending reverses the order, the id tie-break included.
	Descending bool
	// Offset is how many matching resources to skip (startIndex - 1).
	// Cursor pagination ignores it.
	Offset int
	// Count is the most resources the page holds; 0 asks for the total
	// only.
	Count int
	// Cursor asks for cursor pagination (RFC 9865): the page starts after
	// After (at the beginning when After is nil), and Page.Next is set
	// when resources follow the page. The cost of a page must not grow
	// with its depth.
	Cursor bool
	After  *Position
	// Include says which multi-valued attributes to load with each
	// resource.
	Include Include
}

// Include names the multi-valued attributes a Directory loads. Each one
// costs a query per page, so the Handler asks only for what the response
// holds: excludedAttributes=members leaves Members false and the
// memberships unread.
type Include struct {
	Emails       bool // User emails
	PhoneNumbers bool // User phoneNumbers
	Groups       bool // User groups (direct memberships)
	Members      bool // Group members
	Owners       bool // Group owners (roster's Group extension)
}

// All includes every multi-valued attribute.
var All = Include{Emails: true, PhoneNumbers: true, Groups: true, Members: true, Owners: true}

// Position is where a cursor page ends: the sort value and the id of its
// last resource. Key is the Directory's own encoding of the sort value;
// the Handler carries both, opaque, inside the cursor it gives clients.
type Position struct {
	Key string
	ID  string
}

// Page is one page of a list or search.
type Page[T any] struct {
	Resources []*T
	// Total is the number of resources the filter selects, on every page.
	Total int
	// Next is the position of the page's last resource when, with
	// cursor pagination, more resources follow; nil otherwise.
	Next *Position
}

// The attribute paths resources are most often sorted by (RFC 7644
// §3.4.2.3). Any other attribute path of the resource type's schemas may
// be given too, in its canonical spelling (the schema's names; extension
// attributes prefixed with their URN and a colon); a multi-valued
// attribute sorts by its primary value, or else its first.
const (
	SortID           = "id"
	SortUserName     = "userName"
	SortDisplayName  = "displayName"
	SortGivenName    = "name.givenName"
	SortFamilyName   = "name.familyName"
	SortExternalID   = "externalId"
	SortCreated      = "meta.created"
	SortLastModified = "meta.lastModified"
	SortEmails       = "emails"
)

// ErrNotFound is wrapped by the errors a Directory returns for a resource
// that does not exist or is deleted.
var ErrNotFound = errors.New("no such resource")

// ErrInvalidSort is wrapped by the errors a Directory returns for a
// sortBy attribute that has no order, such as a reference.
var ErrInvalidSort = errors.New("the attribute cannot be sorted by")

// ErrInvalidCursor is wrapped by the errors a Directory returns for a
// Position it cannot have produced.
var ErrInvalidCursor = errors.New("invalid cursor")

// FilterError is a filter a Directory cannot evaluate, such as one on an
// attribute it keeps no data for. The Handler answers 400 invalidFilter
// with its text.
type FilterError struct {
	Msg string
}

func (e *FilterError) Error() string { return "invalid filter: " + e.Msg }

// WeakVersion renders a resource version as meta.version and the ETag
// header carry it: a weak entity tag (RFC 7232 §2.3), since equal
// versions promise equal content but not equal bytes.
func WeakVersion(n int64) string { return `W/"` + strconv.FormatInt(n, 10) + `"` }

// ParseVersion reads a version that WeakVersion wrote, or a bare or
// quoted number, as a client may send one in a filter on meta.version.
func ParseVersion(s string) (int64, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	s = strings.TrimSuffix(strings.TrimPrefix(s, `"`), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// FormattedName is name.formatted as roster derives it: the given name,
// a space and the family name, without stray spaces when one is missing.
// A Directory evaluating filters on name.formatted must derive it the
// same way.
func FormattedName(given, family string) string {
	return strings.TrimSpace(given + " " + family)
}

// ParseDateTime reads a dateTime filter value (RFC 7643 §2.3.5, the
// xsd:dateTime of XML Schema): RFC 3339 with or without fractional
// seconds; a value without a time zone is taken as UTC. The result is in
// UTC.
func ParseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("not a dateTime such as 2026-01-02T15:04:05Z")
}
