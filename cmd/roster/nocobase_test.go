package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

const tokNocoAdmin = "e2e-nocobase-admin-token" // admin

// NocoBase's user data sync payloads. NocoBase's page on its HTTP API
// source ("Synchronizing User Data via HTTP API", linked from its user
// data sync handbook as "Datenquelle - HTTP API") writes out one payload
// literally, {"dataType":"user","records":[]}, which the test sends
// verbatim; the others are built from that page's field tables,
// UserRecord (uid, nickname, username, email, phone, departments,
// isDeleted, custom fields) and DepartmentRecord (uid, title, parentUid,
// isDeleted, custom fields), with the department objects {uid, isMain,
// isOwner} in a user's departments that SPEC §3.3 names: departments with
// parents, users with custom fields, matchKey and isDeleted. White space
// and key order are part of what the raw record must keep.
const (
	nocoDepartments = `{
  "dataType": "department",
  "records": [
    {"uid": "1", "title": "Zentrale", "isDeleted": false},
    {"uid": "2", "title": "Entwicklung", "parentUid": "1", "isDeleted": false},
    {"uid": "3", "title": "Vertrieb", "parentUid": "1", "isDeleted": false}
  ]
}`
	nocoUsers = `{
  "dataType": "user",
  "matchKey": "username",
  "records": [
    {"uid": "101", "username": "jweiss", "nickname": "Jürgen Weiß", "email": "jweiss@nocobase.example",
     "phone": "+49 30 1101", "departments": [{"uid": "2", "isMain": true, "isOwner": true}, "1"],
     "jobTitle": "Entwickler", "employeeCode": "E-101", "isDeleted": false},
    {"uid": "102", "username": "zschaefer", "nickname": "Zoë Schäfer", "email": "zschaefer@nocobase.example",
     "phone": "+49 30 1102", "departments": ["2"], "jobTitle": "Entwicklerin"},
    {"uid": "103", "username": "tmueller", "nickname": "Thomas Müller", "email": "tmueller@nocobase.example",
     "phone": "+49 30 1103", "departments": [{"uid": "3", "isOwner": true}]}
  ]
}`
	// The same people found by e-mail and by phone, as NocoBase's matchKey
	// does, under new uids (the system that pushes renumbered them): only
	// the e-mail or the phone can find them. Then one of them deleted.
	nocoByEmail = `{"dataType": "user", "matchKey": "email", "records": [
    {"uid": "202", "email": "zschaefer@nocobase.example", "nickname": "Zoë S.", "jobTitle": "Teamleiterin",
     "departments": [{"uid": "2", "isMain": true, "isOwner": true}]}]}`
	nocoByPhone = `{"dataType": "user", "matchKey": "phone", "records": [
    {"uid": "201", "phone": "+49 30 1101", "nickname": "Jürgen W."}]}`
	nocoDeleted = `{"dataType": "user", "records": [{"uid": "103", "isDeleted": true}]}`
	// user07 is the staff file's: matchKey username finds it, and api
	// (on_conflict: adopt) takes it over.
	nocoAdopt = `{"dataType": "user", "matchKey": "username", "records": [
    {"uid": "107", "username": "user07", "nickname": "Uwe Sieben", "jobTitle": "Werkstudent", "departments": ["3"]}]}`
	// user05 is the staff file's, and legacy does not adopt: the task fails.
	nocoConflict = `{"sourceName": "legacy", "dataType": "user", "records": [{"uid": "104", "username": "user05", "jobTitle": "Praktikant"}]}`
)

// nocoConfig is pushConfig's daemon with an admin token, the push source
// api mapping NocoBase's custom field jobTitle to title and adopting the
// users its matchKey finds in other sources, as NocoBase's one users
// table would, and the push source legacy, which does not.
func nocoConfig(w *workdir) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  driver: %s\n  dsn: %s\n", w.driver, yamlQuote(w.dsn))
	b.WriteString("tokens:\n")
	for _, tk := range []struct{ name, token, scope string }{
		{"pusher", tokPushAll, "push:*"}, {"idp", tokSCIMRead, "scim:read"}, {"ops", tokNocoAdmin, "admin"},
	} {
		fmt.Fprintf(&b, "  - name: %s\n    hash: %s\n    scopes: [%q]\n", tk.name, tokenHash(tk.token), tk.scope)
	}
	b.WriteString("sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n    watch: false\n" +
		"  - name: api\n    type: push\n    on_conflict: adopt\n    fields: {jobTitle: title}\n" +
		"  - name: legacy\n    type: push\n")
	return b.String()
}

type nocoGroupRow struct {
	ID          string `json:"id"`
	Source      string `json:"source"`
	ExternalID  string `json:"externalId"`
	DisplayName string `json:"displayName"`
	Parent      string `json:"parent"`
	Members     int    `json:"members"`
	SubGroups   int    `json:"subGroups"`
	Owners      []struct {
		ID       string `json:"id"`
		UserName string `json:"userName"`
	} `json:"owners"`
}

// TestNocoBaseParity pushes NocoBase's payloads to its path and checks
// that every field arrives in SCIM, in the admin API and in the raw
// record, and that a failed push is answered as a failure. Every store.
func TestNocoBaseParity(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			w := newWorkdir(t, driver)
			w.write(t, "staff.csv", csvOf(basePeople()))
			w.write(t, "roster.yaml", nocoConfig(w))
			p := startServeProc(t, w)
			p.waitReady(t)
			s := w.open(t)
			t.Cleanup(func() { s.Close() })
			e := &pushEnv{w: w, p: p, s: s}
			e.waitStaff(t)

			var counts reconcile.Counts // of the last push applied
			applied := func(body string) int64 {
				t.Helper()
				a := e.nocobase(t, tokPushAll, 200, body)
				r := a.Result[0]
				if *a.Code != 0 || a.Message != "success" || r.Status != store.StatusSucceeded || len(r.Failed) != 0 || r.Counts == nil {
					t.Fatalf("push: %+v", a)
				}
				counts = *r.Counts
				// The raw record is the body, byte for byte.
				tk := e.waitDone(t, r.TaskID)
				raw, err := os.ReadFile(filepath.Join(w.dir, tk.RawRecord))
				if err != nil || string(raw) != body {
					t.Fatalf("raw record %s of task %d (%v):\n%s\nwant the body:\n%s", tk.RawRecord, tk.ID, err, raw, body)
				}
				return tk.ID
			}
			// The one payload NocoBase's page on this API writes out,
			// verbatim (its curl example); the others are built from the
			// page's field tables (see the constants above).
			applied(`{"dataType":"user","records":[]}`)
			applied(nocoDepartments)
			usersTask := applied(nocoUsers)
			if tk := e.waitDone(t, usersTask); !strings.Contains(tk.Warnings, "employeeCode") {
				t.Errorf("the unmapped custom field is not named in the task's warnings: %s", tk.Warnings)
			}

			// SCIM: users with their custom field, departments nested,
			// memberships, the main department, owners in roster's
			// Group extension.
			type scimUser struct {
				ID          string `json:"id"`
				UserName    string `json:"userName"`
				DisplayName string `json:"displayName"`
				Title       string `json:"title"`
				Active      bool   `json:"active"`
				Emails      []struct {
					Value string `json:"value"`
				} `json:"emails"`
				PhoneNumbers []struct {
					Value string `json:"value"`
				} `json:"phoneNumbers"`
				Groups     []scimRef `json:"groups"`
				Enterprise struct {
					Department string `json:"department"`
				} `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
			}
			user := func(uid string) scimUser {
				t.Helper()
				var list struct {
					Resources []scimUser `json:"Resources"`
				}
				e.scim(t, "/Users?filter="+url.QueryEscape(fmt.Sprintf("externalId eq %q", uid)), 200, &list)
				if len(list.Resources) != 1 {
					t.Fatalf("%d users with externalId %s", len(list.Resources), uid)
				}
				return list.Resources[0]
			}
			jw := user("101")
			if jw.UserName != "jweiss" || jw.DisplayName != "Jürgen Weiß" || jw.Title != "Entwickler" || !jw.Active ||
				len(jw.Emails) != 1 || jw.Emails[0].Value != "jweiss@nocobase.example" ||
				len(jw.PhoneNumbers) != 1 || jw.PhoneNumbers[0].Value != "+49 30 1101" ||
				jw.Enterprise.Department != "Entwicklung" || len(jw.Groups) != 2 {
				t.Errorf("user 101 in SCIM: %+v", jw)
			}
			type scimGroup struct {
				ID          string    `json:"id"`
				ExternalID  string    `json:"externalId"`
				DisplayName string    `json:"displayName"`
				Schemas     []string  `json:"schemas"`
				Members     []scimRef `json:"members"`
				Roster      *struct {
					Owners []scimRef `json:"owners"`
				} `json:"urn:rosterd:params:scim:schemas:extension:roster:2.0:Group"`
			}
			var groups struct {
				Resources []scimGroup `json:"Resources"`
			}
			e.scim(t, "/Groups?count=1000", 200, &groups)
			byName := map[string]scimGroup{}
			for _, g := range groups.Resources {
				byName[g.DisplayName] = g
			}
			dev, head, sales := byName["Entwicklung"], byName["Zentrale"], byName["Vertrieb"]
			owners := func(g scimGroup) []string {
				var ids []string
				if g.Roster != nil {
					for _, o := range g.Roster.Owners {
						ids = append(ids, o.Value)
					}
				}
				slices.Sort(ids)
				return ids
			}
			tm := user("103")
			if dev.ExternalID != "2" || !hasMember(scimGroupJSON{Members: head.Members}, dev.ID, "Group") ||
				!hasMember(scimGroupJSON{Members: head.Members}, sales.ID, "Group") ||
				!hasMember(scimGroupJSON{Members: dev.Members}, jw.ID, "User") {
				t.Errorf("departments in SCIM: %+v", byName)
			}
			if got := owners(dev); !slices.Equal(got, []string{jw.ID}) || !slices.Contains(dev.Schemas, "urn:rosterd:params:scim:schemas:extension:roster:2.0:Group") {
				t.Errorf("owners of Entwicklung in SCIM: %v, schemas %v; want jweiss", got, dev.Schemas)
			}
			if got := owners(sales); !slices.Equal(got, []string{tm.ID}) || owners(head) != nil {
				t.Errorf("owners of Vertrieb %v, Zentrale %v", got, owners(head))
			}
			var owned struct {
				TotalResults int         `json:"totalResults"`
				Resources    []scimGroup `json:"Resources"`
			}
			e.scim(t, "/Groups?filter="+url.QueryEscape(fmt.Sprintf(`urn:rosterd:params:scim:schemas:extension:roster:2.0:Group:owners.value eq %q`, jw.ID)), 200, &owned)
			if owned.TotalResults != 1 || owned.Resources[0].ID != dev.ID {
				t.Errorf("groups filtered by owner: %+v", owned)
			}

			// The admin API: the tree of departments, member counts, owners.
			code, _, b := e.do(t, tokNocoAdmin, "GET", "/api/v1/groups?source=api", "")
			var list struct {
				Items []nocoGroupRow `json:"items"`
				Total int            `json:"total"`
			}
			if err := json.Unmarshal(b, &list); err != nil || code != 200 || list.Total != 3 || len(list.Items) != 3 {
				t.Fatalf("GET /api/v1/groups = %d %s", code, b)
			}
			rows := map[string]nocoGroupRow{}
			for _, g := range list.Items {
				rows[g.ExternalID] = g
			}
			if r := rows["2"]; r.Parent != head.ID || r.Members != 2 || len(r.Owners) != 1 || r.Owners[0].UserName != "jweiss" {
				t.Errorf("department 2 in the admin API: %+v", r)
			}
			if r := rows["1"]; r.Parent != "" || r.SubGroups != 2 || r.Members != 1 || len(r.Owners) != 0 {
				t.Errorf("department 1 in the admin API: %+v", r)
			}
			code, _, b = e.do(t, tokNocoAdmin, "GET", "/api/v1/groups/"+dev.ID, "")
			var detail struct {
				nocoGroupRow
				Users []struct {
					Name  string `json:"name"`
					Owner bool   `json:"owner"`
				} `json:"users"`
			}
			if err := json.Unmarshal(b, &detail); err != nil || code != 200 || len(detail.Users) != 2 ||
				detail.Users[0].Name != "jweiss" || !detail.Users[0].Owner || detail.Users[1].Owner {
				t.Errorf("GET /api/v1/groups/%s = %d %s", dev.ID, code, b)
			}
			if code, _, b := e.do(t, tokNocoAdmin, "GET", "/api/v1/groups/no-such-group", ""); code != 404 {
				t.Errorf("an unknown group: %d %s", code, b)
			}
			// The admin scope is needed.
			for _, tok := range []string{"", tokSCIMRead, tokPushAll} {
				if code, _, b := e.do(t, tok, "GET", "/api/v1/groups/"+dev.ID, ""); code != 401 && code != 403 {
					t.Errorf("GET /api/v1/groups/ID with token %q: %d %s", tok, code, b)
				}
			}

			// The admin API: a user with every field the push gave, the
			// mapped custom field, the main department and both
			// departments with their ids and names.
			type adminUser struct {
				ID           string `json:"id"`
				ExternalID   string `json:"externalId"`
				UserName     string `json:"userName"`
				DisplayName  string `json:"displayName"`
				Title        string `json:"title"`
				Active       bool   `json:"active"`
				Source       string `json:"source"`
				Emails       []struct{ Value string }
				PhoneNumbers []struct{ Value string }
				Groups       []scimRef `json:"groups"`
				Enterprise   struct {
					Department string `json:"department"`
				} `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
			}
			adminGet := func(id string) adminUser {
				t.Helper()
				code, _, b := e.do(t, tokNocoAdmin, "GET", "/api/v1/users/"+id, "")
				var u adminUser
				if err := json.Unmarshal(b, &u); err != nil || code != 200 {
					t.Fatalf("GET /api/v1/users/%s = %d %s", id, code, b)
				}
				return u
			}
			groupsOf := func(u adminUser) []string {
				var gs []string
				for _, g := range u.Groups {
					gs = append(gs, g.Value+"="+g.Display)
				}
				slices.Sort(gs)
				return gs
			}
			wantGroups := []string{dev.ID + "=Entwicklung", head.ID + "=Zentrale"}
			slices.Sort(wantGroups)
			au := adminGet(jw.ID)
			if au.ID != jw.ID || au.ExternalID != "101" || au.UserName != "jweiss" || au.DisplayName != "Jürgen Weiß" ||
				au.Title != "Entwickler" || !au.Active || au.Source != "api" ||
				len(au.Emails) != 1 || au.Emails[0].Value != "jweiss@nocobase.example" ||
				len(au.PhoneNumbers) != 1 || au.PhoneNumbers[0].Value != "+49 30 1101" ||
				au.Enterprise.Department != "Entwicklung" || !slices.Equal(groupsOf(au), wantGroups) {
				t.Errorf("user 101 in the admin API: %+v, groups %v; want the groups %v", au, groupsOf(au), wantGroups)
			}
			if code, _, b := e.do(t, tokNocoAdmin, "GET", "/api/v1/users/no-such-user", ""); code != 404 {
				t.Errorf("an unknown user: %d %s", code, b)
			}

			// matchKey email and phone find the users NocoBase would: the
			// records carry new uids, so only the e-mail or the phone
			// finds them; each keeps its id and takes the new uid.
			zsID := user("102").ID
			applied(nocoByEmail)
			if counts.Updated != 1 || counts.Created != 0 {
				t.Errorf("the push by e-mail: %+v; want 1 updated, none created", counts)
			}
			applied(nocoByPhone)
			if counts.Updated != 1 || counts.Created != 0 {
				t.Errorf("the push by phone: %+v; want 1 updated, none created", counts)
			}
			if zs := user("202"); zs.ID != zsID || zs.DisplayName != "Zoë S." || zs.Title != "Teamleiterin" {
				t.Errorf("user 102 after the push by e-mail as uid 202: %+v; want id %s", zs, zsID)
			}
			if jw2 := user("201"); jw2.ID != jw.ID || jw2.DisplayName != "Jürgen W." || jw2.Title != "Entwickler" {
				t.Errorf("user 101 after the push by phone as uid 201: %+v; want id %s", jw2, jw.ID)
			}
			e.scim(t, "/Groups/"+dev.ID, 200, &dev)
			if got := owners(dev); len(got) != 2 {
				t.Errorf("owners of Entwicklung after 102 became one: %v", got)
			}
			// isDeleted: the source's on_delete (deactivate).
			applied(nocoDeleted)
			if tm := user("103"); tm.Active {
				t.Errorf("user 103 after isDeleted: %+v", tm)
			}

			// matchKey username finds a user the csv source staff created
			// and api adopts it: same id, counted adopted.
			staffID := w.state(t, "staff").Users[ext(7)].ID
			if staffID == "" {
				t.Fatal("staff has no user07")
			}
			applied(nocoAdopt)
			if counts.Adopted != 1 || counts.Created != 0 {
				t.Errorf("the push by username: %+v; want 1 adopted, none created", counts)
			}
			if au := adminGet(staffID); au.Source != "api" || au.ExternalID != "107" || au.UserName != "user07" ||
				au.DisplayName != "Uwe Sieben" || au.Title != "Werkstudent" || au.Enterprise.Department != "Vertrieb" ||
				len(au.Groups) != 1 || au.Groups[0].Value != sales.ID {
				t.Errorf("user07 after api adopted it: %+v", au)
			}
			if _, still := w.state(t, "staff").Users[ext(7)]; still {
				t.Error("staff still owns user07 after api adopted it")
			}

			// A failed push is a failure in NocoBase's answer, with the
			// record that failed, and its raw record is kept.
			a := e.nocobase(t, tokPushAll, 422, nocoConflict)
			r := a.Result[0]
			if *a.Code == 0 || a.Message == "success" || r.Status != store.StatusFailed || len(r.Failed) != 1 || r.Failed[0].Index != 0 {
				t.Fatalf("a failed push: %+v", a)
			}
			tk := e.waitDone(t, r.TaskID)
			if raw, err := os.ReadFile(filepath.Join(w.dir, tk.RawRecord)); err != nil || string(raw) != nocoConflict {
				t.Errorf("the raw record of the failed push: %v %s", err, raw)
			}
		})
	}
}
