package store_test

import (
	"context"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/sources"
)

func TestListUsers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.SyncSources(ctx, []string{"staff", "hr"}, []string{"csv", "csv"}); err != nil {
			t.Fatal(err)
		}
		set := reconcile.Settings{Orphans: reconcile.OrphansDelete, ActivateNew: true, Restore: true}
		ids := seq()
		staff := []sources.Record{rec(1, "1", "anna"), rec(2, "2", "Bob_x"), rec(3, "3", "carl"), rec(4, "4", "100%dave")}
		staff[1].Email = "robert@Example.org"
		if err := s.Apply(ctx, "staff", plan(t, s, "staff", staff, set, ids), "fp1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, "hr", plan(t, s, "hr", []sources.Record{rec(1, "9", "zoe")}, set, ids), "fp1"); err != nil {
			t.Fatal(err)
		}
		// carl leaves: a tombstone, not listed.
		if err := s.Apply(ctx, "staff", plan(t, s, "staff", []sources.Record{staff[0], staff[1], staff[3]}, set, ids), "fp2"); err != nil {
			t.Fatal(err)
		}
		names := func(f store.UserFilter) ([]string, int64) {
			t.Helper()
			rows, total, err := s.ListUsers(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range rows {
				out = append(out, r.UserName)
			}
			return out, total
		}
		for _, c := range []struct {
			f     store.UserFilter
			want  string
			total int64
		}{
			{store.UserFilter{}, "[100%dave anna Bob_x zoe]", 4},
			{store.UserFilter{Limit: 2, Offset: 1}, "[anna Bob_x]", 4},
			{store.UserFilter{Search: "BOB"}, "[Bob_x]", 1},
			{store.UserFilter{Search: "example.ORG"}, "[Bob_x]", 1}, // e-mail
			{store.UserFilter{Search: "g9 f9"}, "[zoe]", 1},         // displayName
			{store.UserFilter{Search: "%"}, "[100%dave]", 1},        // a literal %
			{store.UserFilter{Search: "_"}, "[Bob_x]", 1},           // a literal _
			{store.UserFilter{Search: `x' OR '1'='1`}, "[]", 0},     // no injection
			{store.UserFilter{Search: "carl"}, "[]", 0},             // tombstone
			{store.UserFilter{Search: "  anna  "}, "[anna]", 1},     // trimmed
		} {
			got, total := names(c.f)
			if s := fmtList(got); s != c.want || total != c.total {
				t.Errorf("ListUsers(%+v) = %s (total %d), want %s (total %d)", c.f, s, total, c.want, c.total)
			}
		}
		rows, _, err := s.ListUsers(ctx, store.UserFilter{Search: "zoe"})
		if err != nil || len(rows) != 1 {
			t.Fatalf("zoe: %v %v", rows, err)
		}
		if r := rows[0]; r.Source != "hr" || r.Email != "zoe@example.com" || !r.Active || r.State != reconcile.StateActive || r.ID == "" {
			t.Fatalf("zoe: %+v", r)
		}
	})
}

func fmtList(s []string) string {
	out := "["
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out + "]"
}
