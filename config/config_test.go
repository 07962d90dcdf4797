package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testEnv is the environment the good files expect.
var testEnv = map[string]string{
	"HR_TOKEN":               "hr-bearer-token",
	"ROSTER_TEST_LISTEN":     "127.0.0.1:9443",
	"ROSTER_TEST_PGPASSWORD": "pa$$word",
	"ROSTER_TEST_RETRIES":    "7",
	"ROSTER_TEST_CLIENT_ID":  "roster-client",
	"WIKI_SCIM_TOKEN":        "wiki-scim-token",
}

func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// unsetEnv removes a variable for the test and restores it afterwards.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	os.Unsetenv(name)
}

func testdata(t *testing.T, name string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestGoodFiles(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, c *Config)
	}{
		{"empty.good.yaml", func(t *testing.T, c *Config) {
			want := Default(filepath.Dir(c.Path))
			want.Path = c.Path
			want.Sources = nil
			equal(t, "config", c, want)
		}},
		{"minimal.good.yaml", func(t *testing.T, c *Config) {
			equal(t, "Listen", c.Listen, "0.0.0.0:9090")
			equal(t, "Store.DSN", c.Store.DSN, testdata(t, "roster.db"))
			equal(t, "Log.Dir", c.Log.Dir, testdata(t, "log"))
			api, ok := c.Source("api")
			if !ok {
				t.Fatal("source api missing")
			}
			equal(t, "api.Enabled", api.Enabled, true)
			equal(t, "api.OnDelete", api.OnDelete, OnDeleteDeactivate)
		}},
		{"spec.good.yaml", func(t *testing.T, c *Config) {
			equal(t, "Listen", c.Listen, "127.0.0.1:8080")
			equal(t, "MetricsListen", c.MetricsListen, "")
			equal(t, "Store", c.Store, Store{Driver: DriverSQLite, DSN: testdata(t, "roster.db"), PurgeDeletedAfter: Duration(720 * time.Hour)})
			equal(t, "Log", c.Log, Log{Level: "info", Format: "text", Dir: testdata(t, "log"), KeepRaw: Duration(720 * time.Hour)})
			equal(t, "Limits", c.Limits, Limits{RequestBody: 10 << 20, PushBody: 64 << 20, PushQueue: 50000, StreamFrom: 4 << 20,
				QueryTimeout: Duration(10 * time.Second), PushWait: Duration(30 * time.Second)})
			equal(t, "Tasks", c.Tasks, Tasks{MaxRetries: 3, Keep: Duration(2160 * time.Hour)})
			equal(t, "Tokens", c.Tokens, []Token{{
				Name:   "okta",
				Hash:   "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
				Scopes: []string{ScopeSCIMRead},
			}})
			equal(t, "len(Sources)", len(c.Sources), 3)
			staff := c.Sources[0]
			equal(t, "staff.Path", staff.Path, testdata(t, "staff.csv"))
			equal(t, "staff.Schedule", staff.Schedule, "*/5 * * * *")
			equal(t, "staff.MaxRemovals", staff.MaxRemovals, Removals{Percent: 10, IsPercent: true})
			equal(t, "staff.PasswordMinLength", staff.PasswordMinLength, 8)
			hr := c.Sources[2]
			equal(t, "hr.Auth", hr.Auth, HTTPAuth{Bearer: "hr-bearer-token"})
			equal(t, "hr.Records", hr.Records, "/data")
			equal(t, "hr.Next", hr.Next, "/links/next")
			equal(t, "hr.Map[groups]", hr.Map["groups"], "/teams")
			equal(t, "hr.Timeout", hr.Timeout, Duration(30*time.Second))
			equal(t, "hr.Method", hr.Method, "GET")
			equal(t, "Attributes.Custom", c.Attributes.Custom, []CustomAttribute{{Name: "costCentreCode", Type: "string"}})
			equal(t, "Sinks[0].Auth", c.Sinks[0].Auth, HTTPAuth{Bearer: "wiki-scim-token"})
			equal(t, "Sinks[0].Scope.Sources", c.Sinks[0].Scope.Sources, []string{"staff", "hr"})
			equal(t, "Sinks[0].Limits", c.Sinks[0].Limits, SinkLimits{Rate: 10, Concurrency: 4, Timeout: Duration(30 * time.Second)})
			m := c.Attributes.Model()
			equal(t, "Model.URN", m.URN, "urn:example:params:scim:schemas:extension:roster:2.0:User")
			if m != c.Attributes.Model() {
				t.Error("Model is built again on every call")
			}
		}},
		{"sources.good.yaml", func(t *testing.T, c *Config) {
			equal(t, "Store.DSN", c.Store.DSN, "postgres://roster@db.internal:5432/roster?sslmode=verify-full")
			equal(t, "Store.PurgeDeletedAfter", c.Store.PurgeDeletedAfter, Duration(90*24*time.Hour))
			equal(t, "Log.Dir", c.Log.Dir, "/var/log/roster")
			equal(t, "Log.SlogLevel", c.Log.SlogLevel().String(), "DEBUG")
			equal(t, "Limits", c.Limits, Limits{RequestBody: 512 << 10, PushBody: 1 << 30, PushQueue: 0, StreamFrom: 0,
				QueryTimeout: Duration(2500 * time.Millisecond), PushWait: Duration(5 * time.Second)})
			equal(t, "Tasks", c.Tasks, Tasks{MaxRetries: 0, Keep: Duration(36 * time.Hour)})
			equal(t, "ops push scope", c.Tokens[2].HasScope("push:workday"), true)
			equal(t, "entra push scope", c.Tokens[0].HasScope("push:workday"), false)

			staff, _ := c.Source("staff")
			equal(t, "staff", *staff, Source{
				Name: "staff", Type: TypeCSV, Enabled: true,
				Schedule: "0 2 * * 1-5", Orphans: OrphansDelete, ActivateNew: false, Restore: false,
				MaxRemovals: Removals{Count: 50}, AllowEmpty: true, OnConflict: OnConflictSkip,
				Path: testdata(t, "imports/staff.csv"), Watch: false, PasswordMinLength: 12,
				OnDelete: OnDeleteDeactivate, Method: "GET", Timeout: Duration(30 * time.Second), Retries: 3,
				FullEvery: Duration(24 * time.Hour),
			})
			workday, _ := c.Source("workday")
			equal(t, "workday.Enabled", workday.Enabled, false)
			equal(t, "workday.OnDelete", workday.OnDelete, OnDeleteDelete)
			hr, _ := c.Source("hr")
			equal(t, "hr.Method", hr.Method, "POST")
			equal(t, "hr.Headers", hr.Headers, map[string]string{"Accept": "application/json", "X-Tenant": "acme"})
			equal(t, "hr.Auth.Basic", hr.Auth.Basic, &BasicAuth{Username: "roster", Password: "pa$$w0rd"})
			equal(t, "hr.Map[active]", hr.Map["active"], "/status~1active")
			equal(t, "hr.Timeout", hr.Timeout, Duration(90*time.Second))
			equal(t, "hr.Retries", hr.Retries, 5)
			equal(t, "hr.MaxRemovals", hr.MaxRemovals, Removals{Percent: 2.5, IsPercent: true})
			equal(t, "hr.OnConflict", hr.OnConflict, OnConflictAdopt)
			crm, _ := c.Source("crm.contacts")
			equal(t, "crm.Auth.OAuth2", crm.Auth.OAuth2, &OAuth2{
				TokenURL: "https://login.example.com/oauth2/token", ClientID: "roster",
				ClientSecret: "s3cret", Scopes: []string{"contacts.read"},
			})
			equal(t, "crm.Schedule", crm.Schedule, "")
			idp, _ := c.Source("idp")
			equal(t, "idp.Type", idp.Type, TypeSCIM)
			ad, _ := c.Source("ad")
			equal(t, "ad.Flavor", ad.Flavor, "active_directory")
			equal(t, "ad.BindPassword", ad.BindPassword, "ad-bind-password")
			equal(t, "ad.Map", ad.Map, map[string]string{"userName": "userPrincipalName", "title": "title", "employeeNumber": ""})
			equal(t, "ad.PageSize", ad.PageSize, 1000)
			equal(t, "ad.Retries", ad.Retries, 3)
			equal(t, "ad.FullEvery", ad.FullEvery, Duration(6*time.Hour))
		}},
		{"secrets.good.yaml", func(t *testing.T, c *Config) {
			equal(t, "Listen", c.Listen, "127.0.0.1:9443")
			equal(t, "TLS", c.TLS, TLS{CertFile: testdata(t, "tls/cert.pem"), KeyFile: testdata(t, "tls/key.pem")})
			equal(t, "Store.DSN", c.Store.DSN, "postgres://roster:pa$$word@db:5432/roster")
			equal(t, "Tasks.MaxRetries", c.Tasks.MaxRetries, 7)
			hr := c.Sources[0]
			equal(t, "hr.Headers", hr.Headers, map[string]string{
				"X-Api-Key": "test-api-key",
				"X-Literal": "${NOT_A_VARIABLE} costs $5 and $$",
			})
			equal(t, "hr.Auth.OAuth2.ClientID", hr.Auth.OAuth2.ClientID, "roster-client")
			equal(t, "hr.Auth.OAuth2.ClientSecret", hr.Auth.OAuth2.ClientSecret, "oauth-client-secret")
		}},
		{"sinks.good.yaml", func(t *testing.T, c *Config) {
			equal(t, "len(Sinks)", len(c.Sinks), 3)
			wiki, _ := c.Sink("wiki")
			equal(t, "wiki", *wiki, Sink{
				Name: "wiki", Enabled: true, URL: "https://wiki.example.com/scim/v2",
				Scope: SinkScope{Groups: SinkGroupsMembers}, OnRemove: OnRemoveDeactivate,
				Interval: Duration(time.Minute), CompareEvery: Duration(24 * time.Hour), MaxRemovals: Removals{Percent: 10, IsPercent: true},
				Limits: SinkLimits{Rate: 10, Concurrency: 4, Timeout: Duration(30 * time.Second)},
			})
			crm, _ := c.Sink("crm")
			equal(t, "crm", *crm, Sink{
				Name: "crm", Enabled: false, URL: "http://127.0.0.1:9000/scim",
				Auth: HTTPAuth{OAuth2: &OAuth2{TokenURL: "https://login.example.com/token", ClientID: "roster",
					ClientSecret: "oauth-client-secret", Scopes: []string{"scim"}}},
				Scope: SinkScope{Sources: []string{"staff"}, Filter: `active eq true and title sw "Sales"`, Groups: SinkGroupsAll},
				Map: map[string]string{"userName": "userName", "title": "title",
					"costCentreCode": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"},
				OnRemove: OnRemoveDelete, Interval: Duration(30 * time.Second), CompareEvery: Duration(12 * time.Hour), MaxRemovals: Removals{Count: 25},
				Limits: SinkLimits{Rate: 10, Concurrency: 1, Timeout: Duration(5 * time.Second)},
			})
			chat, _ := c.Sink("chat")
			equal(t, "chat.Auth", chat.Auth, HTTPAuth{Basic: &BasicAuth{Username: "roster", Password: "hr-bearer-token"}})
			equal(t, "chat.Scope.Groups", chat.Scope.Groups, SinkGroupsNone)
			equal(t, "chat.Limits.Rate", chat.Limits.Rate, Rate(0))
			if _, ok := c.Sink("nobody"); ok {
				t.Error("Sink found a sink that is not configured")
			}
		}},
		{"anchors.good.yaml", func(t *testing.T, c *Config) {
			equal(t, "len(Sources)", len(c.Sources), 2)
			for _, s := range c.Sources {
				equal(t, s.Name+".Schedule", s.Schedule, "@every 10m")
				equal(t, s.Name+".MaxRemovals", s.MaxRemovals, Removals{Percent: 25, IsPercent: true})
				equal(t, s.Name+".Watch", s.Watch, true)
			}
			equal(t, "staff.Orphans", c.Sources[0].Orphans, OrphansIgnore)
			equal(t, "contractors.Orphans", c.Sources[1].Orphans, OrphansDelete)
		}},
	}
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("%d good files in testdata, %d in the table", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			setEnv(t, testEnv)
			path := filepath.Join("testdata", tt.file)
			c, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			equal(t, "Path", c.Path, testdata(t, tt.file))
			equal(t, "Dir", c.Dir, testdata(t, ""))
			tt.check(t, c)
		})
	}
}

// want is an expected problem: its line, its key and a part of its message.
type want struct {
	line int
	key  string
	msg  string
}

func TestBadFiles(t *testing.T) {
	tests := []struct {
		file string
		want []want
	}{
		{"unknown.bad.yaml", []want{
			{3, "listn", `unknown key; did you mean "listen"?`},
			{6, "store.pool_size", "unknown key"},
			{11, "sources[0].shedule", `did you mean "schedule"?`},
			{12, "sources[0].url", "is not a setting of csv sources (only of http or ldap sources)"},
			{13, "sources[0].on_delete", "(only of push sources)"},
			{16, "sources[1].schedule", "is not a setting of push sources (only of csv, http or ldap sources)"},
			{17, "sources[1].watch", "is not a setting of push sources"},
		}},
		{"many.bad.yaml", []want{
			{2, "store.dsn", "is required when store.driver is postgres"},
			{4, "store.purge_deleted_after", `"30 days" is not a valid duration`},
			{6, "log.level", `"verbose" is not valid; use debug, info, warn or error`},
			{8, "limits.request_body", `unknown unit "MBs"`},
			{11, "tokens[0].hash", `must be "sha256:" followed by 64 lowercase hex digits`},
			{12, "tokens[0].scopes[1]", `"scim:delete" is not a scope`},
			{13, "tokens[1].name", `token name "okta" is already used by tokens[0] at line 10`},
			{15, "tokens[1].scopes[0]", `"push:staff" names a csv source`},
			{15, "tokens[1].scopes[1]", `"push:nobody" names no configured source`},
			{19, "sources[0].path", "missing-folder does not exist"},
			{20, "sources[0].schedule", `"*/61 * * * *" is not a valid cron expression: step 61 of the minute field`},
			{21, "sources[0].orphans", `"remove" is not valid; use ignore, deactivate or delete`},
			{22, "sources[1].name", `source name "staff" is already used by sources[0] at line 17`},
			{27, "sources[3].type", "only one scim source may exist; sources[2] at line 24"},
			{29, "sources[4].type", `"ftp" is not valid; use csv, push, http, scim or ldap`},
		}},
		{"syntax.bad.yaml", []want{
			{4, "", "invalid YAML: a tab is used for indentation"},
		}},
		{"secrets.bad.yaml", []want{
			{4, "store.dsn", "environment variable ROSTER_TEST_UNSET is not set"},
			{8, "sources[0].url", "environment variable ROSTER_TEST_UNSET_URL is not set"},
			{10, "sources[0].auth.bearer", "secrets/missing-token does not exist"},
			{12, "sources[0].headers.X-Key", `"${ROSTER TEST}" is not a variable reference`},
			{13, "sources[0].headers.X-Other", `"${" is not closed by "}"`},
		}},
		{"types.bad.yaml", []want{
			{2, "listen", "must be a single value, not a list"},
			{3, "tls", "must be a mapping of keys, not a single value"},
			{5, "tasks.max_retries", `"three" is not a whole number`},
			{6, "tasks.keep", `"1y" is not a valid duration`},
			{8, "tokens", "must be a list, not a mapping"},
			{13, "sources[0].watch", `"sometimes" is not true or false`},
			{14, "sources[0].max_removals", `"150%" is not a percentage between 0% and 100%`},
			{15, "sources[0].password_min_length", "must be at least 1"},
			{16, "sources[1]", "must be a mapping of keys, not a single value"},
			{19, "limits.push_body", "duplicate key (first at line 18)"},
		}},
		{"http.bad.yaml", []want{
			{4, "sources[0].url", `must be an http or https URL, not scheme "ftp"`},
			{5, "sources[0].method", `"DELETE" is not valid; use GET or POST`},
			{7, "sources[0].headers.Bad Header", "is not a valid header name"},
			{9, "sources[0].auth", "set only one of bearer, basic and oauth2"},
			{9, "sources[0].auth", "set either auth or an Authorization header, not both"},
			{11, "sources[0].auth.basic.username", "is required"},
			{12, "sources[0].records", `"data" is not a JSON pointer`},
			{13, "sources[0].next", `"~" must be followed by 0 or 1`},
			{14, "sources[0].map.externalId", "is required"},
			{16, "sources[0].map.mail", "is not a directory field"},
			{17, "sources[0].map.email", "must be a JSON pointer"},
			{18, "sources[0].timeout", "must be greater than zero"},
			{19, "sources[0].retries", "must not be negative"},
			{20, "sources[1].map", "is required"},
			{24, "sources[1].auth.oauth2.token_url", "must name a host"},
			{24, "sources[1].auth.oauth2.client_id", "is required"},
			{24, "sources[1].auth.oauth2.client_secret", "is required"},
		}},
		{"server.bad.yaml", []want{
			{1, "listen", `"localhost" is not a host:port address`},
			{2, "metrics_listen", `port "99999" is not a number from 0 to 65535`},
			{3, "tls.key_file", "is required when tls.cert_file is set"},
			{4, "tls.cert_file", "tls/missing.pem does not exist"},
			{7, "store.dsn", "no-such-folder does not exist"},
			{8, "store.purge_deleted_after", "must be greater than zero"},
			{10, "log.format", `"xml" is not valid; use text or json`},
			{11, "log.dir", "must not be empty"},
			{13, "limits.request_body", "must be greater than zero"},
			{14, "limits.push_body", `unknown unit "gb"`},
			{15, "limits.push_queue", "must be zero (no bound) or more"},
			{16, "limits.query_timeout", "must be greater than zero"},
			{17, "limits.push_wait", "must be greater than zero"},
			{19, "tasks.max_retries", "must not be negative"},
		}},
		{"required.bad.yaml", []want{
			{2, "tokens[0].name", "is required"},
			{2, "tokens[0].hash", "is required"},
			{2, "tokens[0].scopes", "at least one scope is required"},
			{3, "tokens[1].name", "is required"},
			{4, "tokens[1].scopes", "at least one scope is required"},
			{6, "sources[0].name", "is required"},
			{6, "sources[0].path", "is required for a csv source"},
			{7, "sources[1].name", `"bad/name" is not a valid source name`},
			{12, "sources[3].name", `"staff" differs only in letter case from "Staff" (sources[2] at line 9)`},
			{14, "sources[4].type", "is required (csv, push, http, scim or ldap)"},
		}},
		{"ldap.bad.yaml", []want{
			{3, "sources[0].base_dn", "is required for an ldap source"},
			{3, "sources[0].bind_password", "is required with bind_dn"},
			{5, "sources[0].url", "must begin with ldap:// or ldaps://"},
			{9, "sources[1].flavor", `"novell" is not valid; use active_directory or openldap`},
			{12, "sources[2]", `map email: userPassword holds passwords, which roster never reads; map externalId: an LDAP attribute is required`},
			{21, "sources[3].path", "is not a setting of ldap sources (only of csv sources)"},
			{23, "sources[3].start_tls", "is for ldap:// URLs"},
		}},
		{"multidoc.bad.yaml", []want{
			{2, "", "holds one YAML document"},
		}},
		{"root.bad.yaml", []want{
			{1, "", "the configuration must be a mapping of keys, not a list"},
		}},
		{"attributes.bad.yaml", []want{
			{6, "sources[0].extra_columns[1]", `"userName" is not an attribute a source can fill: the source's own fields set it`},
			{6, "sources[0].extra_columns[2]", `an address has no part "planet"`},
			{6, "sources[0].extra_columns[3]", `"Title" fills column 8 already`},
			{9, "sources[1].fields.shoe", `"shoeSize" is not an attribute a source can fill: it is in no schema roster serves`},
			{13, "sources[2].map.manager", "a manager is an id of the directory"},
		}},
		{"custom.bad.yaml", []want{
			{3, "attributes.custom_schema", "is a schema of SCIM itself"},
			{6, "attributes.custom[1].name", `"CostCentreCode" is declared already (attributes.custom[0] at line 5)`},
			{7, "attributes.custom[2].name", `"title" is an attribute of the User or its enterprise extension already`},
			{8, "attributes.custom[3].name", `"2fa" is not an attribute name`},
			{9, "attributes.custom[4].type", `"binary" is not valid; use string, boolean, integer, decimal, dateTime or reference`},
			{10, "attributes.custom[5].type", "is required"},
			{15, "sources[0].extra_columns[0]", `the schema "urn:example:other:2.0:User" is not one roster serves`},
		}},
		{"sinks.bad.yaml", []want{
			{4, "sinks[0].name", "is required"},
			{4, "sinks[0].url", "must be an http or https URL"},
			{6, "sinks[1].url", `must be an http or https URL, not scheme "ftp"`},
			{7, "sinks[1].auth", "set only one of bearer, basic and oauth2"},
			{8, "sinks[1].scope.sources[1]", `"nobody" names no configured source`},
			{8, "sinks[1].scope.filter", "invalid filter at position"},
			{8, "sinks[1].scope.groups", `"some" is not valid; use members, all or none`},
			{9, "sinks[1].map.shoeSize", "it is in no schema roster serves"},
			{9, "sinks[1].map.title", "must name the attribute the service gives it"},
			{10, "sinks[1].on_remove", `"archive" is not valid; use deactivate or delete`},
			{11, "sinks[1].interval", "must be greater than zero"},
			{12, "sinks[1].limits.rate", "the unit after \"/\" is s, m or h"},
			{12, "sinks[1].limits.concurrency", "must be at least 1"},
			{13, "sinks[2].name", `sink name "CRM" is already used by sinks[1] at line 5`},
			{15, "sinks[2].compare_every", "1s is shorter than interval 1m"},
			{16, "sinks[2].colour", "unknown key"},
		}},
		{"customurn.bad.yaml", []want{
			{3, "attributes.custom_schema", `does not start with "urn:"`},
		}},
	}
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("%d bad files in testdata, %d in the table", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			unsetEnv(t, "ROSTER_TEST_UNSET")
			unsetEnv(t, "ROSTER_TEST_UNSET_URL")
			path := filepath.Join("testdata", tt.file)
			c, err := Load(path)
			if c != nil {
				t.Error("Load returned a config with an error")
			}
			checkProblems(t, err, path, tt.want)
		})
	}
}

func checkProblems(t *testing.T, err error, file string, wants []want) {
	t.Helper()
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v is not a *config.Error", err)
	}
	for i := 0; i < max(len(cerr.Problems), len(wants)); i++ {
		switch {
		case i >= len(wants):
			t.Errorf("unexpected problem %s", cerr.Problems[i])
		case i >= len(cerr.Problems):
			t.Errorf("missing problem at line %d, %s: %s", wants[i].line, wants[i].key, wants[i].msg)
		default:
			p, w := cerr.Problems[i], wants[i]
			if p.Line != w.line || p.Key != w.key || !strings.Contains(p.Message, w.msg) || p.File != file {
				t.Errorf("problem %d is\n\t%s\nwant\n\t%s:%d: %s: …%s…", i, p, file, w.line, w.key, w.msg)
			}
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(cerr.Problems) {
		t.Errorf("Error() has %d lines for %d problems", got, len(cerr.Problems))
	}
}

// TestParse covers single rules with inline configurations.
func TestParse(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		yaml string
		want []want
	}{
		{"null keeps defaults", "listen: ~\ntls:\nlog: {level: }\n", nil},
		{"quoted numbers and booleans", "tasks: {max_retries: \"5\"}\nsources:\n  - {name: a, type: push, enabled: \"no\"}\n", nil},
		{"extension keys", "x-anything: {a: 1}\n", nil},
		{"extension keys only at the top", "log:\n  x-level: debug\n", []want{{2, "log.x-level", "unknown key"}}},
		{"merge list", "x-a: &a {orphans: delete}\nx-b: &b {orphans: ignore, schedule: '@daily'}\nsources:\n  - <<: [*a, *b]\n    name: s\n    type: http\n    url: https://h\n    map: {externalId: /i, userName: /u}\n", nil},
		{"merge of a scalar", "x-a: &a 5\nsources:\n  - <<: *a\n    name: s\n    type: push\n", []want{{1, "sources[0]", "<< merges a mapping or a list of mappings"}}},
		{"merged key of the wrong type", "x-a: &a {url: https://h}\nsources:\n  - <<: *a\n    name: s\n    type: csv\n    path: x.csv\n", []want{{1, "sources[0].url", "is not a setting of csv sources"}}},
		{"metrics on the main address", "listen: 127.0.0.1:80\nmetrics_listen: 127.0.0.1:80\n", []want{{2, "metrics_listen", "is the same address as listen"}}},
		{"cron with seconds", "sources:\n  - {name: s, type: csv, path: s.csv, schedule: '0 */5 * * * *'}\n", []want{{2, "sources[0].schedule", "is not a valid cron expression"}}},
		{"cron time zone without schedule", "sources:\n  - {name: s, type: csv, path: s.csv, schedule: 'TZ=UTC'}\n", []want{{2, "sources[0].schedule", "a time zone must be followed by a schedule"}}},
		{"cron time zone", "sources:\n  - {name: s, type: csv, path: s.csv, schedule: 'CRON_TZ=UTC 0 3 * * *'}\n", nil},
		{"cron descriptor", "sources:\n  - {name: s, type: csv, path: s.csv, schedule: '@every 90s'}\n", nil},
		{"postgres key=value dsn", "store: {driver: postgres, dsn: 'host=db dbname=roster'}\n", nil},
		{"bad postgres dsn", "store: {driver: postgres, dsn: 'db.example.com'}\n", []want{{1, "store.dsn", "is not a PostgreSQL connection string"}}},
		{"sqlite memory", "store: {dsn: ':memory:'}\n", nil},
		{"empty listen", "listen: ''\n", []want{{1, "listen", "is required"}}},
		{"empty variable is a value", "listen: ${ROSTER_TEST_EMPTY}\n", []want{{1, "listen", "is required"}}},
		{"invalid name characters", "sources:\n  - {name: .hidden, type: push}\n  - {name: " + strings.Repeat("a", 65) + ", type: push}\n", []want{
			{2, "sources[0].name", "is not a valid source name"},
			{3, "sources[1].name", "is not a valid source name"},
		}},
		{"scope of a disabled push source", "tokens:\n  - {name: t, hash: 'sha256:" + strings.Repeat("ab", 32) + "', scopes: [push:p]}\nsources:\n  - {name: p, type: push, enabled: false}\n", nil},
		{"key that is not a name", "? [a, b]\n: 1\n", []want{{1, "", "keys must be names, not a list"}}},
		{"package doc example", "x-nightly: &nightly {schedule: \"0 2 * * *\", orphans: delete}\nsources:\n  - {<<: *nightly, name: staff, type: csv, path: staff.csv}\n", nil},
		{"alias of a value", "x-port: &listen 127.0.0.1:9000\nlisten: *listen\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("ROSTER_TEST_EMPTY", "")
			path := filepath.Join(dir, "roster.yaml")
			c, err := Parse([]byte(tt.yaml), path)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if c == nil {
					t.Fatal("Parse returned no config")
				}
				return
			}
			checkProblems(t, err, path, tt.want)
		})
	}
}

func TestParseNullKeepsDefaults(t *testing.T) {
	c, err := Parse([]byte("listen: ~\nlog: {level: }\nsources:\n  - {name: a, type: push, on_delete: }\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Listen", c.Listen, "127.0.0.1:8080")
	equal(t, "Log.Level", c.Log.Level, "info")
	equal(t, "OnDelete", c.Sources[0].OnDelete, OnDeleteDeactivate)
	wd, _ := os.Getwd()
	equal(t, "Dir", c.Dir, wd)
	equal(t, "Path", c.Path, "")
}

// TestSecretsStayOut checks that problems with secret-bearing keys do not
// repeat their values.
func TestSecretsStayOut(t *testing.T) {
	const secret = "hunter2-very-secret"
	yaml := `store:
  driver: postgres
  dsn: "` + secret + `"
tokens:
  - name: t
    hash: "sha256:` + secret + `"
    scopes: [admin]
sources:
  - name: hr
    type: http
    url: "ftp://user:` + secret + `@host/"
    headers: {X-Key: "` + secret + "\\n" + `"}
    map: {externalId: /id, userName: /login}
`
	_, err := Parse([]byte(yaml), "roster.yaml")
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 4 {
		t.Fatalf("want 4 problems, got %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error repeats a secret:\n%s", err)
	}
}

// TestAliasBomb feeds merge keys that expand to 10^9 entries.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-0: &a0 {orphans: delete}\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "x-%d: &a%d {<<: [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("sources: [{<<: *a9, name: s, type: csv, path: s.csv}]\n")
	start := time.Now()
	_, err := Parse([]byte(b.String()), "roster.yaml")
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("want a too-large problem, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse took %v", d)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "roster.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want fs.ErrNotExist", err)
	}
	var cerr *Error
	if errors.As(err, &cerr) {
		t.Error("an I/O error is a *config.Error")
	}
}

func TestDefault(t *testing.T) {
	dir := t.TempDir()
	c := Default(dir)
	equal(t, "Path", c.Path, "")
	equal(t, "Dir", c.Dir, dir)
	equal(t, "Listen", c.Listen, "127.0.0.1:8080")
	equal(t, "Store", c.Store, Store{Driver: DriverSQLite, DSN: filepath.Join(dir, "roster.db"), PurgeDeletedAfter: Duration(30 * 24 * time.Hour)})
	equal(t, "Log.Dir", c.Log.Dir, filepath.Join(dir, "log"))
	equal(t, "Log.SlogLevel", c.Log.SlogLevel().String(), "INFO")
	equal(t, "Limits", c.Limits, Limits{RequestBody: 10 * MiB, PushBody: 64 * MiB, PushQueue: 50000, StreamFrom: 4 * MiB,
		QueryTimeout: Duration(10 * time.Second), PushWait: Duration(30 * time.Second)})
	equal(t, "Tasks", c.Tasks, Tasks{MaxRetries: 3, Keep: Duration(90 * 24 * time.Hour)})
	equal(t, "len(Sources)", len(c.Sources), 1)
	api, ok := c.Source("api")
	if !ok {
		t.Fatal("no api source")
	}
	equal(t, "api.Type", api.Type, TypePush)
	equal(t, "api.Enabled", api.Enabled, true)
	if _, ok := c.Source("nope"); ok {
		t.Error("Source found a source that does not exist")
	}

	// The default must be what an empty file in dir with one push source
	// gives.
	path := filepath.Join(dir, "roster.yaml")
	parsed, err := Parse([]byte("sources: [{name: api, type: push}]\n"), path)
	if err != nil {
		t.Fatal(err)
	}
	parsed.Path = ""
	equal(t, "Default", c, parsed)
}

func TestSQLiteDSN(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"roster.db", "/etc/roster/roster.db"},
		{"data/roster.db?_pragma=busy_timeout(5000)", "/etc/roster/data/roster.db?_pragma=busy_timeout(5000)"},
		{"/var/lib/roster/roster.db", "/var/lib/roster/roster.db"},
		{":memory:", ":memory:"},
		{"file:roster.db?mode=memory", "file:roster.db?mode=memory"},
	}
	for _, tt := range tests {
		equal(t, tt.dsn, resolveSQLite("/etc/roster", tt.dsn), tt.want)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "roster.yaml", Line: 12, Key: "sources[0].schedule", Message: "bad"}, "roster.yaml:12: sources[0].schedule: bad"},
		{Problem{File: "roster.yaml", Key: "listen", Message: "bad"}, "roster.yaml: listen: bad"},
		{Problem{Line: 3, Message: "bad"}, "line 3: bad"},
		{Problem{Key: "listen", Message: "bad"}, "listen: bad"},
	}
	for _, tt := range tests {
		equal(t, "String", tt.p.String(), tt.want)
	}
	err := &Error{Problems: []Problem{tests[0].p, tests[1].p}}
	equal(t, "Error", err.Error(), tests[0].want+"\n"+tests[1].want)
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]string{"debug": "DEBUG", "info": "INFO", "warn": "WARN", "error": "ERROR", "": "INFO"} {
		equal(t, level, Log{Level: level}.SlogLevel().String(), want)
	}
}
