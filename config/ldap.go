package config

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/sources/ldap"
)

// validateLDAP checks an ldap source (SPEC §3.5). The bind password is a
// secret: no message quotes it.
func (c *collector) validateLDAP(k string, s *Source, m *attrs.Model) {
	if s.URL == "" {
		c.check(k+".url", "is required for an ldap source (ldap://host or ldaps://host)")
	} else if !strings.HasPrefix(s.URL, "ldap://") && !strings.HasPrefix(s.URL, "ldaps://") {
		c.check(k+".url", "must begin with ldap:// or ldaps://")
	} else if s.StartTLS && strings.HasPrefix(s.URL, "ldaps://") {
		c.check(k+".start_tls", "is for ldap:// URLs; an ldaps:// URL is TLS already")
	}
	if s.BaseDN == "" {
		c.check(k+".base_dn", "is required for an ldap source")
	}
	if s.BindDN != "" && s.BindPassword == "" {
		c.check(k+".bind_password", "is required with bind_dn (write it as ${ENV_VAR} or ${file:/path})")
	}
	if _, ok := ldap.Flavors[s.Flavor]; !ok && s.Flavor != "" {
		c.oneOf(k+".flavor", s.Flavor, slices.Sorted(maps.Keys(ldap.Flavors))...)
		return
	}
	if s.PageSize < 0 || s.PageSize > 100000 {
		c.check(k+".page_size", "must be between 1 and 100000 (0 is 500)")
	}
	if s.SizeLimit < 0 {
		c.check(k+".size_limit", "must not be negative (0 is the server's limit)")
	}
	c.positive(k+".timeout", s.Timeout)
	if s.FullEvery < 0 {
		c.check(k+".full_every", "must not be negative (0 reads everything every time)")
	}
	if s.Retries < 0 {
		c.check(k+".retries", "must not be negative")
	}
	if s.URL == "" || s.BaseDN == "" || c.has(k+".start_tls") && s.StartTLS && strings.HasPrefix(s.URL, "ldaps://") {
		return
	}
	// The reader's own checks: DNs, filters, the map, the CA file.
	if err := ldap.Check(LDAPOptions(s, m)); err != nil {
		c.check(k, "%s", strings.TrimPrefix(err.Error(), "ldap source "+s.Name+": "))
	}
}

// LDAPOptions are the reader options of an ldap source, whose map may
// name the custom attributes of m.
func LDAPOptions(s *Source, m *attrs.Model) ldap.Options {
	return ldap.Options{Source: s.Name, URL: s.URL, StartTLS: s.StartTLS, CAFile: s.CAFile, ServerName: s.ServerName,
		BindDN: s.BindDN, BindPassword: s.BindPassword, BaseDN: s.BaseDN, UserFilter: s.UserFilter, GroupFilter: s.GroupFilter,
		Flavor: s.Flavor, Map: s.Map, PageSize: s.PageSize, Timeout: time.Duration(s.Timeout), SizeLimit: s.SizeLimit, Retries: s.Retries,
		Attributes: m, Check: m.Check}
}
