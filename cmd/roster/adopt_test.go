package main

// End-to-end tests of ownership (SPEC §4.4): a source that replaces
// another with on_conflict: adopt, the retired source left behind, and
// pushes whose matchKey finds users of another source; through the real
// binary, on SQLite and on PostgreSQL.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// owner is who holds a login in the directory.
type owner struct{ ID, Source, ExternalID, State string }

// owners reads every user of the directory, tombstones included, by id;
// it fails on two users that are not deleted with one login.
func owners(t *testing.T, s *store.Store) (byLogin map[string]owner, rows int) {
	t.Helper()
	byLogin = map[string]owner{}
	rs, err := s.DB().Raw(`SELECT id, source, external_id, user_name_key, state FROM users`).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var o owner
		var login string
		if err := rs.Scan(&o.ID, &o.Source, &o.ExternalID, &login, &o.State); err != nil {
			t.Fatal(err)
		}
		rows++
		if o.State == "deleted" {
			continue
		}
		if other, dup := byLogin[login]; dup {
			t.Fatalf("login %s is held twice: %+v and %+v", login, other, o)
		}
		byLogin[login] = o
	}
	return byLogin, rows
}

// sourceJSON is one source of `roster sources --json` and GET /api/v1/sources.
type sourceJSON struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	State  string `json:"state"`
	Counts struct {
		Active   int `json:"active"`
		Inactive int `json:"inactive"`
		Deleted  int `json:"deleted"`
		Groups   int `json:"groups"`
	} `json:"counts"`
}

func findSource(list []sourceJSON, name string) *sourceJSON {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// TestReplaceCSVByHTTPWithAdopt is issue 13's acceptance of ownership: a
// csv source is replaced by an http source with on_conflict: adopt. The
// daemon runs with the csv source; the config then names only the http
// source (SIGHUP). The http source's sync, held by the safety valve
// because it takes over more users than max_removals allows, is approved:
// every user keeps its id, nobody is created twice, the counts say
// adopted. The csv source, removed from the config, is listed as retired
// (CLI, admin API, metrics) with the one person the http source does not
// have, until `roster sources retire` empties it through an approved held
// task.
func TestReplaceCSVByHTTPWithAdopt(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			// The upstream has people 1 to 7 of the csv file, under its
			// own ids; person 8 left.
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var recs []map[string]any
				for i := 1; i <= 7; i++ {
					recs = append(recs, map[string]any{"id": fmt.Sprintf("hr-%d", i), "login": fmt.Sprintf("P%d", i),
						"first": "Pat", "last": fmt.Sprint(i), "mail": fmt.Sprintf("p%d@hr.example.com", i), "teams": []string{"Staff"}})
				}
				json.NewEncoder(w).Encode(recs)
			}))
			defer up.Close()

			w := newWorkdir(t, driver)
			const token = "e2e-adopt-admin"
			tokens := fmt.Sprintf("tokens:\n  - {name: ops, hash: %q, scopes: [admin]}\n", tokenHash(token))
			var csv strings.Builder
			for i := 1; i <= 8; i++ {
				fmt.Fprintf(&csv, "s%d,Pat,%d,p%d,p%d@example.com,Team,\n", i, i, i, i)
			}
			w.write(t, "staff.csv", csv.String())
			w.write(t, "roster.yaml", serveConfig(w, "")+tokens)
			p := startServeProc(t, w)
			p.waitReady(t)
			waitSourceTask(t, w, p, "staff", "first sync of staff", 30*time.Second, func(tk taskJSON) bool { return tk.Status == store.StatusSucceeded })
			s := w.open(t)
			defer s.Close()
			before, _ := owners(t, s)

			// The config now names the http source only.
			replaced := fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  driver: %s\n  dsn: %s\n", w.driver, yamlQuote(w.dsn)) +
				tokens + fmt.Sprintf("sources:\n  - name: hr\n    type: http\n    url: %s/people\n    on_conflict: adopt\n    retries: 0\n"+
				"    map: {externalId: /id, userName: /login, givenName: /first, familyName: /last, email: /mail, groups: /teams}\n", up.URL)
			w.write(t, "roster.yaml", replaced)
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			p.waitLog(t, 30*time.Second, func(l map[string]any) bool { return l["msg"] == "configuration reloaded" })
			if code, body := apiCall(t, p, token, "POST", "/api/v1/sources/hr/sync", ""); code != http.StatusAccepted {
				t.Fatalf("sync hr: %d %s", code, body)
			}
			held := waitSourceTask(t, w, p, "hr", "held sync of hr", 60*time.Second, func(tk taskJSON) bool { return tk.Status != store.StatusRunning })
			if held.Status != store.StatusHeld || held.Counts.Adopted != 7 || held.Counts.Created != 0 {
				t.Fatalf("hr's first sync: %+v; want held with 7 adoptions", held)
			}
			code, body := apiCall(t, p, token, "GET", fmt.Sprintf("/api/v1/tasks/%d", held.ID), "")
			heldView := decodeTask(t, string(body))
			if code != 200 || len(heldView.Removals) != 7 || heldView.Removals[0].Action != "adopt" || !strings.Contains(heldView.Hold, "adopt 7") {
				t.Fatalf("the held task shows %d changes, hold %q: %s", len(heldView.Removals), heldView.Hold, body)
			}
			code, body = apiCall(t, p, token, "POST", fmt.Sprintf("/api/v1/tasks/%d/approve", held.ID), "")
			approved := decodeTask(t, string(body))
			if code != 200 || approved.Status != store.StatusSucceeded {
				t.Fatalf("approve: %d %s", code, body)
			}
			wantTask(t, approved, "hr", store.StatusSucceeded, countsJSON{Adopted: 7})

			after, rows := owners(t, s)
			for i := 1; i <= 7; i++ {
				login := fmt.Sprintf("p%d", i)
				a, b := after[login], before[login]
				if a.ID != b.ID || a.Source != "hr" || a.ExternalID != fmt.Sprintf("hr-%d", i) || a.State != "active" {
					t.Errorf("%s: %+v, was %+v; want the same id, owned by hr", login, a, b)
				}
			}
			if rows != 8 || after["p8"].Source != "staff" || after["p8"].ID != before["p8"].ID {
				t.Errorf("%d users after the adoption (want 8: nobody created twice); p8 %+v", rows, after["p8"])
			}

			// The csv source is retired: listed with what it still owns.
			var api struct{ Items []sourceJSON }
			_, body = apiCall(t, p, token, "GET", "/api/v1/sources", "")
			json.Unmarshal(body, &api)
			if st := findSource(api.Items, "staff"); st == nil || st.State != "retired" || st.Counts.Active != 1 || st.Counts.Groups != 1 {
				t.Errorf("GET /api/v1/sources: staff is %+v; want retired with 1 active user and 1 group: %s", st, body)
			}
			if hr := findSource(api.Items, "hr"); hr == nil || hr.Counts.Active != 7 || hr.Counts.Groups != 1 {
				t.Errorf("GET /api/v1/sources: hr is %+v", hr)
			}
			if _, m := p.get(t, "/metrics"); !strings.Contains(m, `roster_directory_users{source="staff",state="active"} 1`) ||
				!strings.Contains(m, `roster_directory_users{source="hr",state="active"} 7`) ||
				!strings.Contains(m, `roster_sync_records_total{action="adopted",source="hr"} 7`) ||
				!strings.Contains(m, `roster_source_retired{source="staff"} 1`) || strings.Contains(m, `roster_source_retired{source="hr"}`) {
				t.Errorf("/metrics lacks the retired source's users, the retired source or the adoptions:\n%s",
					grepLines(m, "roster_directory_users", "roster_sync_records_total", "roster_source_retired"))
			}
			var cli []sourceJSON
			json.Unmarshal([]byte(w.want(t, 0, "sources", "--json").stdout), &cli)
			if st := findSource(cli, "staff"); st == nil || st.State != "retired" || st.Counts.Active != 1 {
				t.Errorf("roster sources: staff is %+v", st)
			}
			if out := w.want(t, 0, "sources").stdout; !strings.Contains(out, "retired") {
				t.Errorf("roster sources does not say retired:\n%s", out)
			}

			// A configured source is not retired; the retired one is, by a
			// held task that changes nothing until approved.
			if r := w.run(t, "sources", "retire", "hr"); r.code != 2 || !strings.Contains(r.stderr, "still in") {
				t.Errorf("retire a configured source:\n%s", r)
			}
			retire := w.task(t, 0, "sources", "retire", "staff", "--orphans", "delete", "--json")
			if retire.Status != store.StatusHeld || retire.Trigger != "retire" || len(retire.Removals) != 1 || retire.Removals[0].After.ID != before["p8"].ID {
				t.Fatalf("roster sources retire: %+v", retire)
			}
			if now, _ := owners(t, s); now["p8"].State != "active" {
				t.Fatalf("a held retirement changed the directory: %+v", now["p8"])
			}
			done := w.task(t, 0, "approve", fmt.Sprint(retire.ID), "--json")
			wantTask(t, done, "staff", store.StatusSucceeded, countsJSON{Deleted: 1})
			cli = nil
			json.Unmarshal([]byte(w.want(t, 0, "sources", "--json").stdout), &cli)
			if st := findSource(cli, "staff"); st != nil {
				t.Errorf("roster sources after the retirement still lists staff: %+v", st)
			}
			_, body = apiCall(t, p, token, "GET", "/api/v1/sources", "")
			api.Items = nil
			json.Unmarshal(body, &api)
			if st := findSource(api.Items, "staff"); st != nil {
				t.Errorf("GET /api/v1/sources after the retirement still lists staff: %+v", st)
			}
			if _, m := p.get(t, "/metrics"); strings.Contains(m, `roster_source_retired{source="staff"}`) {
				t.Errorf("/metrics after the retirement still calls staff retired:\n%s", grepLines(m, "roster_source_retired"))
			}
			var groups int
			s.DB().Raw(`SELECT COUNT(*) FROM groups WHERE source = 'staff'`).Row().Scan(&groups)
			if final, _ := owners(t, s); len(final) != 7 || groups != 0 {
				t.Errorf("after the retirement %d users live and staff keeps %d groups; want 7 and 0", len(final), groups)
			}

			// hr's next sync finds everyone its own.
			next := w.task(t, 0, "sync", "hr", "--force", "--json")
			wantTask(t, next, "hr", store.StatusSucceeded, countsJSON{Unchanged: 7})
			if code := p.signalAndWait(t, syscall.SIGTERM, 45*time.Second); code != 0 {
				t.Errorf("roster serve exited with %d", code)
			}
		})
	}
}

// grepLines keeps the lines of s that contain one of the words.
func grepLines(s string, words ...string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestPushMatchKeyAdopts: a push source with on_conflict: adopt whose
// matchKey (username, email, phone) finds users of a csv source takes
// them over with their ids, as NocoBase's matchKey finds users in its one
// users table; a push source without adopt fails the task instead.
func TestPushMatchKeyAdopts(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			w := newWorkdir(t, driver)
			w.write(t, "staff.csv", "s1,Ann,One,ann,ann@example.com,Team,,+49 30 1\ns2,Ben,Two,ben,ben@example.com,Team,,+49 30 2\ns3,Cid,Three,cid,cid@example.com,,,+49 30 3\n")
			w.write(t, "roster.yaml", fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  driver: %s\n  dsn: %s\n", w.driver, yamlQuote(w.dsn))+
				fmt.Sprintf("tokens:\n  - {name: pusher, hash: %q, scopes: [\"push:*\"]}\n", tokenHash(tokPushAll))+
				"sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n    watch: false\n"+
				"    extra_columns: ['phoneNumbers[type eq \"work\"].value']\n"+
				"  - name: api\n    type: push\n    on_conflict: adopt\n  - name: strict\n    type: push\n")
			p := startServeProc(t, w)
			p.waitReady(t)
			waitSourceTask(t, w, p, "staff", "first sync of staff", 30*time.Second, func(tk taskJSON) bool { return tk.Status == store.StatusSucceeded })
			s := w.open(t)
			defer s.Close()
			before, _ := owners(t, s)
			e := &pushEnv{w: w, p: p, s: s}

			push := func(source, matchKey string, rec map[string]any) taskJSON {
				t.Helper()
				b, _ := json.Marshal(map[string]any{"dataType": "user", "matchKey": matchKey, "records": []any{rec}})
				code, _, body := e.do(t, tokPushAll, "POST", pushPath(source), string(b))
				var accepted struct {
					ID int64 `json:"id"`
				}
				if json.Unmarshal(body, &accepted); code != http.StatusAccepted || accepted.ID == 0 {
					t.Fatalf("push to %s: %d %s", source, code, body)
				}
				return waitSourceTask(t, w, p, source, "the push's task", 30*time.Second, func(tk taskJSON) bool {
					return tk.ID == accepted.ID && tk.Status != store.StatusQueued && tk.Status != store.StatusRunning
				})
			}

			failed := push("strict", "username", map[string]any{"uid": "x1", "username": "ann"})
			if failed.Status != store.StatusFailed || len(failed.Errors) != 1 ||
				!strings.Contains(failed.Errors[0].Message, `"ann" finds a user of source "staff"`) {
				t.Errorf("a push without adopt whose matchKey finds staff's user: %+v", failed)
			}
			for _, c := range []struct {
				login, matchKey string
				rec             map[string]any
			}{
				{"ann", "username", map[string]any{"uid": "n1", "username": "ANN", "nickname": "Ann One"}},
				{"ben", "email", map[string]any{"uid": "n2", "email": "Ben@example.com", "username": "ben"}},
				{"cid", "phone", map[string]any{"uid": "n3", "phone": "+49 30 3", "username": "cid.three"}},
			} {
				tk := push("api", c.matchKey, c.rec)
				wantTask(t, tk, "api", store.StatusSucceeded, countsJSON{Adopted: 1})
				now, rows := owners(t, s)
				login := strings.ToLower(c.rec["username"].(string))
				if got := now[login]; got.ID != before[c.login].ID || got.Source != "api" || got.ExternalID != c.rec["uid"] {
					t.Errorf("matchKey %s: %s is %+v, was %+v; want the same id, owned by api", c.matchKey, login, got, before[c.login])
				}
				if rows != 3 {
					t.Errorf("matchKey %s: %d users; want 3 (nobody created)", c.matchKey, rows)
				}
			}
			// The adopted users left staff's group.
			var members int
			s.DB().Raw(`SELECT COUNT(*) FROM memberships m JOIN groups g ON g.id = m.group_id WHERE g.source = 'staff'`).Row().Scan(&members)
			if members != 0 {
				t.Errorf("staff's group keeps %d members after they were adopted", members)
			}
		})
	}
}
