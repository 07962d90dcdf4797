package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/scim"
)

// sinkDryRun prints what the sink would send now (SPEC §12): its writes
// with their bodies, never a password, sending none and moving nothing.
// It exits like `roster sync --dry-run`: 0, 3 when the real run would be
// held by max_removals, 1 when the service cannot be read or refuses a
// read.
func sinkDryRun(ctx context.Context, e *env, st *store.Store, cfg *config.Config, sc *config.Sink, asJSON bool) error {
	s, err := newSink(e, st, cfg, sc)
	if err != nil {
		return err
	}
	res, err := s.DryRun(ctx)
	if err != nil {
		return fmt.Errorf("sink %s: dry run: %w", sc.Name, err)
	}
	code := 0
	switch {
	case len(res.Errors) > 0:
		code = exitFailed
	case res.Held != "":
		code = exitHeld
	}
	if asJSON {
		if err := writeJSON(e.stdout, res); err != nil {
			return err
		}
	} else {
		w := e.stdout
		fmt.Fprintf(w, "sink %s: dry run, nothing is sent\n", res.Sink)
		if res.Compare {
			fmt.Fprintln(w, "first contact: the whole directory is compared with the service")
		}
		for _, p := range res.Planned {
			body := ""
			if p.Body != nil {
				b, err := json.Marshal(p.Body)
				if err != nil {
					return err
				}
				body = " " + string(b)
			}
			fmt.Fprintf(w, "%-10s %s %s%s\n", p.Action, p.Method, p.Path, body)
		}
		c := res.Counts
		fmt.Fprintf(w, "would create %d, adopt %d, update %d, deactivate %d, delete %d\n",
			c.Created, c.Adopted, c.Updated, c.Deactivated, c.Deleted)
		for _, msg := range res.Errors {
			fmt.Fprintf(w, "error: %s\n", msg)
		}
		if res.Held != "" {
			fmt.Fprintf(w, "held: %s\n", res.Held)
		}
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

// newSink is the sink sc as roster serve runs it, with the configured
// custom attributes, for the commands that step it or dry-run it.
func newSink(e *env, st *store.Store, cfg *config.Config, sc *config.Sink) (*sinks.Sink, error) {
	users := scim.UserType(&cfg.Attributes)
	s, err := sinks.New(*sc, st, st.SCIMFor(users), nil, e.logger(cfg).With("component", "sink"))
	if err != nil {
		return nil, err
	}
	s.Users = &users
	return s, nil
}
