package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rosterd/roster/daemon/attrs"
)

// Source types.
const (
	TypeCSV  = "csv"
	TypePush = "push"
	TypeHTTP = "http"
	TypeSCIM = "scim"
	TypeLDAP = "ldap"
)

// PulledTypes are the types of the sources roster reads itself, which a
// sync runs (on schedule, by the CLI, the admin API and page); push and
// scim sources receive their changes over HTTP instead.
var PulledTypes = []string{TypeCSV, TypeHTTP, TypeLDAP}

// Pulled reports whether roster reads the source itself (PulledTypes).
func (s *Source) Pulled() bool { return slices.Contains(PulledTypes, s.Type) }

// Values of the enumerated source settings.
const (
	OrphansIgnore     = "ignore"
	OrphansDeactivate = "deactivate"
	OrphansDelete     = "delete"

	OnConflictFail  = "fail"
	OnConflictSkip  = "skip"
	OnConflictAdopt = "adopt"

	OnDeleteDeactivate = "deactivate"
	OnDeleteDelete     = "delete"
)

// Store drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Token scopes. A push scope for one source is ScopePushPrefix + its name.
const (
	ScopeSCIMRead   = "scim:read"
	ScopeSCIMWrite  = "scim:write"
	ScopeAdmin      = "admin"
	ScopePushAll    = "push:*"
	ScopePushPrefix = "push:"
)

// Config is roster's whole configuration, with defaults applied, secrets
// expanded and paths made absolute.
type Config struct {
	// Path is the absolute path of the file loaded, "" for Default.
	Path string `yaml:"-"`
	// Dir is the absolute folder relative paths were resolved against.
	Dir string `yaml:"-"`

	Listen string `yaml:"listen"`
	// MetricsListen is empty when /metrics is served on Listen.
	MetricsListen string   `yaml:"metrics_listen"`
	TLS           TLS      `yaml:"tls"`
	Store         Store    `yaml:"store"`
	Log           Log      `yaml:"log"`
	Limits        Limits   `yaml:"limits"`
	Tasks         Tasks    `yaml:"tasks"`
	Tokens        []Token  `yaml:"tokens"`
	Sources       []Source `yaml:"sources"`
	// Attributes declares the custom attributes (SPEC §2.1).
	Attributes Attributes `yaml:"attributes"`
	// Sinks are the downstream SCIM services roster provisions (SPEC §12).
	Sinks []Sink `yaml:"sinks"`
	// Secrets holds the key that lets initial passwords reach sinks.
	Secrets Secrets `yaml:"secrets"`
}

// Attributes are the custom attributes of users, served in a User
// extension schema of their own (see docs/attributes.md).
type Attributes struct {
	// CustomSchema is the URN of that schema; "" is
	// attrs.DefaultCustomURN.
	CustomSchema string            `yaml:"custom_schema"`
	Custom       []CustomAttribute `yaml:"custom"`

	model *attrs.Model
}

// CustomAttribute declares one custom attribute.
type CustomAttribute struct {
	Name string `yaml:"name"`
	// Type is one of attrs.Types.
	Type        string `yaml:"type"`
	MultiValued bool   `yaml:"multi_valued"`
	CaseExact   bool   `yaml:"case_exact"`
}

// Model is the custom attributes as the rest of roster takes them: the
// same *attrs.Model for every call on one loaded configuration (it keeps
// the paths it parsed), nil when none are declared.
func (a *Attributes) Model() *attrs.Model {
	if len(a.Custom) == 0 {
		return nil
	}
	if a.model == nil {
		custom := make([]attrs.Custom, len(a.Custom))
		for i, c := range a.Custom {
			custom[i] = attrs.Custom{Name: c.Name, Type: c.Type, MultiValued: c.MultiValued, CaseExact: c.CaseExact}
		}
		a.model = attrs.NewModel(a.CustomSchema, custom)
	}
	return a.model
}

// SameAttributes reports whether a and b declare the same custom
// attributes under the same URN; a reload may not change them.
func SameAttributes(a, b Attributes) bool {
	return a.CustomSchema == b.CustomSchema && slices.Equal(a.Custom, b.Custom)
}

// TLS is served directly when both files are set.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether roster serves TLS itself.
func (t TLS) Enabled() bool { return t.CertFile != "" && t.KeyFile != "" }

// Store says where the directory is kept.
type Store struct {
	Driver string `yaml:"driver"`
	// DSN is an absolute file path for SQLite unless it is ":memory:" or a
	// "file:" URI; for PostgreSQL it is passed on as written.
	DSN               string   `yaml:"dsn"`
	PurgeDeletedAfter Duration `yaml:"purge_deleted_after"`
}

// Log configures the daemon's log and the raw records kept beside it.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
	// Dir is absolute; raw records go to Dir/user-data-sync/.
	Dir     string   `yaml:"dir"`
	KeepRaw Duration `yaml:"keep_raw"`
}

// SlogLevel is Level as a slog.Level; anything unknown is Info.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Limits bound request bodies; a larger body is answered with 413.
type Limits struct {
	RequestBody ByteSize `yaml:"request_body"`
	PushBody    ByteSize `yaml:"push_body"`
	// PushQueue bounds the records a push source may have accepted and not
	// yet applied; a push beyond it is refused with 503 and Retry-After,
	// so that a client faster than the directory waits instead of piling
	// up work. 0 means no bound.
	PushQueue int `yaml:"push_queue"`
	// StreamFrom is the size from which a csv file, or the LDIF of an ldap
	// source's read of every user, is synced as a stream, holding ids
	// rather than records in memory; 0 streams every input.
	StreamFrom ByteSize `yaml:"stream_from"`
	// QueryTimeout bounds the database's work for one SCIM read: a query
	// still running then is stopped in the database and answered 503
	// with Retry-After.
	QueryTimeout Duration `yaml:"query_timeout"`
	// PushWait bounds how long NocoBase's push path waits for a push to be
	// applied before it answers with the queued task instead (SPEC §3.3).
	PushWait Duration `yaml:"push_wait"`
}

// Tasks configures automatic retries and the task history.
type Tasks struct {
	MaxRetries int      `yaml:"max_retries"`
	Keep       Duration `yaml:"keep"`
}

// Token is an API token, known only by the hash of its secret.
type Token struct {
	Name string `yaml:"name"`
	// Hash is "sha256:" followed by the lowercase hex SHA-256 of the token.
	Hash   string   `yaml:"hash"`
	Scopes []string `yaml:"scopes"`
}

// HasScope reports whether the token grants scope; push:* grants the push
// scope of every source.
func (t Token) HasScope(scope string) bool {
	for _, s := range t.Scopes {
		if s == scope || s == ScopePushAll && strings.HasPrefix(scope, ScopePushPrefix) {
			return true
		}
	}
	return false
}

// Source is one configured sync source. Settings of other types than Type
// hold their defaults and are not used.
type Source struct {
	Name    string `yaml:"name"`
	Type    string `yaml:"type"`
	Enabled bool   `yaml:"enabled"`

	// Snapshot settings, csv and http (SPEC §4.2).
	Schedule    string   `yaml:"schedule"`
	Orphans     string   `yaml:"orphans"`
	ActivateNew bool     `yaml:"activate_new"`
	Restore     bool     `yaml:"restore"`
	MaxRemovals Removals `yaml:"max_removals"`
	AllowEmpty  bool     `yaml:"allow_empty"`
	// OnConflict applies to push sources too.
	OnConflict string `yaml:"on_conflict"`

	// csv. Path is absolute.
	Path              string `yaml:"path"`
	Watch             bool   `yaml:"watch"`
	PasswordMinLength int    `yaml:"password_min_length"`
	// ExtraColumns are the attribute paths (SPEC §2.1) of the columns
	// after the seventh, in order.
	ExtraColumns []string `yaml:"extra_columns"`

	// push
	OnDelete string `yaml:"on_delete"`
	// Fields maps NocoBase custom fields of pushed users to attribute
	// paths (SPEC §3.3).
	Fields map[string]string `yaml:"fields"`

	// http
	URL     string            `yaml:"url"`
	Method  string            `yaml:"method"`
	Headers map[string]string `yaml:"headers"`
	Auth    HTTPAuth          `yaml:"auth"`
	// Records is a JSON pointer to the record array; "" is the whole body.
	Records string `yaml:"records"`
	// Next is a JSON pointer to the next page's URL; "" follows the Link
	// header with rel="next".
	Next string `yaml:"next"`
	// Map maps the record's fields (externalId, userName, givenName,
	// familyName, email, phone, groups, active) and any attribute path a
	// source may fill (SPEC §2.1) to JSON pointers into a record.
	Map     map[string]string `yaml:"map"`
	Timeout Duration          `yaml:"timeout"`
	Retries int               `yaml:"retries"`

	// ldap (SPEC §3.5); URL, Map, Timeout and Retries as for http, Map
	// from directory fields and attribute paths to LDAP attributes.
	StartTLS bool `yaml:"start_tls"`
	// CAFile is absolute.
	CAFile       string `yaml:"ca_file"`
	ServerName   string `yaml:"server_name"`
	BindDN       string `yaml:"bind_dn"`
	BindPassword string `yaml:"bind_password"`
	BaseDN       string `yaml:"base_dn"`
	UserFilter   string `yaml:"user_filter"`
	GroupFilter  string `yaml:"group_filter"`
	// Flavor "" is openldap; PageSize 0 is 500.
	Flavor    string `yaml:"flavor"`
	PageSize  int    `yaml:"page_size"`
	SizeLimit int    `yaml:"size_limit"`
	// FullEvery is how long scheduled syncs may read only what changed
	// since the last read before one reads everything (finding orphans);
	// 0 makes every read a full one.
	FullEvery Duration `yaml:"full_every"`
}

// HTTPAuth is how an http source authenticates; at most one is set.
type HTTPAuth struct {
	Bearer string     `yaml:"bearer"`
	Basic  *BasicAuth `yaml:"basic"`
	OAuth2 *OAuth2    `yaml:"oauth2"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// OAuth2 is the OAuth 2.0 client credentials grant.
type OAuth2 struct {
	TokenURL     string   `yaml:"token_url"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"`
}

// setDefaults is called on every item of sources before it is decoded.
func (s *Source) setDefaults() {
	*s = Source{
		Enabled:           true,
		Orphans:           OrphansDeactivate,
		ActivateNew:       true,
		Restore:           true,
		MaxRemovals:       Removals{Percent: 10, IsPercent: true},
		OnConflict:        OnConflictFail,
		Watch:             true,
		PasswordMinLength: 8,
		OnDelete:          OnDeleteDeactivate,
		Method:            "GET",
		Timeout:           Duration(30 * time.Second),
		Retries:           3,
		FullEvery:         Duration(24 * time.Hour),
	}
}

// Source returns the source called name.
func (c *Config) Source(name string) (*Source, bool) {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i], true
		}
	}
	return nil, false
}

// Load reads and validates the configuration file at path. Problems with
// the content are reported together in an *Error; a file that cannot be read
// gives a wrapped I/O error (errors.Is(err, fs.ErrNotExist) when it is
// missing).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse validates a configuration read from path. The path names the file
// in problems, and its folder is where relative paths start.
func Parse(data []byte, path string) (*Config, error) {
	abs, dir := locate(path)
	cfg := defaults(dir)
	cfg.Path = abs

	c := newCollector(path)
	if root := c.parse(data); root != nil {
		c.expand(root, dir)
		c.decodeRoot(root, cfg)
	}
	cfg.resolve()
	validate(cfg, c)
	if err := c.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Default is the configuration used when there is no file: SQLite in dir,
// 127.0.0.1:8080 and the push source "api" that NocoBase clients expect.
func Default(dir string) *Config {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	cfg := defaults(dir)
	var api Source
	api.setDefaults()
	api.Name, api.Type = "api", TypePush
	cfg.Sources = []Source{api}
	cfg.resolve()
	return cfg
}

// defaults returns every default except the DSN, which depends on the
// driver and is filled in by resolve.
func defaults(dir string) *Config {
	return &Config{
		Dir:    dir,
		Listen: "127.0.0.1:8080",
		Store: Store{
			Driver:            DriverSQLite,
			PurgeDeletedAfter: Duration(720 * time.Hour),
		},
		Log: Log{
			Level:   "info",
			Format:  "text",
			Dir:     "log",
			KeepRaw: Duration(720 * time.Hour),
		},
		Limits: Limits{
			RequestBody:  10 * MiB,
			PushBody:     64 * MiB,
			PushQueue:    50000,
			StreamFrom:   4 * MiB,
			QueryTimeout: Duration(10 * time.Second),
			PushWait:     Duration(30 * time.Second),
		},
		Tasks: Tasks{
			MaxRetries: 3,
			Keep:       Duration(2160 * time.Hour),
		},
	}
}

// locate returns the absolute form of path and its folder; without a path
// the folder is the working directory.
func locate(path string) (abs, dir string) {
	if path == "" {
		wd, err := os.Getwd()
		if err != nil {
			wd = "."
		}
		return "", wd
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return abs, filepath.Dir(abs)
}

// resolve fills in the SQLite DSN and makes relative paths absolute. Empty
// paths stay empty so that validation can say they are missing.
func (c *Config) resolve() {
	if c.Store.Driver == DriverSQLite {
		if c.Store.DSN == "" {
			c.Store.DSN = "roster.db"
		}
		c.Store.DSN = resolveSQLite(c.Dir, c.Store.DSN)
	}
	c.Log.Dir = c.abs(c.Log.Dir)
	c.TLS.CertFile = c.abs(c.TLS.CertFile)
	c.TLS.KeyFile = c.abs(c.TLS.KeyFile)
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.Type == TypeCSV {
			s.Path = c.abs(s.Path)
		}
		if s.Type == TypeLDAP {
			s.CAFile = c.abs(s.CAFile)
		}
		s.Method = strings.ToUpper(s.Method)
	}
}

func (c *Config) abs(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(c.Dir, path)
}

// sqlitePath returns the file an SQLite DSN names, or "" when it is not a
// plain path. Query parameters (roster.db?_pragma=...) are not part of it.
func sqlitePath(dsn string) string {
	if dsn == ":memory:" || strings.HasPrefix(dsn, "file:") {
		return ""
	}
	path, _, _ := strings.Cut(dsn, "?")
	return path
}

func resolveSQLite(dir, dsn string) string {
	path := sqlitePath(dsn)
	if path == "" || filepath.IsAbs(path) {
		return dsn
	}
	return filepath.Join(dir, path) + dsn[len(path):]
}
