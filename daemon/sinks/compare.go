package sinks

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/scim"
)

// comparePage is how many resources one listing request of the service
// asks for; the service may answer fewer (its maxResults).
const comparePage = 200

// compare compares everything the service holds with the directory and
// delivers only the difference (first contact, then every
// compare_every): what the service lacks is created, or adopted when it
// holds a user of the same userName or externalId (a group of the same
// displayName); what changed or was removed there is put back; what it
// holds for roster that left the directory or the scope is deactivated
// or deleted (on_remove), within max_removals like any delivery.
func (s *Sink) compare(ctx context.Context, c *Counts) error {
	heldUsers, err := s.list(ctx, "/Users")
	if err != nil {
		return err
	}
	mapped, err := s.store.SinkServiceIDs(ctx, s.cfg.Name, store.KindUser)
	if err != nil {
		return err
	}
	taken := make(map[string]bool, len(mapped))
	for _, sid := range mapped {
		taken[sid] = true
	}
	byName, byExternal := map[string]string{}, map[string]string{}
	for sid, u := range heldUsers {
		if taken[sid] {
			continue
		}
		if v, ok := lookup(u, "userName"); ok {
			byName[strings.ToLower(fmt.Sprint(v))] = sid
		}
		if v, ok := lookup(u, "externalId"); ok {
			byExternal[fmt.Sprint(v)] = sid
		}
	}

	var todo []string
	removals := 0
	s.prepared = map[string]*scim.User{}
	defer func() { s.prepared = nil }()
	seen := map[string]bool{}
	// Without a scope every user the directory lists is in it, as the
	// listing read it: no need to read each again.
	everyone := len(s.cfg.Scope.Sources) == 0 && s.scope == nil
	check := func(id string, listed *scim.User) error {
		if seen[id] {
			return nil
		}
		seen[id] = true
		sid := mapped[id]
		u, in := listed, listed != nil && everyone
		if !in {
			var err error
			if u, in, err = s.readInScope(ctx, id); err != nil {
				return err
			}
		}
		held, holds := heldUsers[sid]
		if !in {
			switch {
			case sid == "":
			case !holds:
				// Gone from the service already: nothing to remove.
				return s.setServiceID(ctx, s.cfg.Name, store.KindUser, id, "")
			case s.cfg.OnRemove == config.OnRemoveDelete || active(held):
				removals++
				todo = append(todo, id)
			}
			return nil
		}
		if sid == "" {
			// Adopted by userName, then externalId, as on first contact.
			found := byName[strings.ToLower(u.UserName)]
			if found == "" && u.ExternalID != "" {
				found = byExternal[u.ExternalID]
			}
			if found != "" && !taken[found] {
				taken[found] = true
				c.Adopted++
				if err := s.setServiceID(ctx, s.cfg.Name, store.KindUser, id, found); err != nil {
					return err
				}
				sid, held, holds = found, heldUsers[found], true
			}
		}
		s.prepared[id] = u
		if holds {
			body, err := s.userBody(ctx, u)
			if err != nil {
				return err
			}
			if covers(body, held) {
				return nil
			}
		} else if sid != "" {
			// Removed on the service: created again.
			if err := s.setServiceID(ctx, s.cfg.Name, store.KindUser, id, ""); err != nil {
				return err
			}
		}
		todo = append(todo, id)
		return nil
	}
	var after *scim.Position
	for {
		page, err := s.dir.Users(ctx, scim.Query{Count: batch, Cursor: true, After: after, Include: scim.Include{Emails: true, PhoneNumbers: true}})
		if err != nil {
			return fmt.Errorf("sink %s: list the users: %w", s.cfg.Name, err)
		}
		for i := range page.Resources {
			if err := check(page.Resources[i].ID, page.Resources[i]); err != nil {
				return err
			}
		}
		if after = page.Next; after == nil {
			break
		}
	}
	for id := range mapped {
		if err := check(id, nil); err != nil {
			return err
		}
	}
	release, err := s.holdFor(ctx, removals)
	if err != nil {
		return err
	}
	// A hold of the outbox's removals is not this comparison's to lift.
	release = release && removals > 0
	s.listed = true
	err = s.deliverAll(ctx, todo, nil, c)
	s.listed = false
	if err != nil {
		return err
	}

	groups, err := s.groupDrift(ctx, c)
	if err != nil {
		return err
	}
	if err := s.deliverAll(ctx, nil, groups, c); err != nil {
		return err
	}
	if release && s.dry == nil {
		return s.store.HoldSink(ctx, s.cfg.Name, "")
	}
	return nil
}

// groupDrift lists the groups whose state on the service differs from
// the directory's, adopting those the service holds by displayName.
func (s *Sink) groupDrift(ctx context.Context, c *Counts) ([]string, error) {
	held, err := s.list(ctx, "/Groups")
	if err != nil {
		return nil, err
	}
	mapped, err := s.store.SinkServiceIDs(ctx, s.cfg.Name, store.KindGroup)
	if err != nil {
		return nil, err
	}
	taken := make(map[string]bool, len(mapped))
	for _, sid := range mapped {
		taken[sid] = true
	}
	byName := map[string]string{}
	for sid, g := range held {
		if v, ok := lookup(g, "displayName"); ok && !taken[sid] {
			byName[fmt.Sprint(v)] = sid
		}
	}
	var todo []string
	seen := map[string]bool{}
	check := func(id string) error {
		if seen[id] {
			return nil
		}
		seen[id] = true
		body, err := s.groupBody(ctx, id)
		if err != nil {
			return err
		}
		sid := mapped[id]
		g, holds := held[sid]
		switch {
		case body == nil:
			if holds {
				todo = append(todo, id)
			} else if sid != "" {
				return s.setServiceID(ctx, s.cfg.Name, store.KindGroup, id, "")
			}
			return nil
		case sid == "":
			if found := byName[body["displayName"].(string)]; found != "" {
				taken[found], byName[body["displayName"].(string)] = true, ""
				c.Adopted++
				if err := s.setServiceID(ctx, s.cfg.Name, store.KindGroup, id, found); err != nil {
					return err
				}
				if covers(body, held[found]) {
					return nil
				}
			}
		case !holds:
			if err := s.setServiceID(ctx, s.cfg.Name, store.KindGroup, id, ""); err != nil {
				return err
			}
		case covers(body, g):
			return nil
		}
		todo = append(todo, id)
		return nil
	}
	var after *scim.Position
	for {
		page, err := s.dir.Groups(ctx, scim.Query{Count: batch, Cursor: true, After: after})
		if err != nil {
			return nil, fmt.Errorf("sink %s: list the groups: %w", s.cfg.Name, err)
		}
		for _, g := range page.Resources {
			if err := check(g.ID); err != nil {
				return nil, err
			}
		}
		if after = page.Next; after == nil {
			break
		}
	}
	for id := range mapped {
		if err := check(id); err != nil {
			return nil, err
		}
	}
	return todo, nil
}

// outboxEnd is the position of the last outbox entry the sink can read
// now (on PostgreSQL, of transactions that ended): a comparison that
// begins after reading it covers every entry up to it.
func (s *Sink) outboxEnd(ctx context.Context) (store.Position, error) {
	st, err := s.store.Sink(ctx, s.cfg.Name)
	if err != nil {
		return store.Position{}, err
	}
	end := st.Position
	for {
		changes, err := s.store.Changes(ctx, end, 10*batch)
		if err != nil {
			return end, err
		}
		if len(changes) == 0 {
			return end, nil
		}
		end = changes[len(changes)-1].Position
	}
}

// list reads every resource the service holds at path, by id, page by
// page (RFC 7644 §3.4.2.4).
func (s *Sink) list(ctx context.Context, path string) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	for start := 1; ; {
		q := url.Values{"startIndex": {strconv.Itoa(start)}, "count": {strconv.Itoa(comparePage)}}
		var page struct {
			TotalResults int              `json:"totalResults"`
			StartIndex   int              `json:"startIndex"`
			Resources    []map[string]any `json:"Resources"`
		}
		if err := s.client.do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &page); err != nil {
			return nil, fmt.Errorf("sink %s: list what the service holds: %w", s.cfg.Name, err)
		}
		if page.StartIndex != 0 && page.StartIndex != start {
			// Reading on would see the first page again and again.
			return nil, fmt.Errorf("sink %s: GET %s: the service answered startIndex %d when asked for %d: it does not page as RFC 7644 §3.4.2.4 says, so it cannot be compared",
				s.cfg.Name, path, page.StartIndex, start)
		}
		for _, r := range page.Resources {
			if id, ok := r["id"].(string); ok && id != "" {
				out[id] = r
			}
		}
		start += len(page.Resources)
		if len(page.Resources) == 0 || start > page.TotalResults {
			return out, nil
		}
	}
}

// active reports whether the service holds the user active; a service
// that does not say holds it active (RFC 7643 leaves its meaning to the
// service).
func active(u map[string]any) bool {
	v, ok := lookup(u, "active")
	return !ok || v != false
}

// covers reports whether the service's resource holds every value that
// roster sends as roster sends it. Attributes the service adds (meta,
// groups, display of members, primary) are not differences; a
// multi-valued attribute is compared as a set of its values.
func covers(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return len(w) == 0 && got == nil
		}
		for k, wv := range w {
			if k == "schemas" {
				continue
			}
			gv, _ := lookup(g, k)
			if !covers(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, _ := got.([]any)
		if len(g) != len(w) {
			return false
		}
		used := make([]bool, len(g))
	outer:
		for _, wv := range w {
			for i, gv := range g {
				if !used[i] && covers(wv, gv) {
					used[i] = true
					continue outer
				}
			}
			return false
		}
		return true
	case nil:
		return got == nil || got == ""
	case string:
		return got == w
	case bool:
		// A service may leave out a false flag (primary).
		return got == w || !w && got == nil
	default:
		// Numbers and booleans, as JSON decodes them on both sides.
		return fmt.Sprint(w) == fmt.Sprint(got)
	}
}
