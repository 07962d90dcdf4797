package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := map[string]string{"USER": "roster", "EMPTY": "", "NESTED": "${USER}", "_X1": "x"}
	files := map[string]string{"/etc/roster/secrets/pg": "s3cret", "/run/token": "tok"}
	x := expander{
		dir: "/etc/roster",
		lookup: func(name string) (string, bool) {
			v, ok := env[name]
			return v, ok
		},
		readFile: func(path string) (string, error) {
			if v, ok := files[path]; ok {
				return v, nil
			}
			return "", errors.New("secret file " + path + " does not exist")
		},
	}
	tests := []struct {
		in   string
		want string
		errs []string
	}{
		{in: "plain", want: "plain"},
		{in: "${USER}", want: "roster"},
		{in: "a-${USER}-b", want: "a-roster-b"},
		{in: "${USER}${USER}", want: "rosterroster"},
		{in: "${EMPTY}", want: ""},
		{in: "${_X1}", want: "x"},
		{in: "${NESTED}", want: "${USER}"},
		{in: "postgres://u:${file:secrets/pg}@db/roster", want: "postgres://u:s3cret@db/roster"},
		{in: "${file:/run/token}", want: "tok"},
		{in: "$${USER}", want: "${USER}"},
		{in: "$$${USER}", want: "$${USER}"},
		{in: "pa$$word", want: "pa$$word"},
		{in: "$USER and $ and ${USER}$", want: "$USER and $ and roster$"},
		{in: "{USER}", want: "{USER}"},
		{in: "${MISSING}", errs: []string{"environment variable MISSING is not set"}},
		{in: "${MISSING}-${ALSO}", errs: []string{"MISSING is not set", "ALSO is not set"}},
		{in: "${file:nope}", errs: []string{"/etc/roster/nope does not exist"}},
		{in: "${file:}", errs: []string{"needs a path"}},
		{in: "${}", errs: []string{`"${}" is not a variable reference`}},
		{in: "${1ABC}", errs: []string{"is not a variable reference"}},
		{in: "${USER:-default}", errs: []string{"is not a variable reference"}},
		{in: "${USER", errs: []string{"is not closed"}},
		{in: "${USER} ${", errs: []string{"is not closed"}},
	}
	for _, tt := range tests {
		got, errs := x.expand(tt.in)
		if len(errs) != len(tt.errs) {
			t.Errorf("expand(%q) errors = %v, want %q", tt.in, errs, tt.errs)
			continue
		}
		for i, err := range errs {
			if !strings.Contains(err.Error(), tt.errs[i]) {
				t.Errorf("expand(%q) error %d = %v, want %q", tt.in, i, err, tt.errs[i])
			}
		}
		if len(errs) == 0 && got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		path string
		want string
		err  string
	}{
		{path: write("lf", "secret\n"), want: "secret"},
		{path: write("crlf", "secret\r\n"), want: "secret"},
		{path: write("none", "secret"), want: "secret"},
		{path: write("inner", "line 1\nline 2\n\n"), want: "line 1\nline 2"},
		{path: write("spaces", " secret \n"), want: " secret "},
		{path: write("big", strings.Repeat("x", maxSecretSize+1)), err: "larger than 64KiB"},
		{path: write("max", strings.Repeat("x", maxSecretSize)), want: strings.Repeat("x", maxSecretSize)},
		{path: filepath.Join(dir, "missing"), err: "does not exist"},
		{path: dir, err: "is not a regular file"},
	}
	for _, tt := range tests {
		got, err := readSecret(tt.path)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("readSecret(%s) = %v, want error %q", filepath.Base(tt.path), err, tt.err)
			}
		case err != nil || got != tt.want:
			t.Errorf("readSecret(%s) = %.20q, %v; want %.20q", filepath.Base(tt.path), got, err, tt.want)
		}
	}
}

// TestExpandKeepsLines checks that expansion happens on the node tree: a
// secret with line breaks does not move the lines of later problems.
func TestExpandKeepsLines(t *testing.T) {
	t.Setenv("ROSTER_TEST_MULTILINE", "a\nb\nc\nd")
	_, err := Parse([]byte("sources:\n  - name: hr\n    type: http\n    url: https://h\n    auth: {bearer: \"${ROSTER_TEST_MULTILINE}\"}\n    map: {externalId: /id}\n"), "roster.yaml")
	checkProblems(t, err, "roster.yaml", []want{{6, "sources[0].map.userName", "is required"}})
}

// TestExpandValuesNotKeys checks that keys are never expanded, and that an
// expanded value is typed by its key.
func TestExpandValuesNotKeys(t *testing.T) {
	t.Setenv("ROSTER_TEST_RETRIES", "4")
	t.Setenv("ROSTER_TEST_BOOL", "false")
	c, err := Parse([]byte("tasks: {max_retries: \"${ROSTER_TEST_RETRIES}\"}\nsources:\n  - {name: a, type: push, enabled: '${ROSTER_TEST_BOOL}'}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "MaxRetries", c.Tasks.MaxRetries, 4)
	equal(t, "Enabled", c.Sources[0].Enabled, false)

	_, err = Parse([]byte("${ROSTER_TEST_BOOL}: 1\n"), "roster.yaml")
	checkProblems(t, err, "roster.yaml", []want{{1, "${ROSTER_TEST_BOOL}", "unknown key"}})
}
