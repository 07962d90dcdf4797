package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"

	"github.com/rosterd/roster/daemon/attrs"
)

// sourceName keeps names safe in file paths, URLs and token scopes.
var sourceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

var (
	snapshotKeys = []string{"schedule", "orphans", "activate_new", "restore", "max_removals", "allow_empty", "on_conflict"}
	// sourceKeys are the keys each type accepts besides name, type and
	// enabled.
	sourceKeys = map[string][]string{
		TypeCSV:  append([]string{"path", "watch", "password_min_length", "extra_columns"}, snapshotKeys...),
		TypeHTTP: append([]string{"url", "method", "headers", "auth", "records", "next", "map", "timeout", "retries"}, snapshotKeys...),
		TypePush: {"on_delete", "on_conflict", "fields"},
		TypeSCIM: {},
		TypeLDAP: append([]string{"url", "start_tls", "ca_file", "server_name", "bind_dn", "bind_password", "base_dn",
			"user_filter", "group_filter", "flavor", "map", "page_size", "size_limit", "timeout", "retries", "full_every"}, snapshotKeys...),
	}
	sourceTypes = []string{TypeCSV, TypePush, TypeHTTP, TypeSCIM, TypeLDAP}
	// mapFields are the directory fields an http source can fill.
	mapFields = []string{"externalId", "userName", "givenName", "familyName", "email", "phone", "groups", "active"}
)

func validate(cfg *Config, c *collector) {
	c.address("listen", cfg.Listen)
	if cfg.MetricsListen != "" {
		c.address("metrics_listen", cfg.MetricsListen)
		if cfg.MetricsListen == cfg.Listen {
			c.check("metrics_listen", "is the same address as listen; leave it empty to serve /metrics on the main listener")
		}
	}
	c.validateTLS(cfg.TLS)
	c.validateStore(cfg.Store)

	c.oneOf("log.level", cfg.Log.Level, "debug", "info", "warn", "error")
	c.oneOf("log.format", cfg.Log.Format, "text", "json")
	if cfg.Log.Dir == "" {
		c.check("log.dir", "must not be empty; raw records are kept there")
	}
	c.positive("log.keep_raw", cfg.Log.KeepRaw)
	if cfg.Limits.RequestBody <= 0 {
		c.check("limits.request_body", "must be greater than zero")
	}
	if cfg.Limits.PushQueue < 0 {
		c.check("limits.push_queue", "must be zero (no bound) or more")
	}
	if cfg.Limits.StreamFrom < 0 {
		c.check("limits.stream_from", "must be zero (stream every file) or more")
	}
	if cfg.Limits.PushBody <= 0 {
		c.check("limits.push_body", "must be greater than zero")
	}
	c.positive("limits.query_timeout", cfg.Limits.QueryTimeout)
	c.positive("limits.push_wait", cfg.Limits.PushWait)
	if cfg.Tasks.MaxRetries < 0 {
		c.check("tasks.max_retries", "must not be negative")
	}
	c.positive("tasks.keep", cfg.Tasks.Keep)

	c.validateAttributes(&cfg.Attributes)
	c.validateSources(cfg)
	c.validateTokens(cfg)
	c.validateSinks(cfg)
	c.validateSecrets(cfg.Secrets)
}

// fixedURNs are the schemas and messages roster serves itself; the custom
// attributes' schema cannot be one of them.
var fixedURNs = []string{
	"urn:ietf:params:scim:schemas:core:2.0:User",
	"urn:ietf:params:scim:schemas:core:2.0:Group",
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
	"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
	"urn:ietf:params:scim:schemas:core:2.0:ResourceType",
	"urn:ietf:params:scim:schemas:core:2.0:Schema",
	"urn:ietf:params:scim:api:messages:2.0:ListResponse",
	"urn:ietf:params:scim:api:messages:2.0:SearchRequest",
	"urn:ietf:params:scim:api:messages:2.0:PatchOp",
	"urn:ietf:params:scim:api:messages:2.0:Error",
	"urn:ietf:params:scim:api:messages:2.0:BulkRequest",
	"urn:ietf:params:scim:api:messages:2.0:BulkResponse",
}

// validateAttributes checks the custom attributes (SPEC §2.1): names by
// RFC 7643's ATTRNAME, unique regardless of case and none of the User's
// own, so that an unqualified path means one attribute only; types among
// attrs.Types; the schema a URN of its own.
func (c *collector) validateAttributes(a *Attributes) {
	if a.CustomSchema != "" {
		if err := attrs.ValidURN(a.CustomSchema); err != nil {
			c.check("attributes.custom_schema", "%v", err)
		}
		for _, u := range fixedURNs {
			if strings.EqualFold(u, a.CustomSchema) {
				c.check("attributes.custom_schema", "%q is a schema of SCIM itself; name one of your own, such as %s", a.CustomSchema, attrs.DefaultCustomURN)
			}
		}
	}
	before := len(c.problems)
	seen := map[string]int{}
	for i, ca := range a.Custom {
		k := indexKey("attributes.custom", i)
		switch folded := strings.ToLower(ca.Name); {
		case ca.Name == "":
			c.check(k+".name", "is required")
		case !attrs.ValidName(ca.Name):
			c.check(k+".name", "%q is not an attribute name: a letter, then letters, digits, \"-\" or \"_\" (RFC 7643 §2.1)", ca.Name)
		case attrs.CoreName(ca.Name):
			c.check(k+".name", "%q is an attribute of the User or its enterprise extension already; choose another name", ca.Name)
		default:
			if j, dup := seen[folded]; dup {
				c.check(k+".name", "%q is declared already (%s at line %d); names are compared regardless of case",
					ca.Name, indexKey("attributes.custom", j), c.line(indexKey("attributes.custom", j)+".name"))
			} else {
				seen[folded] = i
			}
		}
		if ca.Type == "" {
			c.check(k+".type", "is required (%s)", orList(attrs.Types))
		} else {
			c.oneOf(k+".type", ca.Type, attrs.Types...)
		}
	}
	if len(c.problems) == before {
		a.Model() // built once, before the configuration is shared
	}
}

func (c *collector) address(key, addr string) {
	if addr == "" {
		c.check(key, "is required")
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		c.check(key, "%q is not a host:port address such as 127.0.0.1:8080", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		c.check(key, "port %q is not a number from 0 to 65535", port)
	}
}

func (c *collector) validateTLS(t TLS) {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		c.check("tls.key_file", "is required when tls.cert_file is set")
	case t.CertFile == "" && t.KeyFile != "":
		c.check("tls.cert_file", "is required when tls.key_file is set")
	}
	c.regularFile("tls.cert_file", t.CertFile)
	c.regularFile("tls.key_file", t.KeyFile)
}

func (c *collector) regularFile(key, path string) {
	if path == "" {
		return
	}
	switch info, err := os.Stat(path); {
	case os.IsNotExist(err):
		c.check(key, "file %s does not exist", path)
	case err != nil:
		c.check(key, "%v", err)
	case !info.Mode().IsRegular():
		c.check(key, "%s is not a regular file", path)
	}
}

// folderOf checks that the folder a file will be written to exists.
func (c *collector) folderOf(key, path string) {
	dir := filepath.Dir(path)
	switch info, err := os.Stat(dir); {
	case os.IsNotExist(err):
		c.check(key, "folder %s does not exist", dir)
	case err != nil:
		c.check(key, "%v", err)
	case !info.IsDir():
		c.check(key, "%s is not a folder", dir)
	}
}

// validateStore never quotes the DSN: it may hold a password.
func (c *collector) validateStore(s Store) {
	switch s.Driver {
	case DriverSQLite:
		if path := sqlitePath(s.DSN); path != "" {
			c.folderOf("store.dsn", path)
		}
	case DriverPostgres:
		switch {
		case s.DSN == "":
			c.check("store.dsn", "is required when store.driver is postgres")
		case !strings.HasPrefix(s.DSN, "postgres://") && !strings.HasPrefix(s.DSN, "postgresql://") && !strings.Contains(s.DSN, "="):
			c.check("store.dsn", "is not a PostgreSQL connection string (postgres://user@host:5432/db or \"host=... dbname=...\")")
		}
	default:
		c.oneOf("store.driver", s.Driver, DriverSQLite, DriverPostgres)
	}
	c.positive("store.purge_deleted_after", s.PurgeDeletedAfter)
}

func (c *collector) validateSources(cfg *Config) {
	type seen struct {
		key  string
		name string
	}
	names := map[string]seen{}
	scim := ""
	for i := range cfg.Sources {
		s := &cfg.Sources[i]
		k := indexKey("sources", i)
		nk := k + ".name"
		switch {
		case s.Name == "":
			c.check(nk, "is required")
		case !sourceName.MatchString(s.Name):
			c.check(nk, "%q is not a valid source name: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", s.Name)
		default:
			folded := strings.ToLower(s.Name)
			switch first, dup := names[folded]; {
			case dup && first.name == s.Name:
				c.check(nk, "source name %q is already used by %s at line %d", s.Name, first.key, c.line(first.key+".name"))
			case dup:
				c.check(nk, "source name %q differs only in letter case from %q (%s at line %d); names appear in file paths", s.Name, first.name, first.key, c.line(first.key+".name"))
			default:
				names[folded] = seen{k, s.Name}
			}
		}

		tk := k + ".type"
		switch {
		case s.Type == "":
			c.check(tk, "is required (%s)", orList(sourceTypes))
			continue
		case !slices.Contains(sourceTypes, s.Type):
			c.oneOf(tk, s.Type, sourceTypes...)
			continue
		}
		c.keysOfType(k, s.Type)

		switch s.Type {
		case TypeCSV:
			c.snapshot(k, s)
			c.validateCSV(k, s, cfg.Attributes.Model())
		case TypeHTTP:
			c.snapshot(k, s)
			c.validateHTTP(k, s, cfg.Attributes.Model())
		case TypeLDAP:
			c.snapshot(k, s)
			c.validateLDAP(k, s, cfg.Attributes.Model())
		case TypePush:
			c.oneOf(k+".on_delete", s.OnDelete, OnDeleteDeactivate, OnDeleteDelete)
			c.oneOf(k+".on_conflict", s.OnConflict, OnConflictFail, OnConflictSkip, OnConflictAdopt)
			for _, f := range slices.Sorted(maps.Keys(s.Fields)) {
				if _, err := attrs.ParsePath(s.Fields[f], cfg.Attributes.Model()); err != nil {
					c.check(k+".fields."+f, "%v", err)
				}
			}
		case TypeSCIM:
			if scim != "" {
				c.check(tk, "only one scim source may exist; %s at line %d is one already", scim, c.line(scim))
			} else {
				scim = k
			}
		}
	}
}

// keysOfType reports keys written for a source that its type does not use.
func (c *collector) keysOfType(k, typ string) {
	for _, name := range yamlFields(reflect.TypeFor[Source]()).names {
		if name == "name" || name == "type" || name == "enabled" || !c.has(k+"."+name) || slices.Contains(sourceKeys[typ], name) {
			continue
		}
		var users []string
		for _, t := range sourceTypes {
			if slices.Contains(sourceKeys[t], name) {
				users = append(users, t)
			}
		}
		c.check(k+"."+name, "is not a setting of %s sources (only of %s sources)", typ, orList(users))
	}
}

func (c *collector) snapshot(k string, s *Source) {
	if s.Schedule != "" {
		if err := parseCron(s.Schedule); err != nil {
			c.check(k+".schedule", "%q is not a valid cron expression: %v", s.Schedule, err)
		}
	}
	c.oneOf(k+".orphans", s.Orphans, OrphansIgnore, OrphansDeactivate, OrphansDelete)
	c.oneOf(k+".on_conflict", s.OnConflict, OnConflictFail, OnConflictSkip, OnConflictAdopt)
}

// parseCron is cron.ParseStandard without its panics: robfig/cron v3.0.1
// slices out of range on "TZ=UTC" with nothing after it.
func parseCron(spec string) (err error) {
	if (strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=")) && !strings.Contains(spec, " ") {
		return fmt.Errorf("a time zone must be followed by a schedule")
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	if _, err := cron.ParseStandard(spec); err != nil {
		return err
	}
	return checkSteps(spec)
}

// cronFields are the bounds of the five standard fields.
var cronFields = []struct {
	name     string
	min, max int
}{
	{"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 6},
}

// checkSteps rejects steps larger than their field, which robfig/cron
// accepts: "*/61" in the minute field would run only at minute 0, which is
// never what was meant.
func checkSteps(spec string) error {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		_, spec, _ = strings.Cut(spec, " ")
	}
	fields := strings.Fields(spec)
	if len(fields) != len(cronFields) {
		return nil // a descriptor such as @hourly
	}
	for i, field := range fields {
		f := cronFields[i]
		for part := range strings.SplitSeq(field, ",") {
			_, step, ok := strings.Cut(part, "/")
			if !ok {
				continue
			}
			if n, err := strconv.Atoi(step); err == nil && n > f.max {
				return fmt.Errorf("step %d of the %s field is larger than its range %d-%d", n, f.name, f.min, f.max)
			}
		}
	}
	return nil
}

func (c *collector) validateCSV(k string, s *Source, model *attrs.Model) {
	if s.Path == "" {
		c.check(k+".path", "is required for a csv source")
	} else {
		c.folderOf(k+".path", s.Path)
	}
	if s.PasswordMinLength < 1 {
		c.check(k+".password_min_length", "must be at least 1")
	}
	seen := map[string]int{}
	for i, path := range s.ExtraColumns {
		key := fmt.Sprintf("%s.extra_columns[%d]", k, i)
		if _, err := attrs.ParsePath(path, model); err != nil {
			c.check(key, "%v", err)
			continue
		}
		if j, dup := seen[strings.ToLower(path)]; dup {
			c.check(key, "%q fills column %d already", path, 8+j)
			continue
		}
		seen[strings.ToLower(path)] = i
	}
}

// validateHTTP does not quote URLs or header values: they may carry keys.
func (c *collector) validateHTTP(k string, s *Source, model *attrs.Model) {
	if s.URL == "" {
		c.check(k+".url", "is required for an http source")
	} else {
		c.httpURL(k+".url", s.URL)
	}
	c.oneOf(k+".method", s.Method, "GET", "POST")
	for _, name := range slices.Sorted(maps.Keys(s.Headers)) {
		value := s.Headers[name]
		hk := k + ".headers." + name
		if !validHeaderName(name) {
			c.check(hk, "%q is not a valid header name", name)
		}
		if strings.ContainsAny(value, "\r\n") {
			c.check(hk, "header values must not contain line breaks")
		}
	}

	a, ak := s.Auth, k+".auth"
	c.auth(ak, a)
	if a.Bearer != "" || a.Basic != nil || a.OAuth2 != nil {
		for name := range s.Headers {
			if strings.EqualFold(name, "Authorization") {
				c.check(ak, "set either auth or an Authorization header, not both")
			}
		}
	}

	c.pointer(k+".records", s.Records, true)
	c.pointer(k+".next", s.Next, true)
	if len(s.Map) == 0 {
		c.check(k+".map", "is required: map JSON pointers to at least externalId and userName")
	} else {
		for _, f := range []string{"externalId", "userName"} {
			if _, ok := s.Map[f]; !ok {
				c.check(k+".map."+f, "is required")
			}
		}
		for _, f := range slices.Sorted(maps.Keys(s.Map)) {
			p := s.Map[f]
			if !slices.Contains(mapFields, f) {
				if _, err := attrs.ParsePath(f, model); err != nil {
					c.check(k+".map."+f, "is not a directory field (%s), and %v", orList(mapFields), err)
					continue
				}
			}
			c.pointer(k+".map."+f, p, false)
		}
	}
	c.positive(k+".timeout", s.Timeout)
	if s.Retries < 0 {
		c.check(k+".retries", "must not be negative")
	}
}

func (c *collector) httpURL(key, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		c.check(key, "is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		c.check(key, "must be an http or https URL, not scheme %q", u.Scheme)
	case u.Host == "":
		c.check(key, "must name a host")
	}
}

// pointer checks a JSON pointer (RFC 6901).
func (c *collector) pointer(key, p string, emptyOK bool) {
	if p == "" {
		if !emptyOK {
			c.check(key, "must be a JSON pointer such as /id")
		}
		return
	}
	if p[0] != '/' {
		c.check(key, "%q is not a JSON pointer: it must start with \"/\", as in /%s", p, p)
		return
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || p[i+1] != '0' && p[i+1] != '1') {
			c.check(key, "%q is not a JSON pointer: \"~\" must be followed by 0 or 1", p)
			return
		}
	}
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

// validateTokens never quotes a hash: SPEC §10 keeps even hashed tokens out
// of logs.
func (c *collector) validateTokens(cfg *Config) {
	names := map[string]string{}
	for i, t := range cfg.Tokens {
		k := indexKey("tokens", i)
		switch first, dup := names[t.Name]; {
		case t.Name == "":
			c.check(k+".name", "is required")
		case dup:
			c.check(k+".name", "token name %q is already used by %s at line %d", t.Name, first, c.line(first+".name"))
		default:
			names[t.Name] = k
		}
		if t.Hash == "" {
			c.check(k+".hash", "is required: the output of `roster token`")
		} else if !validHash(t.Hash) {
			c.check(k+".hash", "must be \"sha256:\" followed by 64 lowercase hex digits, as `roster token` prints")
		}
		if len(t.Scopes) == 0 {
			c.check(k+".scopes", "at least one scope is required")
		}
		for j, s := range t.Scopes {
			c.scope(cfg, indexKey(k+".scopes", j), s)
		}
	}
}

func (c *collector) scope(cfg *Config, key, scope string) {
	switch scope {
	case ScopeSCIMRead, ScopeSCIMWrite, ScopeAdmin, ScopePushAll:
		return
	}
	name, ok := strings.CutPrefix(scope, ScopePushPrefix)
	if !ok {
		c.check(key, "%q is not a scope; use scim:read, scim:write, admin, push:* or push:SOURCE", scope)
		return
	}
	switch s, found := cfg.Source(name); {
	case !found:
		c.check(key, "%q names no configured source", scope)
	case s.Type != TypePush:
		c.check(key, "%q names a %s source; push scopes are for push sources", scope, s.Type)
	}
}

func validHash(h string) bool {
	hex, ok := strings.CutPrefix(h, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	return strings.Trim(hex, "0123456789abcdef") == ""
}

func (c *collector) positive(key string, d Duration) {
	if d <= 0 {
		c.check(key, "must be greater than zero")
	}
}

func (c *collector) oneOf(key, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		c.check(key, "%q is not valid; use %s", value, orList(allowed))
	}
}

// orList writes "a, b or c".
func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
