package pushapi

import (
	"testing"

	"github.com/rosterd/roster/sources/push"
)

// TestFirstError: the answer's message is the first error and how many
// more, in the singular for one.
func TestFirstError(t *testing.T) {
	failed := func(msgs ...string) summary {
		var s summary
		for _, m := range msgs {
			s.Failed = append(s.Failed, push.RecordError{Message: m})
		}
		return s
	}
	for _, tt := range []struct {
		s    summary
		want string
	}{
		{failed(), "no error was recorded"},
		{failed("a"), "a"},
		{failed("a", "b"), "a (and 1 more error)"},
		{failed("a", "b", "c"), "a (and 2 more errors)"},
	} {
		if got := firstError(tt.s); got != tt.want {
			t.Errorf("%d errors: %q, want %q", len(tt.s.Failed), got, tt.want)
		}
	}
}
