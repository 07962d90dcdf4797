package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// result is what one run of the binary printed and how it ended.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("roster %s: exit %d\n--- stdout:\n%s--- stderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cleanEnv is the test's environment without what would change which
// config the binary reads, in a time zone far from UTC (with a DST rule)
// so that times written in local time show.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROSTER_CONFIG=") && !strings.HasPrefix(kv, "ROSTER_LISTEN=") && !strings.HasPrefix(kv, "TZ=") {
			env = append(env, kv)
		}
	}
	return append(env, "TZ=Pacific/Chatham")
}

// runRoster runs the binary in dir with stdin and extra environment
// variables and returns its output and exit code.
func runRoster(t testing.TB, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rosterBin, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ctx.Err() != nil {
			t.Fatalf("roster %s: %v\n%s", strings.Join(args, " "), err, r)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// workdir is a folder with its own roster.yaml, CSV files and log folder,
// and the store of one driver.
type workdir struct {
	dir    string
	driver string
	dsn    string
	env    []string // extra environment of every run
}

// newWorkdir makes a work folder on a fresh database of driver; on
// PostgreSQL it skips loudly when no server answers (fails under CI=true).
func newWorkdir(t testing.TB, driver string) *workdir {
	t.Helper()
	dsn := storetest.DSN(t, driver)
	return &workdir{dir: t.TempDir(), driver: driver, dsn: dsn}
}

func (w *workdir) path(name string) string { return filepath.Join(w.dir, name) }

func (w *workdir) write(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(w.path(name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (w *workdir) read(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(w.path(name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// run runs roster in the work folder.
func (w *workdir) run(t testing.TB, args ...string) result {
	t.Helper()
	return runRoster(t, w.dir, "", w.env, args...)
}

// want runs roster and fails unless it exits with code.
func (w *workdir) want(t testing.TB, code int, args ...string) result {
	t.Helper()
	r := w.run(t, args...)
	if r.code != code {
		t.Fatalf("want exit code %d, got:\n%s", code, r)
	}
	return r
}

// task runs a command that prints one task with --json, checks the exit
// code and decodes the task.
func (w *workdir) task(t testing.TB, code int, args ...string) taskJSON {
	t.Helper()
	r := w.want(t, code, args...)
	return decodeTask(t, r.stdout)
}

// tasks lists every task (newest first).
func (w *workdir) tasks(t testing.TB, args ...string) []taskJSON {
	t.Helper()
	r := w.want(t, 0, append([]string{"tasks", "--json", "--limit", "1000"}, args...)...)
	return decodeTasks(t, r.stdout)
}

// decodeTasks decodes the output of tasks --json.
func decodeTasks(t testing.TB, s string) []taskJSON {
	t.Helper()
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		t.Fatalf("tasks --json is not a JSON array: %v\n%s", err, s)
	}
	out := make([]taskJSON, len(raw))
	for i, m := range raw {
		out[i] = decodeTask(t, string(m))
	}
	return out
}

// settings are the knobs of roster.yaml that the tests turn.
type settings struct {
	Orphans     string
	Restore     *bool
	MaxRemovals string
	AllowEmpty  bool
	LogLevel    string
	LogFormat   string
	TasksKeep   string
	// PurgeDeletedAfter is store.purge_deleted_after.
	PurgeDeletedAfter string
	OnConflict        string
	ActivateNew       *bool
	PasswordMinLength int
}

// writeConfig writes roster.yaml: csv sources staff (staff.csv) and hr
// (hr.csv, orphans: delete), the log folder "log" and the work folder's
// store.
func (w *workdir) writeConfig(t testing.TB, s settings) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# written by the end-to-end tests\nlog:\n  dir: log\n")
	if s.LogLevel != "" {
		fmt.Fprintf(&b, "  level: %s\n", s.LogLevel)
	}
	if s.LogFormat != "" {
		fmt.Fprintf(&b, "  format: %s\n", s.LogFormat)
	}
	fmt.Fprintf(&b, "store:\n  driver: %s\n  dsn: %s\n", w.driver, yamlQuote(w.dsn))
	if s.PurgeDeletedAfter != "" {
		fmt.Fprintf(&b, "  purge_deleted_after: %s\n", s.PurgeDeletedAfter)
	}
	if s.TasksKeep != "" {
		fmt.Fprintf(&b, "tasks:\n  keep: %s\n", s.TasksKeep)
	}
	if streamEverything() {
		b.WriteString("limits:\n  stream_from: 0\n")
	}
	b.WriteString("sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n    watch: false\n")
	if s.Orphans != "" {
		fmt.Fprintf(&b, "    orphans: %s\n", s.Orphans)
	}
	if s.Restore != nil {
		fmt.Fprintf(&b, "    restore: %t\n", *s.Restore)
	}
	if s.MaxRemovals != "" {
		fmt.Fprintf(&b, "    max_removals: %s\n", yamlQuote(s.MaxRemovals))
	}
	if s.AllowEmpty {
		b.WriteString("    allow_empty: true\n")
	}
	if s.OnConflict != "" {
		fmt.Fprintf(&b, "    on_conflict: %s\n", s.OnConflict)
	}
	if s.ActivateNew != nil {
		fmt.Fprintf(&b, "    activate_new: %t\n", *s.ActivateNew)
	}
	if s.PasswordMinLength != 0 {
		fmt.Fprintf(&b, "    password_min_length: %d\n", s.PasswordMinLength)
	}
	b.WriteString("  - name: hr\n    type: csv\n    path: hr.csv\n    watch: false\n    orphans: delete\n")
	w.write(t, "roster.yaml", b.String())
}

// streamEverything makes every csv sync of the end-to-end tests stream
// (ROSTER_TEST_STREAM=1), so that the whole suite runs on both of the
// engine's ways through a snapshot; `make test` runs it once each way.
func streamEverything() bool { return os.Getenv("ROSTER_TEST_STREAM") != "" }

func yamlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func ptr[T any](v T) *T { return &v }

// deref shows a JSON string that may be null.
func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// person is one row of a staff file.
type person struct {
	ID, First, Last, Login, Email, Groups, Password string
}

func (p person) row() string {
	cells := []string{p.ID, p.First, p.Last, p.Login, p.Email, p.Groups, p.Password}
	for i, c := range cells {
		if strings.ContainsAny(c, ",\"\r\n") {
			cells[i] = `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
		}
	}
	return strings.Join(cells, ",")
}

func csvOf(ps []person) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.row())
		b.WriteByte('\n')
	}
	return b.String()
}

// without returns ps without the people whose ids are given.
func without(ps []person, ids ...string) []person {
	return slices.DeleteFunc(slices.Clone(ps), func(p person) bool { return slices.Contains(ids, p.ID) })
}

// --- tasks as JSON (SPEC §8.1) ---

type countsJSON struct {
	Created     int `json:"created"`
	Updated     int `json:"updated"`
	Unchanged   int `json:"unchanged"`
	Deactivated int `json:"deactivated"`
	Deleted     int `json:"deleted"`
	Restored    int `json:"restored"`
	NotRestored int `json:"not_restored"`
	Skipped     int `json:"skipped"`
	Adopted     int `json:"adopted"`
}

type fieldErrorJSON struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

type userJSON struct {
	ID         string   `json:"id"`
	ExternalID string   `json:"externalId"`
	UserName   string   `json:"userName"`
	Email      string   `json:"email"`
	Active     bool     `json:"active"`
	State      string   `json:"state"`
	Groups     []string `json:"groups"`
}

type changeJSON struct {
	Action string    `json:"action"`
	Line   int       `json:"line"`
	Before *userJSON `json:"before"`
	After  userJSON  `json:"after"`
	Fields []string  `json:"fields"`
	Reason string    `json:"reason"`
}

type taskJSON struct {
	ID         int64            `json:"id"`
	Source     string           `json:"source"`
	Trigger    string           `json:"trigger"`
	Status     string           `json:"status"`
	CreatedAt  time.Time        `json:"created_at"`
	StartedAt  *time.Time       `json:"started_at"`
	FinishedAt *time.Time       `json:"finished_at"`
	Counts     countsJSON       `json:"counts"`
	Warnings   []string         `json:"warnings"`
	Errors     []fieldErrorJSON `json:"errors"`
	RetryOf    *int64           `json:"retry_of"`
	RawRecord  *string          `json:"raw_record"`
	Hold       string           `json:"hold"`
	Removals   []changeJSON     `json:"removals"`
}

var (
	taskKeys   = []string{"id", "source", "trigger", "status", "created_at", "started_at", "finished_at", "counts", "warnings", "errors", "retry_of", "raw_record"}
	countsKeys = []string{"created", "updated", "unchanged", "deactivated", "deleted", "restored", "not_restored", "skipped", "adopted"}
	// errorPrefix is how every validation message starts (SPEC §3.1).
	errorPrefix = regexp.MustCompile(`^line (\d+)(?:, column (\d+))?(?: \(([a-z_]+)\))?: \S`)
	// pushErrorPrefix is how a push's errors start (SPEC §3.3).
	pushErrorPrefix = regexp.MustCompile(`^records\[\d+\] \(([A-Za-z_]+)\): \S`)
)

// decodeTask decodes one task and checks that it has the shape of
// SPEC §8.1: every key present, lists as lists, and errors whose line,
// column and field agree with their message.
func decodeTask(t testing.TB, s string) taskJSON {
	t.Helper()
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &keys); err != nil {
		t.Fatalf("not a JSON task object: %v\n%s", err, s)
	}
	for _, k := range taskKeys {
		if _, ok := keys[k]; !ok {
			t.Errorf("task JSON lacks %q:\n%s", k, s)
		}
	}
	var counts map[string]json.RawMessage
	if err := json.Unmarshal(keys["counts"], &counts); err != nil {
		t.Errorf("counts is not an object: %v\n%s", err, s)
	}
	for _, k := range countsKeys {
		if _, ok := counts[k]; !ok {
			t.Errorf("task JSON counts lack %q:\n%s", k, s)
		}
	}
	for _, k := range []string{"warnings", "errors"} {
		if v := strings.TrimSpace(string(keys[k])); !strings.HasPrefix(v, "[") {
			t.Errorf("task JSON %s is %s, want a list:\n%s", k, v, s)
		}
	}
	var v taskJSON
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("task JSON: %v\n%s", err, s)
	}
	if v.ID <= 0 || v.Source == "" || v.Trigger == "" || v.Status == "" || v.CreatedAt.IsZero() {
		t.Errorf("task JSON lacks an id, source, trigger, status or created_at:\n%s", s)
	}
	if d := time.Since(v.CreatedAt); d < -time.Minute || d > 30*time.Minute {
		t.Errorf("task %d was created at %s, %s from now", v.ID, v.CreatedAt, d)
	}
	if !strings.HasSuffix(string(keys["created_at"]), `Z"`) {
		t.Errorf("created_at %s is not in UTC", string(keys["created_at"]))
	}
	switch v.Status {
	case store.StatusSucceeded, store.StatusFailed, store.StatusSkipped, store.StatusHeld, store.StatusRejected:
		if v.StartedAt == nil || v.FinishedAt == nil || v.FinishedAt.Before(*v.StartedAt) {
			t.Errorf("finished task %d (%s) has started_at %v and finished_at %v", v.ID, v.Status, v.StartedAt, v.FinishedAt)
		}
	}
	for _, e := range v.Errors {
		checkFieldError(t, e)
	}
	return v
}

// checkFieldError checks that an error's line, column and field are the
// ones its message names (messages without a position have none); a
// push's error names its record and field (records[3] (username): ...).
func checkFieldError(t testing.TB, e fieldErrorJSON) {
	t.Helper()
	if m := pushErrorPrefix.FindStringSubmatch(e.Message); m != nil {
		if e.Line != 0 || e.Column != 0 || e.Field != m[1] {
			t.Errorf("push error %+v: its field disagrees with the message", e)
		}
		return
	}
	m := errorPrefix.FindStringSubmatch(e.Message)
	if m == nil {
		if e.Line != 0 || e.Column != 0 || e.Field != "" {
			t.Errorf("error %+v has a position its message does not name", e)
		}
		return
	}
	col := 0
	if m[2] != "" {
		col, _ = strconv.Atoi(m[2])
	}
	if strconv.Itoa(e.Line) != m[1] || e.Column != col || e.Field != m[3] {
		t.Errorf("error %+v: line, column and field disagree with the message", e)
	}
}

// wantTask checks a task's status, counts and source.
func wantTask(t testing.TB, got taskJSON, source, status string, counts countsJSON) {
	t.Helper()
	if got.Source != source || got.Status != status || got.Counts != counts {
		t.Fatalf("task %d: got source %s, status %s, counts %+v; want %s, %s, %+v (errors %v, warnings %v)",
			got.ID, got.Source, got.Status, got.Counts, source, status, counts, got.Errors, got.Warnings)
	}
}

// --- the directory, read from the store ---

// dirState is everything a sync of a source may change.
type dirState struct {
	Revision        int64
	LastFingerprint string
	Users           map[string]reconcile.User // by externalId
	Hashes          map[string]string         // password hash by externalId
	Groups          []string                  // display names, sorted
}

func (w *workdir) open(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), w.driver, w.dsn)
	if err != nil {
		t.Fatalf("open the %s store: %v", w.driver, err)
	}
	return s
}

// state reads the source's part of the directory.
func (w *workdir) state(t testing.TB, source string) dirState {
	t.Helper()
	ctx := context.Background()
	s := w.open(t)
	defer s.Close()
	snap, err := s.Snapshot(ctx, source)
	if err != nil {
		t.Fatalf("snapshot of %s: %v", source, err)
	}
	src, err := s.GetSource(ctx, source)
	if err != nil {
		t.Fatal(err)
	}
	st := dirState{Revision: snap.Revision, LastFingerprint: src.LastFingerprint,
		Users: map[string]reconcile.User{}, Hashes: map[string]string{}}
	for _, u := range snap.Users {
		if _, dup := st.Users[u.ExternalID]; dup {
			t.Fatalf("source %s has two users with externalId %q", source, u.ExternalID)
		}
		st.Users[u.ExternalID] = u
	}
	for _, g := range snap.Groups {
		st.Groups = append(st.Groups, g.DisplayName)
	}
	slices.Sort(st.Groups)
	rows, err := s.DB().Raw(`SELECT external_id, password_hash FROM users WHERE source = ? AND password_hash <> ''`, source).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var ext, h string
		if err := rows.Scan(&ext, &h); err != nil {
			t.Fatal(err)
		}
		st.Hashes[ext] = h
	}
	return st
}

// sameState fails the test when the directory differs from want.
func sameState(t testing.TB, what string, want, got dirState) {
	t.Helper()
	if reflect.DeepEqual(want, got) {
		return
	}
	var diffs []string
	if want.Revision != got.Revision {
		diffs = append(diffs, fmt.Sprintf("revision %d → %d", want.Revision, got.Revision))
	}
	if want.LastFingerprint != got.LastFingerprint {
		diffs = append(diffs, "last fingerprint changed")
	}
	if !slices.Equal(want.Groups, got.Groups) {
		diffs = append(diffs, fmt.Sprintf("groups %v → %v", want.Groups, got.Groups))
	}
	for ext, u := range want.Users {
		g, ok := got.Users[ext]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("user %s vanished", ext))
		case !reflect.DeepEqual(u, g):
			diffs = append(diffs, fmt.Sprintf("user %s: %+v → %+v", ext, u, g))
		}
	}
	for ext, u := range got.Users {
		if _, ok := want.Users[ext]; !ok {
			diffs = append(diffs, fmt.Sprintf("user %s appeared: %+v", ext, u))
		}
	}
	if !reflect.DeepEqual(want.Hashes, got.Hashes) {
		diffs = append(diffs, "password hashes changed")
	}
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("... and %d more differences", len(diffs)-10))
	}
	t.Fatalf("%s: the directory changed:\n  %s", what, strings.Join(diffs, "\n  "))
}

// rawFiles lists the raw record files of a source.
func (w *workdir) rawFiles(t testing.TB, source string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(w.dir, "log", "user-data-sync", source, "*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}
