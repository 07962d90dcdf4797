package store_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

const patchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[%s]}`

// memberIDs are the values of a group answer's members, sorted.
func memberIDs(m map[string]any) []string {
	var ids []string
	ms, _ := m["members"].([]any)
	for _, v := range ms {
		mv, _ := v.(map[string]any)
		id, _ := mv["value"].(string)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// groupVersion reads a group's version straight from the database.
func (e *scimWriteEnv) groupVersion(id string) int64 {
	e.t.Helper()
	var v int64
	if err := e.s.DB().Raw(`SELECT version FROM groups WHERE id = ?`, id).Row().Scan(&v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *scimWriteEnv) memberships(column, id string) int {
	e.t.Helper()
	var n int
	if err := e.s.DB().Raw(`SELECT COUNT(*) FROM memberships WHERE `+column+` = ?`, id).Row().Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestSCIMWriteGroups(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		anna, bob := e.idOf("anna"), e.idOf("bob")
		m := want(t, e.do("POST", "/scim/v2/Users", writeTok, entraCreate), http.StatusCreated, "", "")
		carla, _ := m["id"].(string)

		// Scopes.
		want(t, e.do("POST", "/scim/v2/Groups", readTok, `{"displayName":"Team"}`), http.StatusForbidden, "", "scim:write")

		// Create with members of both sources.
		rev := e.revision("idp")
		a := e.do("POST", "/scim/v2/Groups", writeTok, fmt.Sprintf(`{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
  "displayName": "Team Blue", "externalId": "blue",
  "members": [{"value": %q, "type": "User"}, {"value": %q}]}`, anna, carla))
		m = want(t, a, http.StatusCreated, "", "")
		team, _ := m["id"].(string)
		meta, _ := m["meta"].(map[string]any)
		if team == "" || m["displayName"] != "Team Blue" || m["externalId"] != "blue" ||
			!slices.Equal(memberIDs(m), sorted(anna, carla)) {
			t.Fatalf("created: %s", a.body)
		}
		if loc := a.header.Get("Location"); !strings.HasSuffix(loc, "/Groups/"+team) || meta["location"] != loc ||
			a.header.Get("ETag") != meta["version"] || meta["version"] != `W/"1"` {
			t.Errorf("Location %q, ETag %q, meta %v", loc, a.header.Get("ETag"), meta)
		}
		if r := e.revision("idp"); r != rev+1 {
			t.Errorf("idp revision %d → %d", rev, r)
		}
		m = want(t, e.do("GET", "/scim/v2/Users/"+anna, readTok, ""), http.StatusOK, "", "")
		if gs, _ := m["groups"].([]any); len(gs) != 1 || gs[0].(map[string]any)["value"] != team {
			t.Errorf("anna's groups: %v", m["groups"])
		}

		// displayName is not unique among groups written over SCIM (SPEC §2;
		// Entra ID allows duplicates): a second group gets its own id.
		if m := want(t, e.do("POST", "/scim/v2/Groups", writeTok, `{"displayName":"team BLUE"}`), http.StatusCreated, "", ""); m["id"] == team {
			t.Errorf("a second group with the same name: %v", m)
		}
		want(t, e.do("POST", "/scim/v2/Groups", writeTok, `{"displayName":"  "}`), http.StatusBadRequest, "invalidValue", "displayName")
		// Unknown members, tombstones included, and bad types.
		want(t, e.do("POST", "/scim/v2/Groups", writeTok, `{"displayName":"X","members":[{"value":"no-such-id"}]}`),
			http.StatusBadRequest, "invalidValue", "no-such-id")
		want(t, e.do("POST", "/scim/v2/Groups", writeTok, fmt.Sprintf(`{"displayName":"X","members":[{"value":%q,"type":"Group"}]}`, anna)),
			http.StatusBadRequest, "invalidValue", anna)
		want(t, e.do("POST", "/scim/v2/Groups", writeTok, fmt.Sprintf(`{"displayName":"X","members":[{"value":%q,"type":"Robot"}]}`, anna)),
			http.StatusBadRequest, "invalidValue", "Robot")
		var n int
		s.DB().Raw(`SELECT COUNT(*) FROM groups WHERE display_name_key = 'x'`).Row().Scan(&n)
		if n != 0 {
			t.Errorf("a refused create left %d groups", n)
		}

		// A nested group.
		m = want(t, e.do("POST", "/scim/v2/Groups", writeTok, fmt.Sprintf(`{"displayName":"Blue Leads","members":[{"value":%q}]}`, bob)),
			http.StatusCreated, "", "")
		leads, _ := m["id"].(string)

		// PUT replaces the members; only the difference is written.
		v := e.groupVersion(team)
		a = e.do("PUT", "/scim/v2/Groups/"+team, writeTok, fmt.Sprintf(`{"displayName":"Team Blue",
			"members":[{"value":%q},{"value":%q},{"value":%q,"type":"Group"}]}`, carla, bob, leads))
		m = want(t, a, http.StatusOK, "", "")
		if !slices.Equal(memberIDs(m), sorted(carla, bob, leads)) || m["externalId"] != "blue" {
			t.Fatalf("PUT: %s", a.body)
		}
		if e.groupVersion(team) != v+1 {
			t.Errorf("version %d → %d", v, e.groupVersion(team))
		}
		for _, mv := range m["members"].([]any) {
			mv := mv.(map[string]any)
			if mv["value"] == leads && (mv["type"] != "Group" || !strings.HasSuffix(mv["$ref"].(string), "/Groups/"+leads) || mv["display"] != "Blue Leads") {
				t.Errorf("nested member: %v", mv)
			}
		}
		// A group is not its own member.
		want(t, e.do("PUT", "/scim/v2/Groups/"+team, writeTok, fmt.Sprintf(`{"displayName":"Team Blue","members":[{"value":%q}]}`, team)),
			http.StatusBadRequest, "invalidValue", team)
		// Renaming onto another group's name is allowed too.
		want(t, e.do("PUT", "/scim/v2/Groups/"+leads, writeTok, `{"displayName":"TEAM blue"}`), http.StatusOK, "", "")
		want(t, e.do("PUT", "/scim/v2/Groups/"+leads, writeTok, `{"displayName":"Blue Leads"}`), http.StatusOK, "", "")

		// Entra ID's PATCH shapes.
		a = e.do("PATCH", "/scim/v2/Groups/"+team, writeTok, fmt.Sprintf(patchOp,
			fmt.Sprintf(`{"op":"Add","path":"members","value":[{"value":%q}]}`, anna)))
		if m = want(t, a, http.StatusOK, "", ""); !slices.Equal(memberIDs(m), sorted(carla, bob, leads, anna)) {
			t.Fatalf("PATCH add: %s", a.body)
		}
		a = e.do("PATCH", "/scim/v2/Groups/"+team, writeTok, fmt.Sprintf(patchOp,
			fmt.Sprintf(`{"op":"Remove","path":"members[value eq \"%s\"]"}`, bob)))
		if m = want(t, a, http.StatusOK, "", ""); !slices.Equal(memberIDs(m), sorted(carla, leads, anna)) {
			t.Fatalf("PATCH remove: %s", a.body)
		}
		a = e.do("PATCH", "/scim/v2/Groups/"+team+"?excludedAttributes=members", writeTok, fmt.Sprintf(patchOp,
			`{"op":"Replace","path":"displayName","value":"Team Azure"}`))
		if m = want(t, a, http.StatusOK, "", ""); m["displayName"] != "Team Azure" || m["members"] != nil || m["id"] != team {
			t.Fatalf("PATCH replace displayName: %s", a.body)
		}
		// Unknown members in a PATCH.
		want(t, e.do("PATCH", "/scim/v2/Groups/"+team, writeTok, fmt.Sprintf(patchOp,
			`{"op":"Add","path":"members","value":[{"value":"ghost"}]}`)), http.StatusBadRequest, "invalidValue", "ghost")

		// Okta's PATCH shapes.
		a = e.do("PATCH", "/scim/v2/Groups/"+team, writeTok, fmt.Sprintf(patchOp,
			fmt.Sprintf(`{"op":"replace","value":{"id":%q,"displayName":"Team Okta"}}`, team)))
		if m = want(t, a, http.StatusOK, "", ""); m["displayName"] != "Team Okta" || !slices.Equal(memberIDs(m), sorted(carla, leads, anna)) {
			t.Fatalf("Okta rename: %s", a.body)
		}
		a = e.do("PATCH", "/scim/v2/Groups/"+team, writeTok, fmt.Sprintf(patchOp,
			fmt.Sprintf(`{"op":"add","path":"members","value":[{"value":%q,"display":"bob"}]}`, bob)))
		if m = want(t, a, http.StatusOK, "", ""); !slices.Equal(memberIDs(m), sorted(carla, leads, anna, bob)) {
			t.Fatalf("Okta add: %s", a.body)
		}
		a = e.do("PATCH", "/scim/v2/Groups/"+team, writeTok, fmt.Sprintf(patchOp,
			fmt.Sprintf(`{"op":"remove","path":"members","value":[{"value":%q}]}`, carla)))
		if m = want(t, a, http.StatusOK, "", ""); !slices.Equal(memberIDs(m), sorted(leads, anna, bob)) {
			t.Fatalf("Okta remove: %s", a.body)
		}

		// If-Match.
		v = e.groupVersion(team)
		stale := fmt.Sprintf(`W/"%d"`, v-1)
		want(t, e.do("PATCH", "/scim/v2/Groups/"+team, writeTok, fmt.Sprintf(patchOp, `{"op":"Replace","path":"displayName","value":"Z"}`),
			"If-Match", stale), http.StatusPreconditionFailed, "", "")
		want(t, e.do("PUT", "/scim/v2/Groups/"+team, writeTok, `{"displayName":"Z"}`, "If-Match", stale), http.StatusPreconditionFailed, "", "")
		want(t, e.do("DELETE", "/scim/v2/Groups/"+team, writeTok, "", "If-Match", stale), http.StatusPreconditionFailed, "", "")
		if e.groupVersion(team) != v {
			t.Fatalf("a stale write changed the group")
		}
		want(t, e.do("PUT", "/scim/v2/Groups/"+leads, writeTok, fmt.Sprintf(`{"displayName":"Blue Leads","members":[{"value":%q}]}`, anna),
			"If-Match", fmt.Sprintf(`W/"%d"`, e.groupVersion(leads))), http.StatusOK, "", "")

		// A group of another source is read-only.
		s.DB().Exec(`INSERT INTO groups (id, source, external_id, display_name, display_name_key, version, created_at, updated_at)
			VALUES ('g-staff', 'staff', 'D1', 'Staff', 'staff', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')`)
		staffRev := e.revision("staff")
		want(t, e.do("PUT", "/scim/v2/Groups/g-staff", writeTok, `{"displayName":"Mine"}`), http.StatusBadRequest, "mutability", `source "staff"`)
		want(t, e.do("PATCH", "/scim/v2/Groups/g-staff", writeTok, fmt.Sprintf(patchOp, `{"op":"Replace","path":"displayName","value":"Mine"}`)),
			http.StatusBadRequest, "mutability", `source "staff"`)
		want(t, e.do("DELETE", "/scim/v2/Groups/g-staff", writeTok, ""), http.StatusBadRequest, "mutability", `source "staff"`)
		if e.groupVersion("g-staff") != 1 || e.revision("staff") != staffRev {
			t.Errorf("a refused write changed the staff group")
		}
		// ... but it may be a member.
		want(t, e.do("PATCH", "/scim/v2/Groups/"+leads, writeTok, fmt.Sprintf(patchOp, `{"op":"add","path":"members","value":[{"value":"g-staff"}]}`)),
			http.StatusOK, "", "")
		want(t, e.do("PUT", "/scim/v2/Groups/unknown", writeTok, `{"displayName":"U"}`), http.StatusNotFound, "", "")

		// Delete: the group, its memberships, and those naming it.
		rev = e.revision("idp")
		v = e.groupVersion(team)
		want(t, e.do("DELETE", "/scim/v2/Groups/"+leads, writeTok, ""), http.StatusNoContent, "", "")
		want(t, e.do("GET", "/scim/v2/Groups/"+leads, readTok, ""), http.StatusNotFound, "", "")
		want(t, e.do("DELETE", "/scim/v2/Groups/"+leads, writeTok, ""), http.StatusNotFound, "", "")
		if e.memberships("group_id", leads) != 0 || e.memberships("member_id", leads) != 0 {
			t.Errorf("memberships of a deleted group remain")
		}
		if e.groupVersion(team) != v+1 {
			t.Errorf("the group that held the deleted one kept its version")
		}
		if r := e.revision("idp"); r != rev+1 {
			t.Errorf("idp revision %d → %d", rev, r)
		}
		m = want(t, e.do("GET", "/scim/v2/Groups/"+team, readTok, ""), http.StatusOK, "", "")
		if !slices.Equal(memberIDs(m), sorted(anna, bob)) {
			t.Errorf("after deleting a member group: %v", m["members"])
		}
		want(t, e.do("DELETE", "/scim/v2/Groups/"+team, writeTok, ""), http.StatusNoContent, "", "")
		m = want(t, e.do("GET", "/scim/v2/Users/"+anna, readTok, ""), http.StatusOK, "", "")
		if m["groups"] != nil {
			t.Errorf("anna's groups after DELETE: %v", m["groups"])
		}
		if e.memberships("member_id", anna) != 0 {
			t.Errorf("anna's memberships remain")
		}
		// The name is free again.
		want(t, e.do("POST", "/scim/v2/Groups", writeTok, `{"displayName":"Team Okta"}`), http.StatusCreated, "", "")
	})
}

// TestSCIMWriteGroupMembersDiff checks that adding one member to a large
// group writes one membership row and leaves the others alone.
func TestSCIMWriteGroupMembersDiff(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		anna, bob := e.idOf("anna"), e.idOf("bob")
		var members []string
		for i := range 1200 {
			id := fmt.Sprintf("g-%04d", i)
			if err := s.DB().Exec(`INSERT INTO groups (id, source, external_id, display_name, display_name_key, version, created_at, updated_at)
				VALUES (?, 'staff', '', ?, ?, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')`, id, id, id).Error; err != nil {
				t.Fatal(err)
			}
			members = append(members, fmt.Sprintf(`{"value":%q}`, id))
		}
		members = append(members, fmt.Sprintf(`{"value":%q}`, anna))
		m := want(t, e.do("POST", "/scim/v2/Groups", writeTok, `{"displayName":"Big","members":[`+strings.Join(members, ",")+`]}`),
			http.StatusCreated, "", "")
		big, _ := m["id"].(string)
		if e.memberships("group_id", big) != 1201 {
			t.Fatalf("memberships: %d", e.memberships("group_id", big))
		}
		// Count the membership rows the PATCH writes.
		var written int64
		var stmts []string
		err := s.DB().Callback().Raw().After("gorm:raw").Register("test:memberships", func(db *gorm.DB) {
			sql := strings.TrimSpace(db.Statement.SQL.String())
			if strings.Contains(sql, "memberships") && !strings.HasPrefix(sql, "SELECT") {
				written += db.Statement.RowsAffected
				stmts = append(stmts, sql)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		want(t, e.do("PATCH", "/scim/v2/Groups/"+big+"?excludedAttributes=members", writeTok, fmt.Sprintf(patchOp,
			fmt.Sprintf(`{"op":"Add","path":"members","value":[{"value":%q}]},{"op":"Remove","path":"members[value eq \"%s\"]"}`, bob, anna))),
			http.StatusOK, "", "")
		if err := s.DB().Callback().Raw().Remove("test:memberships"); err != nil {
			t.Fatal(err)
		}
		if written != 2 || len(stmts) != 2 {
			t.Errorf("the PATCH wrote %d membership rows in %q", written, stmts)
		}
		if e.memberships("group_id", big) != 1201 || e.memberships("member_id", anna) != 0 || e.memberships("member_id", bob) != 1 {
			t.Errorf("after the PATCH: %d members", e.memberships("group_id", big))
		}
	})
}
