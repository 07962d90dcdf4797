package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/scim/filter"
)

// Values of a sink's enumerated settings (SPEC §12).
const (
	OnRemoveDeactivate = "deactivate"
	OnRemoveDelete     = "delete"

	// SinkGroupsMembers sends the groups that have an in-scope member
	// (directly or through a nested group); SinkGroupsAll sends every
	// group and SinkGroupsNone none.
	SinkGroupsMembers = "members"
	SinkGroupsAll     = "all"
	SinkGroupsNone    = "none"
)

// Sink is one downstream SCIM 2.0 service that roster provisions
// (SPEC §12, docs/sinks.md).
type Sink struct {
	Name    string `yaml:"name"`
	Enabled bool   `yaml:"enabled"`
	// URL is the service's SCIM base, the folder of /Users and /Groups.
	URL  string   `yaml:"url"`
	Auth HTTPAuth `yaml:"auth"`
	// Scope says which users and groups the service receives.
	Scope SinkScope `yaml:"scope"`
	// Map names the attributes that go, by their path in roster (SPEC
	// §2.1), each to the path the service gives it; empty sends every
	// attribute under its own name.
	Map map[string]string `yaml:"map"`
	// OnRemove is what a user leaving the scope becomes on the service.
	OnRemove string `yaml:"on_remove"`
	// Interval is how often the sink looks for changes to deliver when
	// nothing wakes it sooner.
	Interval Duration `yaml:"interval"`
	// CompareEvery is how often the sink compares everything the service
	// holds with the directory and corrects what drifted there.
	CompareEvery Duration `yaml:"compare_every"`
	// MaxRemovals holds a delivery run that would deactivate or delete
	// more users for an operator, as a source's does.
	MaxRemovals Removals   `yaml:"max_removals"`
	Limits      SinkLimits `yaml:"limits"`
	// Passwords asks for the initial passwords of the users the sink
	// creates; they are kept (encrypted with secrets.key) only until
	// every sink that asks has sent them.
	Passwords bool `yaml:"passwords"`
}

// SinkScope selects the directory's part a sink receives. Users are in
// scope when they come from one of Sources (all sources when empty) and
// match Filter (all users when empty).
type SinkScope struct {
	Sources []string `yaml:"sources"`
	// Filter is a SCIM filter (RFC 7644 §3.4.2.2) over users.
	Filter string `yaml:"filter"`
	// Groups is SinkGroupsMembers, SinkGroupsAll or SinkGroupsNone.
	Groups string `yaml:"groups"`
}

// SinkLimits bound the load a sink puts on its service.
type SinkLimits struct {
	// Rate bounds the requests per second; zero is unbounded. A 429 with
	// Retry-After slows the sink further.
	Rate Rate `yaml:"rate"`
	// Concurrency is how many requests may be in flight at once.
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds one request, its answer included.
	Timeout Duration `yaml:"timeout"`
}

// setDefaults is called on every item of sinks before it is decoded.
func (s *Sink) setDefaults() {
	*s = Sink{
		Enabled:      true,
		Scope:        SinkScope{Groups: SinkGroupsMembers},
		OnRemove:     OnRemoveDeactivate,
		Interval:     Duration(time.Minute),
		CompareEvery: Duration(24 * time.Hour),
		MaxRemovals:  Removals{Percent: 10, IsPercent: true},
		Limits:       SinkLimits{Rate: Rate(10), Concurrency: 4, Timeout: Duration(30 * time.Second)},
	}
}

// Sink returns the sink called name.
func (c *Config) Sink(name string) (*Sink, bool) {
	for i := range c.Sinks {
		if c.Sinks[i].Name == name {
			return &c.Sinks[i], true
		}
	}
	return nil, false
}

// Rate is a number of requests per second, written as "10/s", "600/m",
// "36000/h" or a bare number (per second); 0 is unbounded.
type Rate float64

// ParseRate parses a Rate.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	num, unit, found := strings.Cut(s, "/")
	per := 1.0
	if found {
		switch strings.TrimSpace(unit) {
		case "s":
		case "m":
			per = 60
		case "h":
			per = 3600
		default:
			return 0, fmt.Errorf("%q is not a rate: the unit after \"/\" is s, m or h, as in 10/s", s)
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e9 {
		return 0, fmt.Errorf("%q is not a rate such as 10/s, 600/m or 0 (unbounded)", s)
	}
	return Rate(f / per), nil
}

func (r Rate) String() string {
	return strconv.FormatFloat(float64(r), 'f', -1, 64) + "/s"
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("must be a rate such as 10/s")
	}
	v, err := ParseRate(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

// validateSinks checks the sinks (SPEC §12). It never quotes a URL or an
// auth value: they may carry keys.
func (c *collector) validateSinks(cfg *Config) {
	names := map[string]string{}
	for i := range cfg.Sinks {
		s := &cfg.Sinks[i]
		k := indexKey("sinks", i)
		nk := k + ".name"
		switch first, dup := names[strings.ToLower(s.Name)]; {
		case s.Name == "":
			c.check(nk, "is required")
		case !sourceName.MatchString(s.Name):
			c.check(nk, "%q is not a valid sink name: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", s.Name)
		case dup:
			c.check(nk, "sink name %q is already used by %s at line %d (names are compared regardless of case)", s.Name, first, c.line(first+".name"))
		default:
			names[strings.ToLower(s.Name)] = k
		}
		if s.URL == "" {
			c.check(k+".url", "is required: the service's SCIM base URL, such as https://app.example.com/scim/v2")
		} else {
			c.httpURL(k+".url", s.URL)
		}
		c.auth(k+".auth", s.Auth)

		sk := k + ".scope"
		for j, src := range s.Scope.Sources {
			if _, ok := cfg.Source(src); !ok {
				c.check(indexKey(sk+".sources", j), "%q names no configured source", src)
			}
		}
		if s.Scope.Filter != "" {
			if _, err := filter.Parse(s.Scope.Filter); err != nil {
				c.check(sk+".filter", "%v", err)
			}
		}
		c.oneOf(sk+".groups", s.Scope.Groups, SinkGroupsMembers, SinkGroupsAll, SinkGroupsNone)

		for _, from := range slices.Sorted(maps.Keys(s.Map)) {
			mk := k + ".map." + from
			if _, err := attrs.ParsePath(from, cfg.Attributes.Model()); err != nil && !slices.Contains(sinkOwnFields, from) {
				c.check(mk, "%v", err)
				continue
			}
			if to := s.Map[from]; to == "" {
				c.check(mk, "must name the attribute the service gives it, such as title")
			} else if _, err := filter.ParsePath(to); err != nil {
				c.check(mk, "%q is not an attribute path: %v", to, err)
			}
		}
		c.oneOf(k+".on_remove", s.OnRemove, OnRemoveDeactivate, OnRemoveDelete)
		c.positive(k+".interval", s.Interval)
		if c.positive(k+".compare_every", s.CompareEvery); s.CompareEvery > 0 && s.CompareEvery < s.Interval {
			c.check(k+".compare_every", "%s is shorter than interval %s: a comparison cannot come more often than the sink runs", s.CompareEvery, s.Interval)
		}
		if s.Limits.Concurrency < 1 {
			c.check(k+".limits.concurrency", "must be at least 1")
		}
		c.positive(k+".limits.timeout", s.Limits.Timeout)
		if s.Passwords && cfg.Secrets.Key == "" {
			c.check(k+".passwords", "needs secrets.key: initial passwords are kept for a sink only encrypted with that key")
		}
	}
}

// sinkOwnFields are the User attributes every source fills, which a sink's
// map may rename although no source's extra columns may name them.
var sinkOwnFields = []string{"userName", "externalId", "name.givenName", "name.familyName", "emails", "phoneNumbers", "active", "displayName"}

// auth checks an auth setting shared by http sources and sinks.
func (c *collector) auth(ak string, a HTTPAuth) {
	methods := 0
	if a.Bearer != "" {
		methods++
	}
	if a.Basic != nil {
		methods++
		if a.Basic.Username == "" {
			c.check(ak+".basic.username", "is required for basic auth")
		}
	}
	if a.OAuth2 != nil {
		methods++
		o := ak + ".oauth2"
		if a.OAuth2.TokenURL == "" {
			c.check(o+".token_url", "is required for oauth2")
		} else {
			c.httpURL(o+".token_url", a.OAuth2.TokenURL)
		}
		if a.OAuth2.ClientID == "" {
			c.check(o+".client_id", "is required for oauth2")
		}
		if a.OAuth2.ClientSecret == "" {
			c.check(o+".client_secret", "is required for oauth2")
		}
	}
	if methods > 1 {
		c.check(ak, "set only one of bearer, basic and oauth2")
	}
}
