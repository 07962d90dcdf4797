package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/scimtest"
)

// scimNest wraps the innermost filter in n levels, level i being made by
// wrap(i, inner).
func scimNest(n int, innermost string, wrap func(i int, inner string) string) string {
	f := innermost
	for i := range n {
		f = wrap(i, f)
	}
	return f
}

// scimOrs joins n terms made by term with or.
func scimOrs(n int, term func(i int) string) string {
	terms := make([]string, n)
	for i := range terms {
		terms[i] = term(i)
	}
	return strings.Join(terms, " or ")
}

// scimLimitFilters are filters at the published limits (filter.MaxLength,
// filter.MaxDepth, scim.MaxFilterTerms and scim.MaxFilterCost), each of
// which SQLite once refused with "parser stack overflow" or "Expression
// tree is too large" (issue 16, defect 7) once it grew this far.
var scimLimitFilters = []struct {
	name, filter string
	groups       bool
	want         string
}{
	{"userName eq, OR'd to the term limit",
		scimOrs(scim.MaxFilterTerms, func(i int) string {
			if i == scim.MaxFilterTerms/2 {
				return `userName eq "ANNA.BERG"`
			}
			return fmt.Sprintf(`userName eq "nobody%03d"`, i)
		}), false, "anna"},
	{"userName sw, OR'd to the term limit",
		scimOrs(scim.MaxFilterTerms, func(i int) string {
			if i == scim.MaxFilterTerms-1 {
				return `userName sw "anna"`
			}
			return fmt.Sprintf(`userName sw "nobody%03d"`, i)
		}), false, "anna"},
	{"eq on different attributes, OR'd to the term limit",
		scimOrs(scim.MaxFilterTerms, func(i int) string {
			switch i % 4 {
			case 0:
				return fmt.Sprintf(`userName eq "nobody%03d"`, i)
			case 1:
				return fmt.Sprintf(`displayName eq "nobody%03d"`, i)
			case 2:
				return fmt.Sprintf(`externalId eq "nobody%03d"`, i)
			}
			if i == scim.MaxFilterTerms-1 {
				return `name.givenName eq "carl"`
			}
			return fmt.Sprintf(`name.givenName eq "nobody%03d"`, i)
		}), false, "carl"},
	{"not, nested to the depth limit",
		scimNest(filter.MaxDepth, `userName eq "anna.berg"`, func(_ int, in string) string { return "not (" + in + ")" }),
		false, "anna"},
	{"not, nested one short of the depth limit",
		scimNest(filter.MaxDepth-1, `userName eq "anna.berg"`, func(_ int, in string) string { return "not (" + in + ")" }),
		false, "bob,carl,dora,eve,gina,hans,jurgen"},
	{"and and or, alternating to the depth limit",
		scimNest(filter.MaxDepth, `userName eq "anna.berg"`, func(i int, in string) string {
			if i%2 == 0 {
				return `userName pr and (` + in + `)`
			}
			return fmt.Sprintf(`userName eq "nobody%d" or (`, i) + in + `)`
		}), false, "anna"},
	{"and and or, alternating to the depth limit, outermost first",
		scimNest(filter.MaxDepth, `userName eq "anna.berg"`, func(i int, in string) string {
			if i%2 == 0 {
				return `(` + in + `) and userName pr`
			}
			return `(` + in + fmt.Sprintf(`) or userName eq "nobody%d"`, i)
		}), false, "anna"},
	{"not and and, alternating to the depth limit",
		scimNest(filter.MaxDepth/2, `userName eq "anna.berg"`, func(_ int, in string) string {
			return "not (userName pr and not (" + in + "))"
		}), false, "anna"},
	{"a value filter on groups under and and or to the depth limit",
		scimNest(filter.MaxDepth-1, `groups[display sw "berlin"]`, func(i int, in string) string {
			if i%2 == 0 {
				return `active pr and (` + in + `)`
			}
			return `not (emails pr) and userName eq "nobody" or (` + in + `)`
		}), false, "anna,dora"},
	{"not groups under nots to the depth limit",
		scimNest(filter.MaxDepth, `groups.value pr`, func(_ int, in string) string { return "not (" + in + ")" }),
		false, "anna,bob,carl,dora,gina"},
	{"groups.display co, OR'd to the cost limit",
		scimOrs(scim.MaxFilterCost/8, func(i int) string {
			if i == 0 {
				return `groups.display co "SAL"`
			}
			return fmt.Sprintf(`groups.display co "nothing%d"`, i)
		}), false, "bob"},
	{"not of groups.display co, OR'd to the cost limit",
		`not (` + scimOrs(scim.MaxFilterCost/8, func(i int) string { return fmt.Sprintf(`groups.display co "%d"`, i) }) + `)`,
		false, "anna,bob,carl,dora,eve,gina,hans,jurgen"},
	{"members.value co, OR'd to the cost limit",
		scimOrs(scim.MaxFilterCost/8, func(i int) string {
			if i == 7 {
				return `members.value co "` + scimtest.Dora[20:] + `"`
			}
			return fmt.Sprintf(`members.value co "nobody%d"`, i)
		}), true, "berlin"},
	{"the length limit",
		scimOrs(scim.MaxFilterTerms, func(i int) string {
			if i == 3 {
				return `userName eq "eve"`
			}
			return fmt.Sprintf(`userName eq "nobody%03d%s"`, i, strings.Repeat("x", filter.MaxLength/scim.MaxFilterTerms-30))
		}), false, "eve"},
}

// TestSCIMFilterLimits: every filter at the published limits answers,
// correctly, on both stores (issue 16, defect 7: SQLite answered 500).
func TestSCIMFilterLimits(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		scimtest.Seed(t, s)
		dir := s.SCIM()
		for _, tc := range scimLimitFilters {
			f := tc.filter
			if tc.name == "the length limit" {
				f += strings.Repeat(" ", filter.MaxLength-len(f))
			}
			if len(f) > filter.MaxLength {
				t.Fatalf("%s: %d bytes, beyond the limit", tc.name, len(f))
			}
			q := scim.Query{Filter: scimParse(t, f), Count: 1000}
			var got []string
			var err error
			if tc.groups {
				var p *scim.Page[scim.Group]
				if p, err = dir.Groups(context.Background(), q); err == nil {
					got = scimGroupIDs(p)
				}
			} else {
				var p *scim.Page[scim.User]
				if p, err = dir.Users(context.Background(), q); err == nil {
					got = scimUserIDs(p)
				}
			}
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if names := scimNames(got); names != tc.want {
				t.Errorf("%s\n got  %s\n want %s", tc.name, names, tc.want)
			}
		}
	})
}
