package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/scimerr"
)

// slowDirectory answers each read when release is closed, or fails with
// the context's error when it ends first; lookups answer at once.
type slowDirectory struct {
	release chan struct{}
	mu      sync.Mutex
	running int
}

func (d *slowDirectory) wait(ctx context.Context) error {
	d.mu.Lock()
	d.running++
	d.mu.Unlock()
	select {
	case <-d.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *slowDirectory) Users(ctx context.Context, q scim.Query) (*scim.Page[scim.User], error) {
	if isLookup(q, "id", "userName") {
		return &scim.Page[scim.User]{}, nil
	}
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	return &scim.Page[scim.User]{}, nil
}

func (d *slowDirectory) User(context.Context, string, scim.Include) (*scim.User, error) {
	return &scim.User{}, nil
}

func (d *slowDirectory) Groups(ctx context.Context, q scim.Query) (*scim.Page[scim.Group], error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	return &scim.Page[scim.Group]{}, nil
}

func (d *slowDirectory) Group(context.Context, string, scim.Include) (*scim.Group, error) {
	return &scim.Group{}, nil
}

func mustFilter(t *testing.T, s string) filter.Expr {
	t.Helper()
	f, err := filter.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func want503(t *testing.T, what string, err error, timeout time.Duration) {
	t.Helper()
	var se *scimerr.Error
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable {
		t.Fatalf("%s: got %v, want a 503", what, err)
	}
	if got := se.Header.Get("Retry-After"); got == "" {
		t.Errorf("%s: no Retry-After", what)
	}
	if want := timeout.String(); !strings.Contains(se.Detail, "limits.query_timeout ("+want+")") {
		t.Errorf("%s: detail %q does not name limits.query_timeout (%s)", what, se.Detail, want)
	}
}

// TestBoundedDirectory: a SCIM read ends at limits.query_timeout with a
// 503 and Retry-After; reads that may scan the directory hold one of a
// few slots, so look-ups pass however many scans wait (issue 16,
// defect 1).
func TestBoundedDirectory(t *testing.T) {
	const timeout = 300 * time.Millisecond
	slow := &slowDirectory{release: make(chan struct{})}
	var limit atomic.Int64 // limits.query_timeout, as reloads change it
	limit.Store(int64(timeout))
	b := newBoundedDirectory(slow, store.SQLite, func() time.Duration { return time.Duration(limit.Load()) }, slog.New(slog.DiscardHandler))
	ctx := context.Background()

	start := time.Now()
	_, err := b.Users(ctx, scim.Query{Filter: mustFilter(t, `not (groups.value pr)`)})
	want503(t, "a scan past its deadline", err, timeout)
	if elapsed := time.Since(start); elapsed > timeout+time.Second {
		t.Errorf("the scan answered after %v; the deadline was %v", elapsed, timeout)
	}

	// Fill the scan slots with scans that have a minute.
	limit.Store(int64(time.Minute))
	var wg sync.WaitGroup
	for range cap(b.scans) {
		wg.Go(func() {
			b.Groups(ctx, scim.Query{Filter: mustFilter(t, `members.value co "x"`)})
		})
	}
	for {
		slow.mu.Lock()
		n := slow.running
		slow.mu.Unlock()
		if n == 1+cap(b.scans) { // the first scan, and the slots'
			break
		}
		time.Sleep(time.Millisecond)
	}
	limit.Store(int64(timeout))
	// A look-up passes at once, a further scan waits for a slot until its
	// deadline.
	lookups := []scim.Query{
		{Filter: mustFilter(t, `userName eq "jdoe"`)},
		{Filter: mustFilter(t, `USERNAME Eq "jdoe" and not (groups pr)`)},
		{Filter: mustFilter(t, `urn:ietf:params:scim:schemas:core:2.0:User:id eq "x"`)},
	}
	for _, q := range lookups {
		if !isLookup(q, "id", "userName") {
			t.Errorf("%s is no look-up", q.Filter)
		}
		if _, err := b.Users(ctx, q); err != nil {
			t.Errorf("the look-up %s waited: %v", q.Filter, err)
		}
	}
	slow.mu.Lock()
	before := slow.running
	slow.mu.Unlock()
	start = time.Now()
	_, err = b.Users(ctx, scim.Query{Filter: mustFilter(t, `userName eq "jdoe" or displayName co "x"`)})
	want503(t, "a scan waiting for a slot", err, timeout)
	if elapsed := time.Since(start); elapsed > timeout+time.Second {
		t.Errorf("the waiting scan answered after %v; the deadline was %v", elapsed, timeout)
	}
	slow.mu.Lock()
	if slow.running != before {
		t.Errorf("a scan ran although every slot was taken")
	}
	slow.mu.Unlock()
	if _, err := b.User(ctx, "x", scim.Include{}); err != nil {
		t.Errorf("a look-up by id waited: %v", err)
	}
	for _, q := range []scim.Query{
		{},
		{Filter: mustFilter(t, `userName eq "jdoe" or displayName co "x"`)},
		{Filter: mustFilter(t, `not (userName eq "jdoe")`)},
		{Filter: mustFilter(t, `userName co "jdoe"`)},
		{Filter: mustFilter(t, `userName eq "jdoe"`), Offset: 5},
		{Filter: mustFilter(t, `emails[value eq "jdoe"]`)},
	} {
		if isLookup(q, "id", "userName") {
			t.Errorf("%v is taken for a look-up", q)
		}
	}
	close(slow.release)
	wg.Wait()
}
