package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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

// scimComplementSeeds are filters whose negation is worth checking.
func scimComplementSeeds() []string {
	var seeds []string
	for _, tc := range scimUserFilters {
		seeds = append(seeds, tc.filter)
	}
	for _, tc := range scimGroupFilters {
		seeds = append(seeds, tc.filter)
	}
	for _, tc := range scimLimitFilters {
		seeds = append(seeds, tc.filter)
	}
	return append(seeds,
		`not (emails.value co "a" or emails.type eq "work") and (userName eq "eve" or userName eq "bob.stone" or emails pr)`,
		`groups.display co "a" or groups.value pr or not (groups[display sw "b"] and groups.display co "l")`,
		`not (members.value co "1") and not (members pr) or members[type eq "Group"] or members.display ne null`,
		`userName eq "anna.berg" or displayName eq "eve" or userName eq "Carl" or displayName eq "BOB STONE"`,
		`not (userName eq "anna.berg") and not (userName eq "eve") and not (emails pr) and not (emails.type eq "home")`,
		`not (userName eq "anna.berg") or not (userName eq "eve") or not (emails.type eq "work") or not (emails pr)`,
	)
}

// scimComplement returns a check that the resources a filter selects are
// those its and, or and not make of each term's resources, and that they
// and those its negation selects are disjoint and together every
// resource.
func scimComplement(tb testing.TB, s *store.Store) func(t *testing.T, in string) {
	dir := s.SCIM()
	ctx := context.Background()
	list := func(t *testing.T, groups bool, e filter.Expr) ([]string, bool) {
		q := scim.Query{Filter: e, Count: 1000}
		var err error
		var ids []string
		if groups {
			var p *scim.Page[scim.Group]
			if p, err = dir.Groups(ctx, q); err == nil {
				ids = scimGroupIDs(p)
			}
		} else {
			var p *scim.Page[scim.User]
			if p, err = dir.Users(ctx, q); err == nil {
				ids = scimUserIDs(p)
			}
		}
		var fe *scim.FilterError
		if errors.As(err, &fe) {
			return nil, false
		}
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		return ids, true
	}
	users, err := dir.Users(ctx, scim.Query{Count: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	groups, err := dir.Groups(ctx, scim.Query{Count: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	everyone := map[bool][]string{false: scimUserIDs(users), true: scimGroupIDs(groups)}
	return func(t *testing.T, in string) {
		e, err := filter.Parse(in)
		if err != nil {
			return
		}
		for _, groups := range []bool{false, true} {
			yes, ok := list(t, groups, e)
			if !ok {
				continue
			}
			// The logic evaluated here, from each term's resources.
			var eval func(e filter.Expr) map[string]bool
			eval = func(e filter.Expr) map[string]bool {
				set := map[string]bool{}
				switch e := e.(type) {
				case *filter.And:
					l, r := eval(e.Left), eval(e.Right)
					for id := range l {
						if r[id] {
							set[id] = true
						}
					}
				case *filter.Or:
					for id := range eval(e.Left) {
						set[id] = true
					}
					for id := range eval(e.Right) {
						set[id] = true
					}
				case *filter.Not:
					x := eval(e.X)
					for _, id := range everyone[groups] {
						if !x[id] {
							set[id] = true
						}
					}
				default:
					ids, _ := list(t, groups, e)
					for _, id := range ids {
						set[id] = true
					}
				}
				return set
			}
			want := slices.Sorted(maps.Keys(eval(e)))
			if got := slices.Sorted(slices.Values(yes)); !slices.Equal(got, want) {
				t.Fatalf("%s (groups %v): selects %s, but its terms say %s", in, groups, scimNames(got), scimNames(want))
			}
			no, _ := list(t, groups, &filter.Not{X: e})
			seen := map[string]bool{}
			for _, id := range yes {
				seen[id] = true
			}
			for _, id := range no {
				if seen[id] {
					t.Fatalf("%s (groups %v): %s is selected by the filter and by its negation", in, groups, scimNames([]string{id}))
				}
			}
			if len(yes)+len(no) != len(everyone[groups]) {
				t.Fatalf("%s (groups %v): %d selected, %d by the negation, of %d", in, groups, len(yes), len(no), len(everyone[groups]))
			}
		}
	}
}

// TestSCIMFilterComplement runs the complement check of the seeds on
// both stores.
func TestSCIMFilterComplement(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		scimtest.Seed(t, s)
		check := scimComplement(t, s)
		for _, in := range scimComplementSeeds() {
			check(t, in)
		}
	})
}

// FuzzSCIMFilterComplement checks the negation normal form, the flat
// lists and the shared subqueries against the meaning of not, on a real
// SQLite directory (see scimComplement).
func FuzzSCIMFilterComplement(f *testing.F) {
	for _, s := range scimComplementSeeds() {
		f.Add(s)
	}
	s := storetest.Open(f, store.SQLite)
	scimtest.Seed(f, s)
	f.Fuzz(scimComplement(f, s))
}
