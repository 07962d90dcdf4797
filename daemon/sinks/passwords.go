package sinks

import (
	"context"
	"errors"
	"maps"
	"strings"

	"github.com/rosterd/roster/daemon/store"
)

// createUser creates the user on the service, with its initial password
// when the sink asks for passwords and one is kept for it (SPEC §12): on
// create only, never on an adoption or an update. The kept password is
// wiped for this sink once the service has the user.
func (s *Sink) createUser(ctx context.Context, id string, body map[string]any, c *Counts) error {
	pw := ""
	if s.cfg.Passwords && s.dry == nil {
		var err error
		pw, err = s.store.InitialPassword(ctx, s.cfg.Name, id)
		switch {
		case errors.Is(err, store.ErrPasswordUnreadable):
			s.mu.Lock()
			warn := !s.warnedKey
			s.warnedKey = true
			s.mu.Unlock()
			if warn {
				s.log.Warn("a kept initial password cannot be decrypted (secrets.key changed since it was kept): such users are created without a password")
			}
		case err != nil:
			return err
		case pw != "":
			with := maps.Clone(body)
			with["password"] = pw
			body = with
		}
	}
	if pw != "" && s.pending != nil {
		// A password goes in a request of its own, not in /Bulk: it is
		// wiped only once that request succeeded, and its answer is
		// stripped of it below. (With /Bulk, users go one at a time.)
		q := s.pending
		s.pending = nil
		defer func() { s.pending = q }()
	}
	if err := s.create(ctx, "/Users", store.KindUser, id, body, &c.Created); err != nil {
		// The service's answer is logged and kept: it must not carry
		// the password back, should the service repeat what it got.
		var se *ServiceError
		if pw != "" && errors.As(err, &se) {
			se.Detail = strings.ReplaceAll(se.Detail, pw, "[password]")
		}
		return err
	}
	return s.passwordDone(ctx, id)
}

// passwordDone tells the store that the sink needs the user's initial
// password no more.
func (s *Sink) passwordDone(ctx context.Context, id string) error {
	if !s.cfg.Passwords || s.dry != nil {
		return nil
	}
	return s.store.InitialPasswordDone(ctx, s.cfg.Name, id)
}
