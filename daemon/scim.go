package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/scimerr"
)

// mountSCIM serves the directory at /scim/v2 with the tokens in force
// (reloads apply at once) and counts every answer.
func (d *Daemon) mountSCIM(reg prometheus.Registerer) error {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "roster_scim_requests_total",
		Help: "SCIM requests answered, by method, resource endpoint and status code.",
	}, []string{"method", "resource", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "roster_scim_request_duration_seconds",
		Help:    "How long SCIM requests took to answer, by method and resource endpoint.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
	}, []string{"method", "resource"})
	for _, c := range []prometheus.Collector{requests, duration} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register SCIM metrics: %w", err)
		}
	}
	timeout := func() time.Duration {
		if cfg := d.Config(); cfg != nil && cfg.Limits.QueryTimeout > 0 {
			return time.Duration(cfg.Limits.QueryTimeout)
		}
		return defaultQueryTimeout
	}
	// The custom attributes are fixed for the process: a reload that
	// changes them is refused (Reload).
	users := scim.UserType(&d.Config().Attributes)
	d.Handle("/scim/v2/", scim.NewHandler(scim.Options{
		Users:         users,
		Directory:     newBoundedDirectory(d.store.SCIMFor(users), d.store.Driver(), timeout, d.log.With("component", "scim")),
		Writer:        d.store.SCIMWriter(),
		Source:        func() string { return scimSource(d.Config()) },
		Authenticator: scim.Tokens(func() []config.Token { return d.Config().Tokens }),
		Logger:        d.log.With("component", "scim"),
		Observe: func(method, resource string, status int, elapsed time.Duration) {
			method = metricMethod(method)
			requests.WithLabelValues(method, resource, strconv.Itoa(status)).Inc()
			duration.WithLabelValues(method, resource).Observe(elapsed.Seconds())
		},
	}))
	return nil
}

// scimSource names the source SCIM writes go to: the configured source
// of type scim (there is at most one), or "" when there is none or it is
// disabled, as a disabled source takes no input.
func scimSource(cfg *config.Config) string {
	if cfg == nil {
		return ""
	}
	for _, s := range cfg.Sources {
		if s.Type == config.TypeSCIM {
			if !s.Enabled {
				return ""
			}
			return s.Name
		}
	}
	return ""
}

// metricMethod keeps a client's invented methods from creating series.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return m
	}
	return "other"
}

// defaultQueryTimeout is limits.query_timeout's default, for a daemon
// without a configuration.
const defaultQueryTimeout = 10 * time.Second

// boundedDirectory bounds what one SCIM read may cost the database
// (issue 16): every read has a deadline, limits.query_timeout, which
// stops its query in the database (see store.ErrQueryTimeout) and is
// answered 503 with Retry-After; and reads that may visit the whole
// directory, anything but a look-up by id or userName (or a group's
// displayName), take one of a few slots, half the host's cores and at
// most half the store's connections, so that however many of them arrive at once, look-ups, writes and
// /readyz always find a connection.
type boundedDirectory struct {
	dir     scim.Directory
	timeout func() time.Duration
	scans   chan struct{}
	log     *slog.Logger
}

var _ scim.Directory = (*boundedDirectory)(nil)

func newBoundedDirectory(dir scim.Directory, driver string, timeout func() time.Duration, log *slog.Logger) *boundedDirectory {
	// Half the host's cores, so that look-ups always find one free, and
	// at most half the connections (PostgreSQL has 16, SQLite 4).
	slots := min(max(1, runtime.NumCPU()/2), 8)
	if driver == store.SQLite {
		slots = min(slots, 2)
	}
	return &boundedDirectory{dir: dir, timeout: timeout, scans: make(chan struct{}, slots), log: log}
}

// boundedRead runs read with the deadline, in a scan slot unless lookup.
func boundedRead[T any](ctx context.Context, b *boundedDirectory, resource string, lookup bool, read func(context.Context) (T, error)) (T, error) {
	timeout := b.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var zero T
	if !lookup {
		select {
		case b.scans <- struct{}{}:
			defer func() { <-b.scans }()
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				b.log.Warn("scim read refused: the directory was busy with other lists and filters until its deadline",
					"resource", resource, "timeout", timeout)
				return zero, queryTimeout(timeout, fmt.Sprintf(
					"the server was busy with other lists and filters for limits.query_timeout (%s); retry later", timeout))
			}
			return zero, ctx.Err()
		}
	}
	v, err := read(ctx)
	if err != nil && (errors.Is(err, store.ErrQueryTimeout) || errors.Is(ctx.Err(), context.DeadlineExceeded)) {
		b.log.Warn("scim read stopped at its deadline", "resource", resource, "timeout", timeout, "err", err)
		return zero, queryTimeout(timeout, fmt.Sprintf(
			"the query ran longer than limits.query_timeout (%s) and was stopped; narrow the filter, or retry later", timeout))
	}
	return v, err
}

// queryTimeout is the 503 of a read stopped at its deadline. RFC 7644
// has no error for it; 503 with Retry-After says that the request was
// sound and the server could not afford it now.
func queryTimeout(timeout time.Duration, detail string) error {
	return &scimerr.Error{
		Status: http.StatusServiceUnavailable,
		Detail: detail,
		Header: http.Header{"Retry-After": {strconv.Itoa(max(1, int(timeout.Round(time.Second)/time.Second)))}},
	}
}

func (b *boundedDirectory) Users(ctx context.Context, q scim.Query) (*scim.Page[scim.User], error) {
	return boundedRead(ctx, b, "Users", isLookup(q, "id", "userName"), func(ctx context.Context) (*scim.Page[scim.User], error) {
		return b.dir.Users(ctx, q)
	})
}

func (b *boundedDirectory) User(ctx context.Context, id string, inc scim.Include) (*scim.User, error) {
	return boundedRead(ctx, b, "Users", true, func(ctx context.Context) (*scim.User, error) { return b.dir.User(ctx, id, inc) })
}

func (b *boundedDirectory) Groups(ctx context.Context, q scim.Query) (*scim.Page[scim.Group], error) {
	return boundedRead(ctx, b, "Groups", isLookup(q, "id", "displayName"), func(ctx context.Context) (*scim.Page[scim.Group], error) {
		return b.dir.Groups(ctx, q)
	})
}

func (b *boundedDirectory) Group(ctx context.Context, id string, inc scim.Include) (*scim.Group, error) {
	return boundedRead(ctx, b, "Groups", true, func(ctx context.Context) (*scim.Group, error) { return b.dir.Group(ctx, id, inc) })
}

var _ scim.MemberReader = (*boundedDirectory)(nil)

// Members reads one piece of a group's members, a range of an index, as
// a look-up with its own deadline: a group of any size is answered piece
// by piece, each piece bounded like any other read. A directory that
// reads no pieces never leaves members pending, so none are asked for.
func (b *boundedDirectory) Members(ctx context.Context, id, after string, limit int) ([]scim.Reference, error) {
	mr, ok := b.dir.(scim.MemberReader)
	if !ok {
		return nil, fmt.Errorf("group %q: the directory reads no members in pieces", id)
	}
	return boundedRead(ctx, b, "Groups", true, func(ctx context.Context) ([]scim.Reference, error) {
		return mr.Members(ctx, id, after, limit)
	})
}

// isLookup tells whether q selects at most a handful of resources
// through an index whatever else it asks: its filter's top-level
// conjunction holds attr eq "value" for one of attrs, and it has no
// offset (an offset reads the rows it skips).
func isLookup(q scim.Query, attrs ...string) bool {
	if q.Offset > 0 {
		return false
	}
	var walk func(e filter.Expr) bool
	walk = func(e filter.Expr) bool {
		switch e := e.(type) {
		case *filter.And:
			return walk(e.Left) || walk(e.Right)
		case *filter.Compare:
			if e.Op != filter.Eq || e.Value.Kind != filter.KindString || e.Attr.Sub != "" ||
				(e.Attr.URN != "" && !strings.EqualFold(e.Attr.URN, "urn:ietf:params:scim:schemas:core:2.0:User") &&
					!strings.EqualFold(e.Attr.URN, "urn:ietf:params:scim:schemas:core:2.0:Group")) {
				return false
			}
			for _, a := range attrs {
				if strings.EqualFold(e.Attr.Name, a) {
					return true
				}
			}
		}
		return false
	}
	return walk(q.Filter)
}
