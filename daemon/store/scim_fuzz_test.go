package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/scimtest"
)

// FuzzSCIMFilter runs every filter that parses against a real SQLite
// directory, as users and as groups: the store must answer with
// resources or a *scim.FilterError, never with an SQL error, whatever
// the attribute names, operators, values and nesting. The seeds are the
// conformance cases.
func FuzzSCIMFilter(f *testing.F) {
	for _, tc := range scimUserFilters {
		f.Add(tc.filter)
	}
	for _, tc := range scimGroupFilters {
		f.Add(tc.filter)
	}
	for _, s := range []string{
		`emails[value eq "a" or not (type pr)] and not (groups[display co "%_\\"])`,
		`meta.lastModified le "2026-01-10T12:00:00.250+02:00" or meta.version ne "3"`,
		`members.display sw "" and members.type ne null and externalId ew ""`,
		`not (not (not (userName pr)))`,
		`addresses[type eq "work" and locality sw "Ber"] or title co "eng" and not (nickName pr)`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter eq "" or roles.primary eq true`,
		`name.honorificPrefix gt "D" and x509Certificates[display ew "\""] and ims.type ne null`,
		// Custom attributes of every type, including values of another
		// type than declared (see retyped).
		customURN + `:floor gt 2 or fte le -0.5 and not (remote eq false)`,
		`hired ge "2026-01-01T00:00:00Z" and tags[value co "a"] or shifts eq 1 or badge sw "B"`,
		`wiki pr and not (costCentreCode eq null) or shifts[value gt 2] or tags eq "red" or shifts eq 3`,
		`floor eq "x" or remote gt true or hired co "2026" or tags eq 1`,
	} {
		f.Add(s)
	}
	s := storetest.Open(f, store.SQLite)
	scimtest.Seed(f, s)
	retyped(f, s)
	dir := s.SCIMFor(customUsers)
	f.Fuzz(func(t *testing.T, in string) {
		e, err := filter.Parse(in)
		if err != nil {
			return
		}
		ctx := context.Background()
		for _, sort := range []string{"", scim.SortDisplayName, "title", "addresses.locality", "floor", "hired", "tags", "remote"} {
			q := scim.Query{Filter: e, Count: 3, SortBy: sort, Cursor: true}
			var fe *scim.FilterError
			if _, err := dir.Users(ctx, q); err != nil && !errors.As(err, &fe) {
				t.Fatalf("users, %s: %v", in, err)
			}
			if _, err := dir.Groups(ctx, q); err != nil && !errors.As(err, &fe) && !errors.Is(err, scim.ErrInvalidSort) {
				t.Fatalf("groups, %s: %v", in, err)
			}
		}
	})
}
