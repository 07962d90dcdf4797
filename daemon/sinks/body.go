package sinks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/scim"
)

// userBody is the user as the service receives it: without roster's id,
// meta and groups (read-only on the service, RFC 7643 §4.1.2), with its
// manager's id on the service, its custom attributes (SPEC §2.1) under
// their schema's URN, listed in schemas, and renamed by the sink's map.
func (s *Sink) userBody(ctx context.Context, u *scim.User) (map[string]any, error) {
	c := *u
	if s.Users != nil {
		// As the SCIM API serves it: custom attributes spelled as
		// declared, under their URN, and schemas filled in.
		scim.ProjectUser(*s.Users, &c)
	} else {
		c.Custom = nil
	}
	c.ID, c.Meta, c.Groups = "", nil, nil
	if c.Enterprise != nil {
		e := *c.Enterprise
		if e.Manager != nil {
			sid, err := s.serviceID(ctx, s.cfg.Name, store.KindUser, e.Manager.Value)
			if err != nil {
				return nil, err
			}
			e.Manager = nil
			if sid != "" {
				e.Manager = &scim.Manager{Value: sid}
			}
		}
		c.Enterprise = &e
	}
	data, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("sink %s: encode user %s: %w", s.cfg.Name, u.ID, err)
	}
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, fmt.Errorf("sink %s: encode user %s: %w", s.cfg.Name, u.ID, err)
	}
	delete(body, "id")
	if body["active"] == nil {
		body["active"] = true
	}
	if len(s.cfg.Map) == 0 {
		return body, nil
	}
	out := map[string]any{"schemas": []any{userURN}, "userName": body["userName"], "active": body["active"]}
	for from, to := range s.cfg.Map {
		v, ok := get(body, from)
		if !ok && c.Custom != nil && !strings.Contains(from, ":") {
			// A custom attribute named without its URN.
			v, ok = get(body, c.Custom.URN+":"+from)
		}
		if ok {
			set(out, to, v)
		}
	}
	if ext := urnsOf(out); len(ext) > 0 {
		out["schemas"] = append([]any{userURN}, ext...)
	}
	return out, nil
}

// split divides an attribute path into the object key it lives under (a
// schema URN for extension attributes, "" for the core schema) and its
// dotted name.
func split(path string) (urn string, names []string) {
	if i := strings.LastIndexByte(path, ':'); i >= 0 {
		return path[:i], strings.Split(path[i+1:], ".")
	}
	return "", strings.Split(path, ".")
}

func get(body map[string]any, path string) (any, bool) {
	urn, names := split(path)
	cur := body
	if urn != "" {
		m, ok := body[urn].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = m
	}
	for i, n := range names {
		v, ok := lookup(cur, n)
		if !ok {
			return nil, false
		}
		if i == len(names)-1 {
			return v, true
		}
		if cur, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}

// lookup finds a key regardless of case, as SCIM names are.
func lookup(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func set(body map[string]any, path string, v any) {
	urn, names := split(path)
	cur := body
	if urn != "" {
		m, ok := cur[urn].(map[string]any)
		if !ok {
			m = map[string]any{}
			cur[urn] = m
		}
		cur = m
	}
	for _, n := range names[:len(names)-1] {
		m, ok := cur[n].(map[string]any)
		if !ok {
			m = map[string]any{}
			cur[n] = m
		}
		cur = m
	}
	cur[names[len(names)-1]] = v
}

// urnsOf lists the extension schemas a body holds values of.
func urnsOf(body map[string]any) []any {
	var out []any
	for k := range body {
		if strings.HasPrefix(k, "urn:") {
			out = append(out, k)
		}
	}
	return out
}
