// Package scimtest holds the fixed directory that roster's SCIM tests read, and writes it into a real store.
//
// The fixture has fixed ids and timestamps, so responses can be compared
// byte for byte with golden files on SQLite and PostgreSQL alike. It
// covers what filters have to tell apart: mixed case, a non-ASCII login,
// LIKE wildcards and a backslash in values, an inactive user, a
// tombstone (which must never show), a manager who is a tombstone,
// several e-mail addresses of different types, fractional seconds in
// timestamps, nested groups and an empty group.
package scimtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
)

// User ids, in creation order.
const (
	Anna   = "00000000-0000-7000-8000-000000000001"
	Bob    = "00000000-0000-7000-8000-000000000002"
	Carl   = "00000000-0000-7000-8000-000000000003"
	Dora   = "00000000-0000-7000-8000-000000000004"
	Eve    = "00000000-0000-7000-8000-000000000005"
	Frank  = "00000000-0000-7000-8000-000000000006" // a tombstone
	Gina   = "00000000-0000-7000-8000-000000000007"
	Hans   = "00000000-0000-7000-8000-000000000008"
	Jurgen = "00000000-0000-7000-8000-000000000009"
)

// Group ids.
const (
	Research  = "00000000-0000-7000-9000-000000000001"
	Sales     = "00000000-0000-7000-9000-000000000002"
	BerlinLab = "00000000-0000-7000-9000-000000000003"
	Empty     = "00000000-0000-7000-9000-000000000004"
)

// Names maps every id of the fixture to a short name, for readable test
// failures.
var Names = map[string]string{
	Anna: "anna", Bob: "bob", Carl: "carl", Dora: "dora", Eve: "eve", Frank: "frank", Gina: "gina",
	Hans: "hans", Jurgen: "jurgen",
	Research: "research", Sales: "sales", BerlinLab: "berlin", Empty: "empty",
}

// Value is an e-mail address or phone number.
type Value struct {
	Value, Type string
	Primary     bool
}

// User is a fixture user as the store keeps it.
type User struct {
	ID, Source, ExternalID, UserName           string
	GivenName, FamilyName, DisplayName         string
	EmployeeNumber, Department, Manager, State string
	Active                                     bool
	Version                                    int64
	Created, Modified                          time.Time
	Emails, Phones                             []Value
}

// Group is a fixture group; Members are user ids, and group ids for
// nested groups.
type Group struct {
	ID, Source, ExternalID, DisplayName string
	Version                             int64
	Created, Modified                   time.Time
	Members                             []string
}

func day(d int) time.Time { return time.Date(2026, 1, d, 9, 0, 0, 0, time.UTC) }

// Users of the fixture. Each is created on day n of January 2026 at
// 09:00 UTC (n is its number) and modified an hour later, but for Carl
// and Gina, modified within the same second on January 10 (Gina 250 ms
// after Carl), which text comparison of RFC 3339 timestamps gets wrong.
var Users = []User{
	{ID: Anna, ExternalID: "E001", UserName: "anna.berg", GivenName: "Anna", FamilyName: "Berg", DisplayName: "Anna Berg",
		EmployeeNumber: "E001", Department: "Research", Manager: Carl, Active: true, Version: 3,
		Emails: []Value{{"anna.berg@example.com", "work", true}, {"anna@home.example", "home", false}},
		Phones: []Value{{"+49 30 1111", "work", true}}},
	{ID: Bob, ExternalID: "E002", UserName: "Bob.Stone", GivenName: "Bob", FamilyName: "Stone", DisplayName: "Bob Stone",
		EmployeeNumber: "E002", Department: "Sales", Manager: Anna, State: reconcile.StateInactive,
		Emails: []Value{{"bob.stone@example.com", "work", true}},
		Phones: []Value{{"+1 555 0100", "mobile", true}}},
	{ID: Carl, ExternalID: "e003", UserName: "carl", GivenName: "Carl", FamilyName: "Meyer", DisplayName: "Carl Meyer",
		Department: "Research", Active: true, Modified: time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC),
		Emails: []Value{{"Carl.Meyer@Example.COM", "work", true}}},
	{ID: Dora, ExternalID: "E004", UserName: "dora_x", GivenName: "Dora", FamilyName: "Xu", DisplayName: "Dora 100% Sure",
		EmployeeNumber: "E004", Active: true,
		Emails: []Value{{"dora@example.org", "work", true}}},
	{ID: Eve, ExternalID: "E005", UserName: "eve", GivenName: "Eve", DisplayName: "Eve",
		EmployeeNumber: "E005", Department: "Management", Manager: Frank, Active: true,
		Phones: []Value{{"+44 20 7946 0000", "work", false}}},
	{ID: Frank, ExternalID: "E006", UserName: "frank", GivenName: "Frank", FamilyName: "Fisher", DisplayName: "Frank Fisher",
		EmployeeNumber: "E006", Department: "Sales", State: reconcile.StateDeleted,
		Emails: []Value{{"frank@example.com", "work", true}}},
	{ID: Gina, ExternalID: "E007", UserName: "gina", GivenName: "Gina", FamilyName: "Lopez", DisplayName: `Gina \ Lopez`,
		EmployeeNumber: "E007", Department: "Research_Lab", Active: true,
		Modified: time.Date(2026, 1, 10, 12, 0, 0, 250_000_000, time.UTC),
		Emails:   []Value{{"gina@example.com", "other", false}, {"gina.lopez@example.com", "work", true}}},
	{ID: Hans, ExternalID: "E_008", UserName: "hans", GivenName: "Hans", FamilyName: "Gruber", DisplayName: "Hans Gruber",
		EmployeeNumber: "E_008", Manager: Anna, Active: true},
	{ID: Jurgen, ExternalID: "E009", UserName: "Jürgen.Kühn", GivenName: "Jürgen", FamilyName: "Kühn", DisplayName: "Jürgen Kühn",
		EmployeeNumber: "E009", Department: "Engineering", Active: true,
		Emails: []Value{{"juergen@example.de", "work", true}}},
}

// Groups of the fixture. Sales still lists the tombstone Frank, as a
// membership that outlived its user would; it must not show.
var Groups = []Group{
	{ID: Research, ExternalID: "D-10", DisplayName: "Research", Members: []string{Anna, Carl, Gina, BerlinLab}},
	{ID: Sales, ExternalID: "D-20", DisplayName: "Sales", Members: []string{Bob, Frank}},
	{ID: BerlinLab, DisplayName: "Berlin Lab", Members: []string{Anna, Dora}},
	{ID: Empty, ExternalID: "D-40", DisplayName: "Empty", Version: 2},
}

// Live are the users that are not tombstones, in id order.
func Live() []string {
	var ids []string
	for _, u := range Users {
		if u.State != reconcile.StateDeleted {
			ids = append(ids, u.ID)
		}
	}
	return ids
}

// Seed writes the fixture into an empty, migrated store, with plain
// INSERTs so that every column, timestamps included, has the fixture's
// value.
func Seed(tb testing.TB, s *store.Store) {
	tb.Helper()
	db := s.DB()
	exec := func(sql string, args ...any) {
		tb.Helper()
		if err := db.Exec(sql, args...).Error; err != nil {
			tb.Fatalf("seed the SCIM fixture: %v", err)
		}
	}
	exec(`INSERT INTO sources (name, type, revision, last_fingerprint, created_at) VALUES ('hr', 'push', 0, '', ?)`, day(1))
	isGroup := map[string]bool{}
	for i, g := range Groups {
		isGroup[g.ID] = true
		created := day(1).Add(time.Duration(i) * time.Minute)
		version := max(g.Version, 1)
		exec(`INSERT INTO groups (id, source, external_id, display_name, display_name_key, version, created_at, updated_at)
			VALUES (?, 'hr', ?, ?, ?, ?, ?, ?)`, g.ID, g.ExternalID, g.DisplayName, reconcile.Key(g.DisplayName), version, created, created)
	}
	for i, u := range Users {
		created := day(i + 1)
		modified := u.Modified
		if modified.IsZero() {
			modified = created.Add(time.Hour)
		}
		state := u.State
		if state == "" {
			state = reconcile.StateActive
		}
		var deleted *time.Time
		if state == reconcile.StateDeleted {
			deleted = &modified
		}
		exec(`INSERT INTO users (id, source, external_id, user_name, user_name_key, given_name, family_name, display_name,
				employee_number, department, manager, active, state, state_reason, password_hash, version, created_at, updated_at, deleted_at)
			VALUES (?, 'hr', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?)`,
			u.ID, u.ExternalID, u.UserName, reconcile.Key(u.UserName), u.GivenName, u.FamilyName, u.DisplayName,
			u.EmployeeNumber, u.Department, u.Manager, u.Active, state,
			// Every user has a password hash, so tests can check that it
			// never shows.
			"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", max(u.Version, 1), created, modified, deleted)
		for _, e := range u.Emails {
			exec(`INSERT INTO user_emails (user_id, value, type, "primary") VALUES (?, ?, ?, ?)`, u.ID, e.Value, e.Type, e.Primary)
		}
		for _, p := range u.Phones {
			exec(`INSERT INTO user_phone_numbers (user_id, value, type, "primary") VALUES (?, ?, ?, ?)`, u.ID, p.Value, p.Type, p.Primary)
		}
	}
	for _, g := range Groups {
		for _, m := range g.Members {
			typ := "User"
			if isGroup[m] {
				typ = "Group"
			}
			exec(`INSERT INTO memberships (group_id, member_id, member_type) VALUES (?, ?, ?)`, g.ID, m, typ)
		}
	}
}

// SeedMany adds n users (user000001 ...) through the store's own plan
// apply, the path a sync takes, each with a work e-mail and, for every
// tenth user, membership in one of ten groups. Ids are time-ordered like
// UUIDv7, so id order is creation order.
func SeedMany(tb testing.TB, s *store.Store, source string, n int) {
	tb.Helper()
	ctx := context.Background()
	if err := s.SyncSources(ctx, []string{source}, []string{"push"}); err != nil {
		tb.Fatal(err)
	}
	src, err := s.GetSource(ctx, source)
	if err != nil {
		tb.Fatal(err)
	}
	p := &reconcile.Plan{Source: source, Revision: src.Revision}
	for g := range 10 {
		p.GroupCreates = append(p.GroupCreates, reconcile.Group{ID: fmt.Sprintf("%s-g%02d", source, g), DisplayName: fmt.Sprintf("Team %02d", g)})
	}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("01900000-0000-7000-8000-%012d", i)
		login := fmt.Sprintf("user%06d", i)
		p.Changes = append(p.Changes, reconcile.Change{Action: reconcile.Create, After: reconcile.User{
			ID: id, ExternalID: fmt.Sprint(i), UserName: login, GivenName: "Given", FamilyName: fmt.Sprintf("Family%06d", i),
			DisplayName: fmt.Sprintf("Given Family%06d", i), Email: login + "@example.com",
			Active: true, State: reconcile.StateActive,
		}})
		if i%10 == 0 {
			p.MembershipAdds = append(p.MembershipAdds, reconcile.Membership{GroupID: p.GroupCreates[i/10%10].ID, UserID: id})
		}
	}
	if err := s.Apply(ctx, source, p, ""); err != nil {
		tb.Fatalf("seed %d users: %v", n, err)
	}
}
