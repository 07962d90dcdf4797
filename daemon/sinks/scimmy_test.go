package sinks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/internal/scimpeer"
	"github.com/rosterd/roster/scim"
)

// teams is how many groups hold the users directly; the scim source's
// group "everyone" nests them all: 50 groups.
const teams = 49

// newTeamsUpstream is the 1,000-user directory of these tests, in 49
// teams nested in "everyone".
func newTeamsUpstream(t *testing.T, st *store.Store) *upstream {
	t.Helper()
	up := newUpstream(t, st, 1000)
	for i := range up.recs {
		up.recs[i].Groups = []string{fmt.Sprintf("team%02d", i%teams)}
	}
	up.apply()
	up.nest()
	return up
}

// peerMatches fails unless the service holds exactly the directory's
// in-scope part (every user and group in scope here): each user with
// every attribute the sink sends as the directory has it, users who left
// the directory deactivated (or absent with onRemove delete), each group
// with exactly its members, and nothing else.
func peerMatches(t *testing.T, what string, st *store.Store, peer *scimpeer.Peer, onRemove string) {
	t.Helper()
	ctx := context.Background()
	dir := st.SCIM()
	users := peer.List("/Users")
	byName := map[string]map[string]any{}
	names := map[string]string{} // service id → userName or displayName
	for _, u := range users {
		name := u["userName"].(string)
		if _, dup := byName[name]; dup {
			t.Fatalf("%s: the service holds %s twice", what, name)
		}
		byName[name], names[u["id"].(string)] = u, name
	}
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 5 {
			t.Errorf(what+": "+format, args...)
		}
	}
	var rows []store.User
	if err := st.DB().Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	live := map[string]*scim.User{}
	for after := (*scim.Position)(nil); ; {
		page, err := dir.Users(ctx, scim.Query{Count: 500, Cursor: true, After: after, Include: scim.Include{Emails: true, PhoneNumbers: true}})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Resources {
			live[u.ID] = u
		}
		if after = page.Next; after == nil {
			break
		}
	}
	expected := map[string]bool{}
	for _, r := range rows {
		got, holds := byName[r.UserName]
		if r.State == "deleted" {
			switch {
			case onRemove == config.OnRemoveDelete && holds:
				report("%s left the directory and is still on the service", r.UserName)
			case onRemove == config.OnRemoveDeactivate && holds && got["active"] != false:
				report("%s left the directory and is active on the service", r.UserName)
			}
			if holds {
				expected[r.UserName] = true
			}
			continue
		}
		expected[r.UserName] = true
		if !holds {
			report("%s is not on the service", r.UserName)
			continue
		}
		u := live[r.ID]
		var want map[string]any
		data, _ := json.Marshal(u)
		json.Unmarshal(data, &want)
		// What the sink does not send: roster's id and meta, the
		// memberships (read-only, compared as the groups' members).
		for _, k := range []string{"id", "schemas", "meta", "groups"} {
			delete(want, k)
		}
		if want["active"] == nil {
			want["active"] = true
		}
		for k, w := range want {
			if g := got[k]; !sameValue(w, g) {
				report("%s: %s is %v on the service, %v in the directory", r.UserName, k, g, w)
			}
		}
	}
	for name := range byName {
		if !expected[name] {
			report("the service holds %s, which the directory does not", name)
		}
	}

	groups := peer.List("/Groups")
	held := map[string][]string{}
	for _, g := range groups {
		names[g["id"].(string)] = g["displayName"].(string)
	}
	for _, g := range groups {
		name := g["displayName"].(string)
		if _, dup := held[name]; dup {
			t.Fatalf("%s: the service holds group %s twice", what, name)
		}
		ms := []string{}
		if list, ok := g["members"].([]any); ok {
			for _, m := range list {
				ms = append(ms, names[m.(map[string]any)["value"].(string)])
			}
		}
		slices.Sort(ms)
		held[name] = ms
	}
	page, err := dir.Groups(ctx, scim.Query{Count: 1000})
	if err != nil {
		t.Fatal(err)
	}
	wantGroups := map[string][]string{}
	for _, g := range page.Resources {
		full, err := dir.Group(ctx, g.ID, scim.Include{Members: true})
		if err != nil {
			t.Fatal(err)
		}
		ms := []string{}
		for _, m := range full.Members {
			if m.Type == "Group" {
				other, err := dir.Group(ctx, m.Value, scim.Include{})
				if err != nil {
					t.Fatal(err)
				}
				ms = append(ms, other.DisplayName)
			} else {
				u, err := dir.User(ctx, m.Value, scim.Include{})
				if err != nil {
					t.Fatal(err)
				}
				ms = append(ms, u.UserName)
			}
		}
		if len(ms) > 0 { // groups: members sends only groups with members
			slices.Sort(ms)
			wantGroups[full.DisplayName] = ms
		}
	}
	for name, w := range wantGroups {
		if g, ok := held[name]; !ok {
			report("group %s is not on the service", name)
		} else if !slices.Equal(g, w) {
			report("group %s holds %d members on the service (%v…), %d in the directory", name, len(g), g[:min(len(g), 3)], len(w))
		}
	}
	for name := range held {
		if _, ok := wantGroups[name]; !ok {
			report("the service holds group %s, which it should not", name)
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d differences", what, bad)
	}
}

// sameValue compares a value of the directory with the service's:
// objects attribute by attribute (the service may add its own, such as
// display or $ref), multi-valued attributes as sets, a false flag the
// service leaves out as false.
func sameValue(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if !sameValue(wv, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, _ := got.([]any)
		if len(g) != len(w) {
			return false
		}
		for _, wv := range w {
			if !slices.ContainsFunc(g, func(gv any) bool { return sameValue(wv, gv) }) {
				return false
			}
		}
		return true
	case bool:
		return got == w || !w && got == nil
	default:
		return want == got
	}
}

// scimmySink is a sink to the peer, in a hurry.
func scimmySink(t *testing.T, st *store.Store, peer *scimpeer.Peer, edit func(*config.Sink)) *sinks.Sink {
	t.Helper()
	cfg := config.Sink{Name: "svc", Enabled: true, URL: peer.URL, Auth: config.HTTPAuth{Bearer: token},
		Scope: config.SinkScope{Groups: config.SinkGroupsMembers}, OnRemove: config.OnRemoveDeactivate,
		Interval: config.Duration(50 * time.Millisecond), CompareEvery: config.Duration(time.Hour),
		MaxRemovals: config.Removals{Percent: 100, IsPercent: true},
		Limits:      config.SinkLimits{Concurrency: 4, Timeout: config.Duration(10 * time.Second)}}
	if edit != nil {
		edit(&cfg)
	}
	s, err := sinks.New(cfg, st, st.SCIM(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// peerUser returns the service's user of a userName.
func peerUser(t *testing.T, peer *scimpeer.Peer, name string) map[string]any {
	t.Helper()
	var list struct {
		Resources []map[string]any `json:"Resources"`
	}
	peer.Do("GET", "/Users?filter="+url.QueryEscape(fmt.Sprintf("userName eq %q", name)), nil, &list)
	if len(list.Resources) != 1 {
		t.Fatalf("the service holds %d users named %s", len(list.Resources), name)
	}
	return list.Resources[0]
}

func peerGroup(t *testing.T, peer *scimpeer.Peer, name string) map[string]any {
	t.Helper()
	var list struct {
		Resources []map[string]any `json:"Resources"`
	}
	peer.Do("GET", "/Groups?filter="+url.QueryEscape(fmt.Sprintf("displayName eq %q", name)), nil, &list)
	if len(list.Resources) != 1 {
		t.Fatalf("the service holds %d groups named %s", len(list.Resources), name)
	}
	return list.Resources[0]
}

// compareNow makes the sink's next step a full comparison, as
// compare_every does once it has passed.
func compareNow(t *testing.T, st *store.Store) {
	t.Helper()
	if err := st.SetSinkCompared(context.Background(), "svc", time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// TestSinkToScimmy provisions an independent SCIM service (the npm
// packages scimmy and scimmy-routers behind express) from a directory of
// 1,000 users in 50 nested groups, on each store: first contact with a
// service holding half of them (adopted, none twice) through /Bulk;
// updates, moves, deactivation and removals; drift on the service put
// right by the periodic comparison; removals held by max_removals, in a
// delivery and in a comparison, until approved; quarantine entered and
// left; the service restarted in the middle of a delivery. After each,
// the service equals the directory's in-scope part.
func TestSinkToScimmy(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		t0 := time.Now()
		peer := scimpeer.Start(t, scimpeer.Options{Token: token, Bulk: 100})
		up := newTeamsUpstream(t, st)
		// The service holds every other user already, under its own ids
		// (seeded through its /Bulk, 100 at a time).
		for i := 0; i < len(up.recs); i += 200 {
			var ops []any
			for j := i; j < i+200; j += 2 {
				ops = append(ops, map[string]any{"method": "POST", "path": "/Users", "bulkId": fmt.Sprint(j), "data": map[string]any{
					"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": up.recs[j].UserName, "name": map[string]string{"givenName": "Old"}}})
			}
			var res struct {
				Operations []struct {
					Status string `json:"status"`
				} `json:"Operations"`
			}
			if code := peer.Do("POST", "/Bulk", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"}, "Operations": ops}, &res); code != http.StatusOK ||
				len(res.Operations) != 100 || res.Operations[99].Status != "201" {
				t.Fatalf("seed the service: %d %+v", code, res)
			}
		}
		seeded := peer.Stats()
		if err := st.RegisterSinks(ctx, []string{"svc"}); err != nil {
			t.Fatal(err)
		}
		sink := scimmySink(t, st, peer, nil)
		t.Logf("seeded: %v", time.Since(t0))

		// First contact: half adopted, half created, all through /Bulk.
		c := step(t, sink, st)
		if c.Adopted != 500 || c.Created != 500+teams+1 || c.Failed != 0 {
			t.Fatalf("first contact: %+v; want 500 users adopted, 500 users and 50 groups created", c)
		}
		t.Logf("first contact: %v", time.Since(t0))
		stats := peer.Stats()
		if stats["POST /Users"] != 0 || stats["POST /Bulk"]-seeded["POST /Bulk"] < 10 || stats["PATCH /Users/{id}"] != 0 {
			t.Fatalf("first contact without /Bulk? requests: %v", stats)
		}
		peerMatches(t, "first contact", st, peer, config.OnRemoveDeactivate)
		t.Logf("compared: %v", time.Since(t0))
		if got := peerGroup(t, peer, "everyone")["members"].([]any); len(got) != teams {
			t.Fatalf("everyone holds %d groups on the service, want %d", len(got), teams)
		}
		if again := step(t, sink, st); again != (sinks.Counts{}) {
			t.Fatalf("a step with nothing new did %+v", again)
		}

		// Upstream: renames, a move between teams, an operator's
		// deactivation, ten users leaving.
		for i := range 20 {
			up.recs[i].GivenName = "Renamed"
		}
		up.recs[21].Groups = []string{"team00"}
		up.recs = up.recs[:990]
		up.apply()
		var bob store.User
		if err := st.DB().Where("user_name = ?", "user00100").First(&bob).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := st.SetActiveByAdmin(ctx, bob.ID, false); err != nil {
			t.Fatal(err)
		}
		if c = step(t, sink, st); c.Deactivated != 10 || c.Updated < 22 || c.Created != 0 || c.Failed != 0 {
			t.Fatalf("after changes upstream: %+v", c)
		}
		peerMatches(t, "after changes upstream", st, peer, config.OnRemoveDeactivate)

		// Drift on the service: a user changed, one deleted, a left-over
		// user activated again, a group deleted, a member taken out.
		// Nothing changed upstream, so only the comparison can see it.
		drifted := peerUser(t, peer, "user00030")
		peer.Do("PATCH", "/Users/"+drifted["id"].(string), map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "replace", "path": "name.givenName", "value": "Drifted"}}}, nil)
		peer.Do("DELETE", "/Users/"+peerUser(t, peer, "user00031")["id"].(string), nil, nil)
		peer.Do("PATCH", "/Users/"+peerUser(t, peer, "user00995")["id"].(string), map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": true}}}, nil)
		peer.Do("DELETE", "/Groups/"+peerGroup(t, peer, "team07")["id"].(string), nil, nil)
		team08 := peerGroup(t, peer, "team08")
		peer.Do("PATCH", "/Groups/"+team08["id"].(string), map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "replace", "path": "members", "value": team08["members"].([]any)[1:]}}}, nil)
		if c = step(t, sink, st); c != (sinks.Counts{}) {
			t.Fatalf("a step before the comparison is due did %+v", c)
		}
		if peerUser(t, peer, "user00030")["name"].(map[string]any)["givenName"] != "Drifted" {
			t.Fatal("the drift was put right before the comparison was due: the test proves nothing")
		}
		compareNow(t, st)
		c = step(t, sink, st)
		// user00031 and team07 created again; user00030, team08, the
		// "everyone" group (team07's new id) and user00995 put back.
		// ("everyone" may go twice: before and after team07 is back.)
		if c.Created != 2 || c.Updated < 3 || c.Updated > 4 || c.Deactivated != 1 || c.Failed != 0 {
			t.Fatalf("the comparison did %+v; want 2 created, 3 updated, 1 deactivated", c)
		}
		peerMatches(t, "after the comparison", st, peer, config.OnRemoveDeactivate)
		if compared, _ := st.SinkCompared(ctx, "svc"); time.Since(compared) > time.Minute {
			t.Fatalf("the comparison was not recorded: %v", compared)
		}

		// max_removals 5: twenty users leaving are held, then approved.
		sink = scimmySink(t, st, peer, func(c *config.Sink) { c.MaxRemovals = config.Removals{Count: 5} })
		up.recs = up.recs[:970]
		up.apply()
		heldStep(t, sink, "deactivate 20 of the 1000 users")
		if peerUser(t, peer, "user00975")["active"] != true {
			t.Fatal("a held delivery deactivated a user")
		}
		if err := st.ApproveSinkRemovals(ctx, "svc"); err != nil {
			t.Fatal(err)
		}
		if c = step(t, sink, st); c.Deactivated != 20 {
			t.Fatalf("after approval: %+v", c)
		}
		peerMatches(t, "after the approved removals", st, peer, config.OnRemoveDeactivate)
		// The comparison counts against max_removals too: eight users who
		// left, active again on the service, are held, then approved.
		for _, n := range []string{"user00970", "user00971", "user00972", "user00973", "user00974", "user00976", "user00977", "user00978"} {
			peer.Do("PATCH", "/Users/"+peerUser(t, peer, n)["id"].(string), map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": true}}}, nil)
		}
		compareNow(t, st)
		heldStep(t, sink, "deactivate 8 of the")
		if err := st.ApproveSinkRemovals(ctx, "svc"); err != nil {
			t.Fatal(err)
		}
		if c = step(t, sink, st); c.Deactivated != 8 {
			t.Fatalf("the approved comparison: %+v", c)
		}
		peerMatches(t, "after the approved comparison", st, peer, config.OnRemoveDeactivate)
		if s, _ := st.Sink(ctx, "svc"); s.Held != "" || s.Approved {
			t.Fatalf("the hold outlived its delivery: %+v", s)
		}

		// Quarantine: the service answers 503 until the sink has failed
		// QuarantineAfter runs in a row; then it answers again, and the
		// sink leaves quarantine and delivers what changed meanwhile.
		// (10 requests a second, so that the restart below comes in the
		// middle of a delivery.)
		sink = scimmySink(t, st, peer, func(c *config.Sink) { c.Limits.Rate = 10 })
		defer sinks.Quicken(sink, time.Millisecond, 300*time.Millisecond)()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		peer.Fail(http.StatusServiceUnavailable)
		go func() { sink.Run(runCtx); close(done) }()
		up.recs[40].FamilyName = "DuringTheOutage"
		up.apply()
		waitSink(t, st, "quarantine", func(s store.SinkState) bool { return s.Failures >= sinks.QuarantineAfter })
		peer.Fail(0)
		waitSink(t, st, "leaving quarantine", func(s store.SinkState) bool { return s.Failures == 0 && s.Queue == 0 })
		peerMatches(t, "after the quarantine", st, peer, config.OnRemoveDeactivate)

		// The service restarted in the middle of a delivery of 900
		// renames (kept what it had answered, as a service's database
		// would): the sink retries, and nothing is lost or doubled.
		for i := range 900 {
			up.recs[i].FamilyName = "Restarted"
		}
		before := peer.Stats()["POST /Bulk"]
		up.apply()
		for deadline := time.Now().Add(time.Minute); peer.Stats()["POST /Bulk"] < before+3; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the delivery of the renames did not start")
			}
		}
		peer.Restart()
		renamed := 0
		for _, u := range peer.List("/Users") {
			if u["name"].(map[string]any)["familyName"] == "Restarted" {
				renamed++
			}
		}
		if renamed == 900 {
			t.Fatal("the delivery was over before the service restarted: the test proves nothing")
		}
		waitSink(t, st, "delivery after the restart", func(s store.SinkState) bool { return s.Queue == 0 && s.Failures == 0 })
		stop()
		<-done
		peerMatches(t, "after the service restarted", st, peer, config.OnRemoveDeactivate)
	})
}

// heldStep steps the sink until it is held with a reason holding want.
func heldStep(t *testing.T, sink *sinks.Sink, want string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		_, err := sink.Step(context.Background())
		if errors.Is(err, sinks.ErrHeld) {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("held: %v; want %q", err, want)
			}
			return
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("Step = %v, want ErrHeld", err)
		}
	}
}

// waitSink waits until the sink's recorded state satisfies ok.
func waitSink(t *testing.T, st *store.Store, what string, ok func(store.SinkState) bool) {
	t.Helper()
	var s store.SinkState
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if s, err = st.Sink(context.Background(), "svc"); err != nil {
			t.Fatal(err)
		}
		if ok(s) {
			return
		}
	}
	t.Fatalf("%s: the sink is %+v", what, s)
}
