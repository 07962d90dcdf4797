package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/rosterd/roster/daemon/store"
)

// Planned is one write a dry run found the sink would send.
type Planned struct {
	// Action is create, update, deactivate or delete.
	Action string `json:"action"`
	Method string `json:"method"`
	// Path is below the sink's URL; a resource the service does not hold
	// yet is named by its roster id in braces.
	Path string         `json:"path"`
	Body map[string]any `json:"body,omitempty"`
}

// DryRunResult is what the sink would send now.
type DryRunResult struct {
	Sink string `json:"sink"`
	// Compare is set when the sink has not compared the whole directory
	// with the service yet: the run would do that first.
	Compare bool      `json:"compare"`
	Planned []Planned `json:"planned"`
	Counts  Counts    `json:"counts"`
	// Held says why the real run would wait for an operator
	// (max_removals); "" when it would not.
	Held string `json:"held,omitempty"`
	// Errors are the answers of the service to what the dry run read.
	Errors []string `json:"errors,omitempty"`
}

// dryRun keeps what a dry run would have written to the store.
type dryRun struct {
	ids     map[string]string // kind/id → service id; "" forgotten
	planned []Planned
	held    string
	lastGet string
}

func (d *dryRun) hold(reason string) error {
	if d.held == "" {
		d.held = reason
	}
	return nil
}

// DryRun works out what the sink would send now — the first full
// comparison when it has not had one, then the changes after its
// position — without sending any write and without moving its
// position or writing anything else to the store. It reads the service
// (GET) to match users and groups as the real run would. No password is
// read or shown.
func (s *Sink) DryRun(ctx context.Context) (*DryRunResult, error) {
	s.dry = &dryRun{ids: map[string]string{}}
	s.client.intercept = s.dry.intercept
	s.Errors = nil
	defer func() { s.dry, s.client.intercept = nil, nil }()
	res := &DryRunResult{Sink: s.cfg.Name, Planned: []Planned{}}
	if err := s.readConfig(ctx); err != nil {
		return nil, err
	}
	// Each write is shown on its own, as it would go without /Bulk.
	bulk := s.bulk
	s.bulk = bulkLimits{}
	defer func() { s.bulk = bulk }()
	var position store.Position
	st, err := s.store.Sink(ctx, s.cfg.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Not registered by a roster serve yet: it would start with a
		// full comparison, at the outbox's end.
		res.Compare = true
	case err != nil:
		return nil, err
	default:
		position = st.Position
		compared, err := s.store.SinkCompared(ctx, s.cfg.Name)
		if err != nil {
			return nil, err
		}
		res.Compare = compared.IsZero()
	}
	if res.Compare {
		if err := s.compare(ctx, &res.Counts); err != nil {
			return nil, err
		}
	}
	if st.Name != "" {
		for {
			changes, err := s.store.Changes(ctx, position, batch)
			if err != nil {
				return nil, err
			}
			if len(changes) == 0 {
				break
			}
			users, groups := resources(changes)
			if _, err := s.checkRemovals(ctx, users); err != nil {
				return nil, err
			}
			if err := s.deliverAll(ctx, users, groups, &res.Counts); err != nil {
				return nil, err
			}
			position = changes[len(changes)-1].Position
		}
	}
	res.Planned = append(res.Planned, s.dry.planned...)
	res.Held, res.Errors = s.dry.held, s.Errors
	return res, nil
}

// intercept answers the writes of a dry run in the service's stead, as a
// service that takes them would, and records them; reads go through.
func (d *dryRun) intercept(_ context.Context, method, path string, body, out any) (bool, error) {
	if method == http.MethodGet {
		d.lastGet = path
		return false, nil
	}
	p := Planned{Method: method, Path: path}
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return true, fmt.Errorf("%s %s: %w", method, path, err)
		}
		if err := json.Unmarshal(data, &p.Body); err != nil {
			return true, fmt.Errorf("%s %s: %w", method, path, err)
		}
		delete(p.Body, "password")
	}
	switch {
	case method == http.MethodPost:
		p.Action = "create"
	case method == http.MethodDelete:
		p.Action = "delete"
	case deactivation(method, p.Body, path == d.lastGet):
		p.Action = "deactivate"
	default:
		p.Action = "update"
	}
	d.lastGet = ""
	d.planned = append(d.planned, p)
	if method == http.MethodPost && out != nil {
		// The service's id, which the dry run cannot know.
		return true, json.Unmarshal([]byte(`{"id":"(new)"}`), out)
	}
	return true, nil
}

// deactivation recognises removeUser's requests: a PATCH that only sets
// active to false, or a PUT of what was just read, with active false.
func deactivation(method string, body map[string]any, afterGet bool) bool {
	if method == http.MethodPut {
		return afterGet && body["active"] == false
	}
	ops, _ := body["Operations"].([]any)
	if len(ops) != 1 {
		return false
	}
	op, _ := ops[0].(map[string]any)
	if op["path"] == "active" {
		return op["value"] == false
	}
	v, _ := op["value"].(map[string]any)
	return len(v) == 1 && v["active"] == false
}

// serviceID is the store's ServiceID, seen through a dry run's writes.
// It takes the store's arguments, sink included.
func (s *Sink) serviceID(ctx context.Context, sink, kind, id string) (string, error) {
	if s.dry != nil {
		if sid, ok := s.dry.ids[kind+"/"+id]; ok {
			return sid, nil
		}
	}
	return s.store.ServiceID(ctx, sink, kind, id)
}

// setServiceID records the service's id of a resource, or only notes it
// during a dry run.
func (s *Sink) setServiceID(ctx context.Context, sink, kind, id, sid string) error {
	if s.dry != nil {
		s.dry.ids[kind+"/"+id] = sid
		return nil
	}
	return s.store.SetServiceID(ctx, sink, kind, id, sid)
}
