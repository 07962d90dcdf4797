// Package sinks provisions roster's directory into downstream SCIM 2.0
// services (SPEC §12, docs/sinks.md). A Sink follows the store's outbox:
// it reads each changed user or group as it is now, decides whether the
// sink's scope holds it, and creates, updates, deactivates or deletes it
// on the service, in plain RFC 7644. Delivery is at least once: the
// position in the outbox moves only after what it covers was delivered,
// and every request is one that can be repeated without harm.
package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
)

// Schema URNs of what a sink sends.
const (
	userURN  = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupURN = "urn:ietf:params:scim:schemas:core:2.0:Group"
	patchURN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	listURN  = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
)

// batch is how many outbox entries one step reads at a time.
const batch = 500

// Counts are what one delivery did, by action.
type Counts struct {
	Created     int `json:"created"`
	Adopted     int `json:"adopted"`
	Updated     int `json:"updated"`
	Deactivated int `json:"deactivated"`
	Deleted     int `json:"deleted"`
	Failed      int `json:"failed"`
}

// Sink delivers one configured sink.
type Sink struct {
	cfg    config.Sink
	store  *store.Store
	dir    scim.Directory
	client *client
	log    *slog.Logger
	scope  filter.Expr

	// patch is whether the service takes PATCH (its
	// /ServiceProviderConfig), read once per Run; so is bulk, the
	// service's /Bulk limits (zero maxOperations: no /Bulk).
	patch   bool
	bulk    bulkLimits
	checked bool
	// pending collects creates and updates for /Bulk while a delivery
	// of users runs on a service that takes it.
	pending *bulkQueue
	// listed is set while the service's users were just read whole
	// (a comparison): a user without a service id is not on the service,
	// and is created without asking.
	listed bool
	// prepared holds the in-scope users a comparison has just read, so
	// that their delivery does not read them again.
	prepared map[string]*scim.User
	// Errors are the per-resource failures of the last step, with the
	// service's answer; Fails the same, by resource, for the sink's runs.
	Errors []string
	Fails  []store.ResourceFail
	// Observe, when set, hears how each step of Run ended (metrics).
	Observe func(sink string, c Counts, err error)

	// Users, when set, is the User resource type with the configured
	// custom attributes, which are then sent (body.go).
	Users *schema.ResourceType

	// dry, during DryRun, holds what the run would have written; nil
	// otherwise (dryrun.go).
	dry *dryRun

	// warnedKey is set once the sink warned that secrets.key no longer
	// opens a kept password (passwords.go).
	warnedKey bool
	// mu guards Errors, Fails and warnedKey while users are delivered
	// concurrently (deliverUsers).
	mu sync.Mutex
}

// New returns the sink cfg describes, reading the directory through dir
// (the store's SCIM view). httpClient may be nil.
func New(cfg config.Sink, st *store.Store, dir scim.Directory, httpClient *http.Client, log *slog.Logger) (*Sink, error) {
	if cfg.CompareEvery <= 0 {
		cfg.CompareEvery = config.Duration(24 * time.Hour)
	}
	s := &Sink{cfg: cfg, store: st, dir: dir, client: newClient(cfg, httpClient), log: log.With("sink", cfg.Name)}
	if cfg.Scope.Filter != "" {
		f, err := filter.Parse(cfg.Scope.Filter)
		if err != nil {
			return nil, fmt.Errorf("sink %s: scope.filter: %w", cfg.Name, err)
		}
		s.scope = f
	}
	return s, nil
}

// Step delivers what is due: the first full comparison when the sink has
// never finished one, then the outbox up to its end.
func (s *Sink) Step(ctx context.Context) (Counts, error) {
	var c Counts
	s.Errors, s.Fails = nil, nil
	if !s.checked {
		if err := s.readConfig(ctx); err != nil {
			return c, err
		}
	}
	compared, err := s.store.SinkCompared(ctx, s.cfg.Name)
	if err != nil {
		return c, err
	}
	if compared.IsZero() || time.Since(compared) >= time.Duration(s.cfg.CompareEvery) {
		covered, err := s.outboxEnd(ctx)
		if err != nil {
			return c, err
		}
		if err := s.compare(ctx, &c); err != nil {
			return c, err
		}
		if err := s.store.SetSinkCompared(ctx, s.cfg.Name, time.Now()); err != nil {
			return c, err
		}
		// The comparison delivered the directory as it was after every
		// change the outbox showed before it began.
		if err := s.store.SetSinkPosition(ctx, s.cfg.Name, covered); err != nil {
			return c, err
		}
	}
	for {
		st, err := s.store.Sink(ctx, s.cfg.Name)
		if err != nil {
			return c, err
		}
		changes, err := s.store.Changes(ctx, st.Position, batch)
		if err != nil || len(changes) == 0 {
			return c, err
		}
		users, groups := resources(changes)
		release, err := s.checkRemovals(ctx, users)
		if err != nil {
			return c, err
		}
		if err := s.deliverAll(ctx, users, groups, &c); err != nil {
			return c, err
		}
		if release {
			if err := s.store.HoldSink(ctx, s.cfg.Name, ""); err != nil {
				return c, err
			}
		}
		if err := s.store.SetSinkPosition(ctx, s.cfg.Name, changes[len(changes)-1].Position); err != nil {
			return c, err
		}
	}
}

// ErrHeld is returned by Step while the sink waits for an operator: the
// users it would deactivate or delete next exceed its max_removals.
var ErrHeld = errors.New("held for an operator")

// resources are the users and the groups changes name, each once, in
// the order of their first change.
func resources(changes []store.Change) (users, groups []string) {
	seen := map[string]bool{}
	for _, ch := range changes {
		if seen[ch.Kind+"/"+ch.ResourceID] {
			continue
		}
		seen[ch.Kind+"/"+ch.ResourceID] = true
		if ch.Kind == store.KindUser {
			users = append(users, ch.ResourceID)
		} else {
			groups = append(groups, ch.ResourceID)
		}
	}
	return users, groups
}

// checkRemovals holds the sink when the users of a batch that would leave
// the service (deactivated or deleted) exceed max_removals of those it
// holds, unless an operator approved them; release reports that an
// approved hold is to be lifted once the batch is delivered.
func (s *Sink) checkRemovals(ctx context.Context, users []string) (release bool, err error) {
	n, err := s.countRemovals(ctx, users)
	if err != nil {
		return false, err
	}
	return s.holdFor(ctx, n)
}

// countRemovals counts the users the service holds that left the scope.
func (s *Sink) countRemovals(ctx context.Context, users []string) (int, error) {
	n := 0
	for _, id := range users {
		sid, err := s.serviceID(ctx, s.cfg.Name, store.KindUser, id)
		if err != nil || sid == "" {
			if err != nil {
				return 0, err
			}
			continue
		}
		in, err := s.inScope(ctx, id)
		if err != nil {
			return 0, err
		}
		if !in {
			n++
		}
	}
	return n, nil
}

// holdFor holds the sink when n removals exceed max_removals, unless an
// operator approved them; release reports that an approved hold is to be
// lifted once the delivery is done.
func (s *Sink) holdFor(ctx context.Context, n int) (release bool, err error) {
	st, err := s.store.Sink(ctx, s.cfg.Name)
	if errors.Is(err, store.ErrNotFound) && s.dry != nil {
		err = nil // a dry run of a sink no roster serve registered yet
	}
	if err != nil {
		return false, err
	}
	if n == 0 {
		return st.Held != "", nil
	}
	total, err := s.store.SinkServiceUsers(ctx, s.cfg.Name)
	if err != nil {
		return false, err
	}
	if limit := s.cfg.MaxRemovals.Limit(int(total)); n <= limit || st.Approved {
		return st.Held != "", nil
	}
	reason := holdReason(&s.cfg, n, int(total))
	if s.dry != nil {
		return false, s.dry.hold(reason)
	}
	if err := s.store.HoldSink(ctx, s.cfg.Name, reason); err != nil {
		return false, err
	}
	return false, fmt.Errorf("sink %s: %w: %s", s.cfg.Name, ErrHeld, reason)
}

// holdReason says why n removals of the total users the service holds
// hold the sink, naming the number max_removals allows as the sync's
// hold does: "more than max_removals 10%" left the operator to work out
// that 10% of 20 users is 2.
func holdReason(cfg *config.Sink, n, total int) string {
	verb := "deactivate"
	if cfg.OnRemove == config.OnRemoveDelete {
		verb = "delete"
	}
	allows := "max_removals"
	if cfg.MaxRemovals.IsPercent {
		allows = "max_removals " + cfg.MaxRemovals.String()
	}
	return fmt.Sprintf("the next delivery would %s %d of the %d users the service holds, more than the %d that %s allows; approve with roster sink %s --approve",
		verb, n, total, cfg.MaxRemovals.Limit(total), allows, cfg.Name)
}

// readConfig asks the service whether it takes PATCH and /Bulk.
func (s *Sink) readConfig(ctx context.Context) error {
	var spc struct {
		Patch struct {
			Supported bool `json:"supported"`
		} `json:"patch"`
		Bulk struct {
			Supported      bool `json:"supported"`
			MaxOperations  int  `json:"maxOperations"`
			MaxPayloadSize int  `json:"maxPayloadSize"`
		} `json:"bulk"`
	}
	if err := s.client.do(ctx, http.MethodGet, "/ServiceProviderConfig", nil, &spc); err != nil {
		return fmt.Errorf("sink %s: read the service's configuration: %w", s.cfg.Name, err)
	}
	s.patch, s.checked = spc.Patch.Supported, true
	s.bulk = bulkLimits{}
	if b := spc.Bulk; b.Supported && b.MaxOperations > 1 {
		s.bulk = bulkLimits{ops: min(b.MaxOperations, maxBulkOps), payload: b.MaxPayloadSize}
		if s.bulk.payload <= 0 {
			s.bulk.payload = 1 << 20 // RFC 7644 requires it; assume a cautious one
		}
	}
	return nil
}

// deliverAll delivers users, then groups (whose members must exist on
// the service first). A resource the service refuses is counted and
// reported and does not stop the others; a failing or unreachable service
// stops the step, so that the position does not move past what it lost.
func (s *Sink) deliverAll(ctx context.Context, users, groups []string, c *Counts) error {
	if s.bulk.ops > 0 && len(users) > 1 {
		s.pending = &bulkQueue{c: c}
		defer func() { s.pending = nil }()
	}
	if err := s.deliverUsers(ctx, users, c); err != nil {
		return err
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	s.pending = nil
	queued := map[string]bool{}
	for _, id := range groups {
		queued[id] = true
	}
	for i := 0; i < len(groups); i++ {
		created, err := s.deliverGroup(ctx, groups[i], c)
		if err != nil {
			if err := s.failed(err, c, store.KindGroup, groups[i]); err != nil {
				return err
			}
			continue
		}
		if !created {
			continue
		}
		// A group new on the service may bring its parents into scope,
		// or complete their members.
		parents, err := s.store.GroupParents(ctx, groups[i])
		if err != nil {
			return err
		}
		for _, p := range parents {
			if !queued[p] || slices.Index(groups, p) < i {
				queued[p] = true
				groups = append(groups, p)
			}
		}
	}
	return nil
}

// deliverUsers delivers users, up to limits.concurrency at a time, so
// that a first delivery is bound by the service rather than by one round
// trip after another. Each user is in the list once, so no two requests
// for one resource overlap. With /Bulk (whose queue is one) and in a dry
// run (which lists its writes in order) they go one after another. The
// first error that stops the step stops the other workers too.
func (s *Sink) deliverUsers(ctx context.Context, users []string, c *Counts) error {
	workers := min(s.cfg.Limits.Concurrency, len(users))
	if workers <= 1 || s.pending != nil || s.dry != nil {
		for _, id := range users {
			if err := s.deliverUser(ctx, id, c); err != nil {
				if err := s.failed(err, c, store.KindUser, id); err != nil {
					return err
				}
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ids := make(chan string)
	counts := make([]Counts, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for id := range ids {
				if err := s.deliverUser(ctx, id, &counts[w]); err != nil {
					if err := s.failed(err, &counts[w], store.KindUser, id); err != nil {
						cancel(err)
					}
				}
			}
		})
	}
feed:
	for _, id := range users {
		select {
		case ids <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(ids)
	wg.Wait()
	for _, n := range counts {
		c.add(n)
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// add adds the counts of n to c.
func (c *Counts) add(n Counts) {
	c.Created += n.Created
	c.Adopted += n.Adopted
	c.Updated += n.Updated
	c.Deactivated += n.Deactivated
	c.Deleted += n.Deleted
	c.Failed += n.Failed
}

func (s *Sink) failed(err error, c *Counts, kind, id string) error {
	if transient(err) || errors.Is(err, context.Canceled) {
		return err
	}
	var se *ServiceError
	if !errors.As(err, &se) {
		return err // the store, not the service
	}
	c.Failed++
	s.mu.Lock()
	s.Errors = append(s.Errors, err.Error())
	s.refused(kind, id, se)
	s.mu.Unlock()
	s.log.Warn("the service refused a resource", "error", err)
	return nil
}

// readInScope reads the user as the sink sends it, when the sink's scope
// holds it (and it still exists).
func (s *Sink) readInScope(ctx context.Context, id string) (*scim.User, bool, error) {
	in, err := s.inScope(ctx, id)
	if err != nil || !in {
		return nil, false, err
	}
	u, err := s.dir.User(ctx, id, scim.Include{Emails: true, PhoneNumbers: true})
	if errors.Is(err, scim.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("sink %s: read user %s: %w", s.cfg.Name, id, err)
	}
	return u, true, nil
}

// inScope reports whether the sink's scope holds the user.
func (s *Sink) inScope(ctx context.Context, id string) (bool, error) {
	source, deleted, err := s.store.UserSource(ctx, id)
	if errors.Is(err, store.ErrNotFound) || deleted {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if len(s.cfg.Scope.Sources) > 0 && !slices.Contains(s.cfg.Scope.Sources, source) {
		return false, nil
	}
	if s.scope == nil {
		return true, nil
	}
	f, err := filter.Parse("id eq " + quote(id) + " and (" + s.cfg.Scope.Filter + ")")
	if err != nil {
		return false, fmt.Errorf("sink %s: scope.filter: %w", s.cfg.Name, err)
	}
	page, err := s.dir.Users(ctx, scim.Query{Filter: f})
	if err != nil {
		return false, fmt.Errorf("sink %s: scope.filter: %w", s.cfg.Name, err)
	}
	return page.Total > 0, nil
}

// deliverUser makes the service hold the user as the directory does, or
// not at all.
func (s *Sink) deliverUser(ctx context.Context, id string, c *Counts) error {
	sid, err := s.serviceID(ctx, s.cfg.Name, store.KindUser, id)
	if err != nil {
		return err
	}
	u, in := s.prepared[id]
	if !in {
		if u, in, err = s.readInScope(ctx, id); err != nil {
			return err
		}
	}
	if !in {
		return s.removeUser(ctx, id, sid, c)
	}
	body, err := s.userBody(ctx, u)
	if err != nil {
		return err
	}
	if sid == "" && s.listed {
		return s.createUser(ctx, id, body, c)
	}
	if sid == "" {
		if sid, err = s.match(ctx, "/Users", "userName", u.UserName); err == nil && sid == "" && u.ExternalID != "" {
			sid, err = s.match(ctx, "/Users", "externalId", u.ExternalID)
		}
		if err != nil {
			return err
		}
		if sid == "" {
			return s.createUser(ctx, id, body, c)
		}
		c.Adopted++
		if err := s.setServiceID(ctx, s.cfg.Name, store.KindUser, id, sid); err != nil {
			return err
		}
		if err := s.passwordDone(ctx, id); err != nil {
			return err
		}
	}
	return s.update(ctx, "/Users/", store.KindUser, id, sid, body, &c.Updated, &c.Created)
}

// removeUser applies on_remove to a user the service holds.
func (s *Sink) removeUser(ctx context.Context, id, sid string, c *Counts) error {
	if sid == "" {
		return s.passwordDone(ctx, id)
	}
	path := "/Users/" + url.PathEscape(sid)
	if s.cfg.OnRemove == config.OnRemoveDelete {
		err := s.client.do(ctx, http.MethodDelete, path, nil, nil)
		if err != nil && !isStatus(err, http.StatusNotFound) {
			return err
		}
		c.Deleted++
		return s.setServiceID(ctx, s.cfg.Name, store.KindUser, id, "")
	}
	var err error
	if s.patch {
		err = s.client.do(ctx, http.MethodPatch, path, patchReplace(map[string]any{"active": false}), nil)
	} else {
		var held map[string]any
		if err = s.client.do(ctx, http.MethodGet, path, nil, &held); err == nil {
			delete(held, "meta")
			held["active"] = false
			err = s.client.do(ctx, http.MethodPut, path, held, nil)
		}
	}
	if isStatus(err, http.StatusNotFound) {
		// Gone from the service already: nothing left to deactivate.
		return s.setServiceID(ctx, s.cfg.Name, store.KindUser, id, "")
	}
	if err == nil {
		c.Deactivated++
	}
	return err
}

// deliverGroup makes the service hold the group with its members that
// the service holds, or not at all. It reports whether the group was
// created on the service.
func (s *Sink) deliverGroup(ctx context.Context, id string, c *Counts) (bool, error) {
	sid, err := s.serviceID(ctx, s.cfg.Name, store.KindGroup, id)
	if err != nil {
		return false, err
	}
	body, err := s.groupBody(ctx, id)
	if err != nil {
		return false, err
	}
	if body == nil {
		if sid == "" {
			return false, nil
		}
		err := s.client.do(ctx, http.MethodDelete, "/Groups/"+url.PathEscape(sid), nil, nil)
		if err != nil && !isStatus(err, http.StatusNotFound) {
			return false, err
		}
		c.Deleted++
		return false, s.setServiceID(ctx, s.cfg.Name, store.KindGroup, id, "")
	}
	if sid == "" {
		if sid, err = s.match(ctx, "/Groups", "displayName", body["displayName"].(string)); err != nil {
			return false, err
		}
		if sid == "" {
			err := s.create(ctx, "/Groups", store.KindGroup, id, body, &c.Created)
			return err == nil, err
		}
		c.Adopted++
		if err := s.setServiceID(ctx, s.cfg.Name, store.KindGroup, id, sid); err != nil {
			return false, err
		}
	}
	return false, s.update(ctx, "/Groups/", store.KindGroup, id, sid, body, &c.Updated, &c.Created)
}

// groupBody is the group as the service receives it, with the members
// the service holds; nil when the service is not to hold it.
func (s *Sink) groupBody(ctx context.Context, id string) (map[string]any, error) {
	if s.cfg.Scope.Groups == config.SinkGroupsNone {
		return nil, nil
	}
	g, err := s.dir.Group(ctx, id, scim.Include{Members: true})
	if errors.Is(err, scim.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sink %s: read group %s: %w", s.cfg.Name, id, err)
	}
	members := []any{}
	for _, m := range g.Members {
		kind := store.KindUser
		if m.Type == "Group" {
			kind = store.KindGroup
		}
		msid, err := s.serviceID(ctx, s.cfg.Name, kind, m.Value)
		if err != nil {
			return nil, err
		}
		if msid != "" {
			members = append(members, map[string]any{"value": msid, "type": m.Type})
		}
	}
	if s.cfg.Scope.Groups == config.SinkGroupsMembers && len(members) == 0 {
		return nil, nil
	}
	body := map[string]any{"schemas": []any{groupURN}, "displayName": g.DisplayName, "members": members}
	if g.ExternalID != "" {
		body["externalId"] = g.ExternalID
	}
	return body, nil
}

// match looks the service up for a resource whose attr equals value and
// returns its id, "" when it holds none.
func (s *Sink) match(ctx context.Context, path, attr, value string) (string, error) {
	q := url.Values{"filter": {fmt.Sprintf("%s eq %s", attr, quote(value))}, "count": {"2"}}
	var list struct {
		Resources []struct {
			ID string `json:"id"`
		} `json:"Resources"`
	}
	if err := s.client.do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &list); err != nil {
		return "", err
	}
	if len(list.Resources) == 0 {
		return "", nil
	}
	return list.Resources[0].ID, nil
}

// create posts the resource and records the id the service gave it.
func (s *Sink) create(ctx context.Context, path, kind, id string, body map[string]any, n *int) error {
	if s.pending != nil && kind == store.KindUser {
		return s.queue(ctx, bulkOp{method: http.MethodPost, path: path, data: body, kind: kind, id: id, counter: n})
	}
	var made struct {
		ID string `json:"id"`
	}
	if err := s.client.do(ctx, http.MethodPost, path, body, &made); err != nil {
		if isStatus(err, http.StatusConflict) && kind == store.KindUser {
			var se *ServiceError
			errors.As(err, &se)
			return s.conflict(ctx, bulkOp{method: http.MethodPost, path: path, data: body, kind: kind, id: id, counter: n}, []byte(`{"detail":`+strconv.Quote(se.Detail)+`}`))
		}
		return err
	}
	if made.ID == "" {
		return &ServiceError{Method: http.MethodPost, Path: path, Status: http.StatusCreated, Detail: "the answer has no id"}
	}
	*n++
	return s.setServiceID(ctx, s.cfg.Name, kind, id, made.ID)
}

// update replaces the resource's attributes on the service, with PATCH
// when the service takes it; a resource the service lost is created
// again.
func (s *Sink) update(ctx context.Context, prefix, kind, id, sid string, body map[string]any, updated, created *int) error {
	path := prefix + url.PathEscape(sid)
	method, data := http.MethodPut, any(body)
	if s.patch {
		value := make(map[string]any, len(body))
		for k, v := range body {
			if k != "schemas" {
				value[k] = v
			}
		}
		method, data = http.MethodPatch, patchReplace(value)
	}
	if s.pending != nil && kind == store.KindUser {
		return s.queue(ctx, bulkOp{method: method, path: path, data: data, kind: kind, id: id, counter: updated,
			recreate: func() error { return s.create(ctx, strings.TrimSuffix(prefix, "/"), kind, id, body, created) }})
	}
	err := s.client.do(ctx, method, path, data, nil)
	if isStatus(err, http.StatusNotFound) {
		return s.create(ctx, strings.TrimSuffix(prefix, "/"), kind, id, body, created)
	}
	if err == nil {
		*updated++
	}
	return err
}

// patchReplace replaces each attribute of value, one operation with a
// path per attribute: a "replace" without a path leaves some services
// (scimmy) merging multi-valued attributes such as emails and members
// instead of replacing them (RFC 7644 §3.5.2.3 says replace).
func patchReplace(value map[string]any) map[string]any {
	ops := make([]any, 0, len(value))
	for _, k := range slices.Sorted(maps.Keys(value)) {
		ops = append(ops, map[string]any{"op": "replace", "path": k, "value": value[k]})
	}
	return map[string]any{"schemas": []string{patchURN}, "Operations": ops}
}

func isStatus(err error, status int) bool {
	var se *ServiceError
	return errors.As(err, &se) && se.Status == status
}

// quote writes a SCIM filter string (RFC 7644 §3.4.2.2: JSON strings).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
