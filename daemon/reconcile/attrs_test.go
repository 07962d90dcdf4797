package reconcile_test

import (
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources"
)

// TestRecordAttributeValues: consecutive attributes of a path that names
// all the values of a multi-valued attribute add up; for any other path,
// and for a multi-valued path named again after another, the last counts.
func TestRecordAttributeValues(t *testing.T) {
	for _, c := range []struct {
		name  string
		attrs []sources.Attribute
		want  string
	}{
		{"consecutive values add up", []sources.Attribute{{Path: "roles", Value: "lead"}, {Path: "roles", Value: "on-call"}},
			`{"roles":[{"value":"lead"},{"value":"on-call"}]}`},
		{"an empty value among them is skipped", []sources.Attribute{{Path: "roles", Value: "lead"}, {Path: "roles"}, {Path: "roles", Value: "x"}},
			`{"roles":[{"value":"lead"},{"value":"x"}]}`},
		{"a single-valued path takes the last", []sources.Attribute{{Path: "title", Value: "a"}, {Path: "title", Value: "b"}},
			`{"title":"b"}`},
		{"a path named again starts over", []sources.Attribute{{Path: "roles", Value: "a"}, {Path: "title", Value: "t"}, {Path: "roles", Value: "b"}},
			`{"title":"t","roles":[{"value":"b"}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := rec(1, "1", "ada")
			r.Attributes = c.attrs
			p := reconcile.PlanSnapshot([]sources.Record{r}, &reconcile.Snapshot{}, settings(), seq())
			if len(p.Changes) != 1 {
				t.Fatalf("changes %+v, want one create", p.Changes)
			}
			if got := p.Changes[0].After.Attrs; got != c.want {
				t.Errorf("attrs %s, want %s", got, c.want)
			}
		})
	}
}
