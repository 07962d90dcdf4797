package scim

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
)

func orTerms(n int, term string) string {
	terms := make([]string, n)
	for i := range terms {
		terms[i] = fmt.Sprintf(term, i)
	}
	return strings.Join(terms, " or ")
}

// TestFilterBudget: the budget admits filters at its limits and refuses
// one term or one unit of cost more, naming the limit (issue 16,
// defect 1).
func TestFilterBudget(t *testing.T) {
	for _, tc := range []struct {
		rt     schema.ResourceType
		filter string
		err    string // "" when admitted
	}{
		{schema.Users, orTerms(MaxFilterTerms, `userName eq "u%d"`), ""},
		{schema.Users, orTerms(MaxFilterTerms+1, `userName eq "u%d"`), "it has 101 comparisons; the limit is 100"},
		{schema.Users, orTerms(MaxFilterCost/2, `displayName co "u%d"`), ""},
		{schema.Users, orTerms(MaxFilterCost/2, `displayName sw "u%d"`), ""},
		{schema.Users, orTerms(MaxFilterCost/8, `groups.display co "%d"`), ""},
		{schema.Users, orTerms(MaxFilterCost/8+1, `groups.display co "%d"`), "it costs 208; the limit is 200"},
		{schema.Users, "not (" + orTerms(MaxFilterCost/4+1, `groups.value eq "%d"`) + ")", "it costs 204; the limit is 200"},
		{schema.Users, orTerms(MaxFilterCost/4, `manager.displayName eq "%d"`), ""},
		{schema.Users, orTerms(MaxFilterCost/4+1, `manager.displayName eq "%d"`), "the limit is 200"},
		{schema.Users, orTerms(MaxFilterCost/4+1, `manager.value eq "%d"`), ""},
		{schema.Users, orTerms(MaxFilterCost/12, `emails[type eq "work" and value co "%d"]`), ""},
		{schema.Users, orTerms(MaxFilterCost/12+1, `emails[type eq "work" and value co "%d"]`), "it costs 204"},
		{schema.Groups, orTerms(MaxFilterCost/8, `members.value co "%d"`), ""},
		{schema.Groups, orTerms(MaxFilterCost/8+1, `members.value co "%d"`), "multi-valued attribute"},
	} {
		f, err := filter.Parse(tc.filter)
		if err != nil {
			t.Fatalf("parse %.60s…: %v", tc.filter, err)
		}
		err = checkFilter(tc.rt, tc.filter, f)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%.60s…: %v", tc.filter, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%.60s…: got %v, want %q", tc.filter, err, tc.err)
		}
	}
}
