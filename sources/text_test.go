package sources_test

import (
	"strings"
	"testing"

	"github.com/rosterd/roster/sources"
)

func TestLoginProblem(t *testing.T) {
	for login, want := range map[string]string{
		"jdoe":                   "",
		"Jürgen.Kühn":            "",
		"ju\u0308rgen":           "", // a combining diaeresis: canonically equal to "jürgen", kept
		"jane.doe@example.com":   "",
		"李小龙":                    "",
		"\uff4adoe":              `write it as "jdoe"`,
		"admin\u202egpj.exe":     "U+202E",
		"j\u200ddoe":             "U+200D",
		"\u2168":                 `write it as "IX"`,
		"ﬁnance":                 `write it as "finance"`,
		"o\u0301scar\u2066smith": "U+2066",
	} {
		got := sources.LoginProblem(login)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("LoginProblem(%q) = %q, want %q", login, got, want)
		}
	}
}

// TestNormalizeLogin: the decomposed and composed forms of one login are
// one login, in the key every store compares too.
func TestNormalizeLogin(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"jdoe", "jdoe"},
		{"jose\u0301", "jos\u00e9"},
		{"jos\u00e9", "jos\u00e9"},
		{"Ju\u0308rgen", "J\u00fcrgen"},
		{"\uff4adoe", "\uff4adoe"}, // a compatibility character is LoginProblem's to refuse, not NFC's to fold
	} {
		if got := sources.NormalizeLogin(tt.in); got != tt.want {
			t.Errorf("NormalizeLogin(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPlural(t *testing.T) {
	for _, tt := range []struct {
		n    int
		noun string
		want string
	}{
		{0, "error", "0 errors"},
		{1, "error", "1 error"},
		{2, "error", "2 errors"},
		{1, "more error", "1 more error"},
		{12, "run", "12 runs"},
	} {
		if got := sources.Plural(tt.n, tt.noun); got != tt.want {
			t.Errorf("Plural(%d, %q) = %q, want %q", tt.n, tt.noun, got, tt.want)
		}
	}
}

// TestValidationErrorMessage: the first error and how many more, in the
// singular for one.
func TestValidationErrorMessage(t *testing.T) {
	e := func(msgs ...string) *sources.ValidationError {
		v := &sources.ValidationError{}
		for _, m := range msgs {
			v.Errors = append(v.Errors, sources.FieldError{Message: m})
		}
		return v
	}
	for _, tt := range []struct {
		err  *sources.ValidationError
		want string
	}{
		{e(), "invalid input"},
		{e("a"), "a"},
		{e("a", "b"), "a (and 1 more error)"},
		{e("a", "b", "c"), "a (and 2 more errors)"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%d errors: %q, want %q", len(tt.err.Errors), got, tt.want)
		}
	}
}
