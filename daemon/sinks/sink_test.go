package sinks_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/sinks"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/sources"
)

const token = "sink-test-token"

// service is a roster serving SCIM with a writable scim source: what a
// sink provisions in these tests.
type service struct {
	t     *testing.T
	st    *store.Store
	srv   *httptest.Server
	calls atomic.Int64
	// fail, when set, answers every request with that status.
	fail atomic.Int32
	// noPatch hides PATCH from /ServiceProviderConfig.
	noPatch bool
}

func tokens(scopes ...string) scim.Authenticator {
	sum := sha256.Sum256([]byte(token))
	toks := []config.Token{{Name: "t", Hash: "sha256:" + hex.EncodeToString(sum[:]), Scopes: scopes}}
	return scim.Tokens(func() []config.Token { return toks })
}

func newService(t *testing.T, driver string) *service {
	t.Helper()
	st := storetest.Open(t, driver)
	if err := st.SyncSources(context.Background(), []string{"idp"}, []string{config.TypeSCIM}); err != nil {
		t.Fatal(err)
	}
	svc := &service{t: t, st: st}
	h := scim.NewHandler(scim.Options{
		Directory: st.SCIM(), Writer: st.SCIMWriter(), Source: func() string { return "idp" },
		Authenticator: tokens(config.ScopeSCIMWrite),
	})
	svc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		svc.calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		if code := svc.fail.Load(); code != 0 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, `{"detail":"down for the test"}`, int(code))
			return
		}
		if svc.noPatch && strings.HasSuffix(r.URL.Path, "/ServiceProviderConfig") {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var spc map[string]any
			json.Unmarshal(rec.Body.Bytes(), &spc)
			spc["patch"] = map[string]any{"supported": false}
			json.NewEncoder(w).Encode(spc)
			return
		}
		if svc.noPatch && r.Method == http.MethodPatch {
			http.Error(w, "PATCH is not supported", http.StatusNotImplemented)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(svc.srv.Close)
	return svc
}

func (s *service) do(method, path string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.srv.URL+"/scim/v2"+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return res.StatusCode
}

// held is a user as the service holds it, as compared with the directory.
type held struct {
	UserName, Given, Family string
	Active                  bool
}

type wireUser struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	Name     struct {
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
	} `json:"name"`
	Active *bool `json:"active"`
}

type wireGroup struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Members     []struct {
		Value string `json:"value"`
	} `json:"members"`
}

// users lists every user the service holds, by userName; two users of one
// userName fail the test.
func (s *service) users() map[string]held {
	s.t.Helper()
	out := map[string]held{}
	for start := 1; ; start += 500 {
		var page struct {
			TotalResults int        `json:"totalResults"`
			Resources    []wireUser `json:"Resources"`
		}
		s.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=500", start), nil, &page)
		for _, u := range page.Resources {
			if _, dup := out[u.UserName]; dup {
				s.t.Fatalf("the service holds %s twice", u.UserName)
			}
			out[u.UserName] = held{u.UserName, u.Name.GivenName, u.Name.FamilyName, u.Active == nil || *u.Active}
		}
		if start+500 > page.TotalResults {
			return out
		}
	}
}

// groups lists the service's groups by displayName, each with the sorted
// userNames or displayNames of its members.
func (s *service) groups() map[string][]string {
	s.t.Helper()
	names := map[string]string{}
	var all []wireGroup
	for start := 1; ; start += 200 {
		var page struct {
			TotalResults int         `json:"totalResults"`
			Resources    []wireGroup `json:"Resources"`
		}
		s.do("GET", fmt.Sprintf("/Groups?startIndex=%d&count=200", start), nil, &page)
		all = append(all, page.Resources...)
		if start+200 > page.TotalResults {
			break
		}
	}
	for _, g := range all {
		names[g.ID] = g.DisplayName
	}
	for start := 1; ; start += 500 {
		var page struct {
			TotalResults int        `json:"totalResults"`
			Resources    []wireUser `json:"Resources"`
		}
		s.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=500", start), nil, &page)
		for _, u := range page.Resources {
			names[u.ID] = u.UserName
		}
		if start+500 > page.TotalResults {
			break
		}
	}
	out := map[string][]string{}
	for _, g := range all {
		ms := []string{}
		for _, m := range g.Members {
			ms = append(ms, names[m.Value])
		}
		slices.Sort(ms)
		out[g.DisplayName] = ms
	}
	return out
}

// upstream is the directory the sink provisions from: a csv-like source
// "staff" applied through the store, and a scim source "idp" whose group
// "everyone" nests the teams.
type upstream struct {
	t    *testing.T
	st   *store.Store
	recs []sources.Record
	api  *httptest.Server
}

func newUpstream(t *testing.T, st *store.Store, n int) *upstream {
	t.Helper()
	if err := st.SyncSources(context.Background(), []string{"staff", "idp"}, []string{config.TypeCSV, config.TypeSCIM}); err != nil {
		t.Fatal(err)
	}
	u := &upstream{t: t, st: st}
	for i := range n {
		u.recs = append(u.recs, sources.Record{Line: i + 1, ExternalID: fmt.Sprintf("e%05d", i), GivenName: fmt.Sprintf("G%d", i),
			FamilyName: fmt.Sprintf("F%d", i), UserName: fmt.Sprintf("user%05d", i), Email: fmt.Sprintf("user%05d@example.com", i),
			Groups: []string{fmt.Sprintf("team%d", i%5)}})
	}
	u.apply()
	u.api = httptest.NewServer(scim.NewHandler(scim.Options{
		Directory: st.SCIM(), Writer: st.SCIMWriter(), Source: func() string { return "idp" },
		Authenticator: tokens(config.ScopeSCIMWrite),
	}))
	t.Cleanup(u.api.Close)
	return u
}

func (u *upstream) apply() {
	u.t.Helper()
	ctx := context.Background()
	snap, err := u.st.Snapshot(ctx, "staff")
	if err != nil {
		u.t.Fatal(err)
	}
	var keys []string
	for _, r := range u.recs {
		keys = append(keys, reconcile.Key(r.UserName))
	}
	if snap.Foreign, err = u.st.ForeignLogins(ctx, "staff", keys); err != nil {
		u.t.Fatal(err)
	}
	set := reconcile.Settings{Orphans: reconcile.OrphansDelete, ActivateNew: true, Restore: true}
	plan := reconcile.PlanSnapshot(u.recs, snap, set, func() string { return uuid.Must(uuid.NewV7()).String() })
	if err := u.st.Apply(ctx, "staff", plan, uuid.NewString()); err != nil {
		u.t.Fatal(err)
	}
}

// nest makes the scim source's group "everyone" hold the teams.
func (u *upstream) nest() {
	u.t.Helper()
	var members []map[string]string
	page, err := u.st.SCIM().Groups(context.Background(), scim.Query{Count: 100})
	if err != nil {
		u.t.Fatal(err)
	}
	for _, g := range page.Resources {
		members = append(members, map[string]string{"value": g.ID, "type": "Group"})
	}
	body, _ := json.Marshal(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "everyone", "members": members})
	req, _ := http.NewRequest("POST", u.api.URL+"/scim/v2/Groups", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		u.t.Fatalf("create the nested group: %d", res.StatusCode)
	}
}

// want is the service's expected users: the directory's, with removed
// users as on_remove leaves them.
func (u *upstream) want(removed map[string]bool, deleted bool) map[string]held {
	u.t.Helper()
	out := map[string]held{}
	var all []store.User
	if err := u.st.DB().Find(&all).Error; err != nil {
		u.t.Fatal(err)
	}
	for _, x := range all {
		gone := x.State == reconcile.StateDeleted
		if gone && (deleted || !removed[x.UserName]) {
			continue
		}
		out[x.UserName] = held{x.UserName, x.GivenName, x.FamilyName, x.Active && !gone}
	}
	return out
}

func sinkConfig(url string) config.Sink {
	return config.Sink{Name: "svc", Enabled: true, URL: url + "/scim/v2", Auth: config.HTTPAuth{Bearer: token},
		Scope: config.SinkScope{Groups: config.SinkGroupsMembers}, OnRemove: config.OnRemoveDeactivate,
		Interval: config.Duration(time.Second), MaxRemovals: config.Removals{Percent: 100, IsPercent: true}, Limits: config.SinkLimits{Concurrency: 4, Timeout: config.Duration(10 * time.Second)}}
}

// step steps the sink until its queue is empty: on PostgreSQL a write
// transaction elsewhere on the server (another test) may hold entries
// back for a while.
func step(t *testing.T, s *sinks.Sink, st *store.Store) sinks.Counts {
	t.Helper()
	var total sinks.Counts
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		c, err := s.Step(context.Background())
		if err != nil {
			t.Fatalf("Step: %v", err)
		}
		if len(s.Errors) > 0 {
			t.Fatalf("the service refused resources: %v", s.Errors)
		}
		total.Created += c.Created
		total.Adopted += c.Adopted
		total.Updated += c.Updated
		total.Deactivated += c.Deactivated
		total.Deleted += c.Deleted
		total.Failed += c.Failed
		state, err := st.Sink(context.Background(), "svc")
		if err != nil {
			t.Fatal(err)
		}
		if state.Queue == 0 || time.Now().After(deadline) {
			return total
		}
	}
}

func equalUsers(t *testing.T, what string, got, want map[string]held) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: the service holds %d users, want %d", what, len(got), len(want))
	}
	bad := 0
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			if bad++; bad <= 5 {
				t.Errorf("%s: %s is %+v on the service, want %+v", what, k, got[k], w)
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			if bad++; bad <= 5 {
				t.Errorf("%s: the service holds %s, which it should not", what, k)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestSinkProvisionsAnotherRoster provisions a roster serving SCIM from a
// directory of 1,000 users in five teams nested in a group: first contact
// with a service that holds half of them already, then changes, removals
// by deactivation and by deletion, a service that lost users, and an
// outage.
func TestSinkProvisionsAnotherRoster(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		const n = 1000
		up := newUpstream(t, st, n)
		up.nest()
		svc := newService(t, st.Driver())

		// The service holds every other user already, under its own ids.
		for i := 0; i < n; i += 2 {
			r := up.recs[i]
			code := svc.do("POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
				"userName": r.UserName, "name": map[string]string{"givenName": "old"}, "active": true}, nil)
			if code != http.StatusCreated {
				t.Fatalf("seed the service: %d", code)
			}
		}

		if err := st.RegisterSinks(ctx, []string{"svc"}); err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		sink, err := sinks.New(sinkConfig(svc.srv.URL), st, st.SCIM(), nil, log)
		if err != nil {
			t.Fatal(err)
		}
		c := step(t, sink, st)
		if c.Created != n/2+6 || c.Adopted != n/2 || c.Failed != 0 {
			t.Fatalf("first contact: %+v; want %d users and 6 groups created, %d users adopted", c, n/2, n/2)
		}
		equalUsers(t, "first contact", svc.users(), up.want(nil, false))
		groups := svc.groups()
		if len(groups) != 6 || len(groups["team3"]) != n/5 || !slices.Equal(groups["everyone"], []string{"team0", "team1", "team2", "team3", "team4"}) {
			t.Fatalf("groups on the service: %d, team3 has %d members, everyone holds %v", len(groups), len(groups["team3"]), groups["everyone"])
		}
		if again := step(t, sink, st); again != (sinks.Counts{}) {
			t.Fatalf("a step with nothing new did %+v", again)
		}

		// Changes upstream: names, a move between teams, users leaving
		// (tombstones), an operator's deactivation.
		for i := 0; i < 20; i++ {
			up.recs[i].GivenName = "Renamed"
		}
		up.recs[21].Groups = []string{"team0"}
		removed := map[string]bool{}
		for _, r := range up.recs[990:] {
			removed[r.UserName] = true
		}
		up.recs = up.recs[:990]
		up.apply()
		var bob store.User
		if err := st.DB().Where("user_name = ?", "user00100").First(&bob).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := st.SetActiveByAdmin(ctx, bob.ID, false); err != nil {
			t.Fatal(err)
		}
		c = step(t, sink, st)
		if c.Updated < 21 || c.Deactivated != 10 || c.Created != 0 {
			t.Fatalf("after changes: %+v", c)
		}
		equalUsers(t, "after changes", svc.users(), up.want(removed, false))
		if g := svc.groups(); !slices.Contains(g["team0"], "user00021") || slices.Contains(g["team1"], "user00021") ||
			slices.Contains(g["team0"], "user00990") {
			t.Fatalf("memberships after the move: user00021 in team0 %v, in team1 %v",
				slices.Contains(g["team0"], "user00021"), slices.Contains(g["team1"], "user00021"))
		}

		// The service lost a user it held: a change of that user creates
		// it again.
		var lost struct {
			Resources []wireUser `json:"Resources"`
		}
		svc.do("GET", `/Users?filter=userName%20eq%20%22user00005%22`, nil, &lost)
		if code := svc.do("DELETE", "/Users/"+lost.Resources[0].ID, nil, nil); code != http.StatusNoContent {
			t.Fatalf("delete on the service: %d", code)
		}
		up.recs[5].FamilyName = "Back"
		up.apply()
		if c = step(t, sink, st); c.Created != 1 {
			t.Fatalf("a user the service lost: %+v", c)
		}

		// An outage: the step fails, nothing is lost, and the next one
		// delivers.
		up.recs[6].FamilyName = "During the outage"
		up.apply()
		svc.fail.Store(http.StatusServiceUnavailable)
		if _, err := sink.Step(ctx); err == nil {
			t.Fatal("a step against a failing service succeeded")
		}
		svc.fail.Store(0)
		step(t, sink, st)
		equalUsers(t, "after the outage", svc.users(), up.want(removed, false))

		// With on_remove: delete and a service without PATCH, removals
		// delete and updates PUT.
		svc.noPatch = true
		cfg := sinkConfig(svc.srv.URL)
		cfg.OnRemove = config.OnRemoveDelete
		if sink, err = sinks.New(cfg, st, st.SCIM(), nil, log); err != nil {
			t.Fatal(err)
		}
		removed2 := map[string]bool{}
		for _, r := range up.recs[980:] {
			removed2[r.UserName] = true
		}
		up.recs = up.recs[:980]
		up.recs[7].GivenName = "Put"
		up.apply()
		if c = step(t, sink, st); c.Deleted != 10 || c.Updated < 1 {
			t.Fatalf("with on_remove delete: %+v", c)
		}
		want := up.want(removed, false)
		for k := range removed2 {
			delete(want, k)
		}
		equalUsers(t, "after deletions", svc.users(), want)
		if got := svc.users()["user00007"].Given; got != "Put" {
			t.Fatalf("update by PUT: given name %q", got)
		}
		if st, err := st.Sink(ctx, "svc"); err != nil || st.Queue != 0 {
			t.Fatalf("queue after delivery: %+v, %v", st, err)
		}
	})
}

// TestSinkScope checks that only the scope's users go, and that a user
// leaving the scope is removed from the service.
func TestSinkScope(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		up := newUpstream(t, st, 20)
		svc := newService(t, store.SQLite)
		if err := st.RegisterSinks(ctx, []string{"svc"}); err != nil {
			t.Fatal(err)
		}
		cfg := sinkConfig(svc.srv.URL)
		cfg.Scope = config.SinkScope{Sources: []string{"staff"}, Filter: `name.givenName sw "G1"`, Groups: config.SinkGroupsNone}
		sink, err := sinks.New(cfg, st, st.SCIM(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		step(t, sink, st)
		got := svc.users()
		var names []string
		for k := range got {
			names = append(names, k)
		}
		slices.Sort(names)
		want := []string{"user00001"}
		for i := 10; i < 20; i++ {
			want = append(want, fmt.Sprintf("user%05d", i))
		}
		if !slices.Equal(names, want) {
			t.Fatalf("in scope on the service: %v, want %v", names, want)
		}
		if g := svc.groups(); len(g) != 0 {
			t.Fatalf("groups: none sent groups %v", g)
		}
		up.recs[1].GivenName = "Out"
		up.apply()
		step(t, sink, st)
		if u := svc.users()["user00001"]; u.Active {
			t.Fatalf("a user who left the scope is still active on the service")
		}
	})
}

// TestSinkHoldsRemovals checks max_removals: a delivery that would
// deactivate more users than it allows changes nothing on the service
// until an operator approves it, and then goes through once.
func TestSinkHoldsRemovals(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		up := newUpstream(t, st, 20)
		svc := newService(t, store.SQLite)
		if err := st.RegisterSinks(ctx, []string{"svc"}); err != nil {
			t.Fatal(err)
		}
		cfg := sinkConfig(svc.srv.URL)
		cfg.MaxRemovals = config.Removals{Count: 2}
		sink, err := sinks.New(cfg, st, st.SCIM(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		step(t, sink, st)
		up.recs = up.recs[:17] // three leave: more than 2
		up.apply()
		// On PostgreSQL the outbox is read only up to the oldest running
		// transaction of the server (another package's test may hold one):
		// the removals may show a few Steps later, never partly.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			_, err := sink.Step(ctx)
			if errors.Is(err, sinks.ErrHeld) {
				break
			}
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("Step with 3 removals and max_removals 2 = %v, want ErrHeld", err)
			}
		}
		if u := svc.users()["user00019"]; !u.Active {
			t.Fatal("a held delivery deactivated a user")
		}
		state, _ := st.Sink(ctx, "svc")
		if !strings.Contains(state.Held, "deactivate 3 of the 20 users") || state.Queue == 0 {
			t.Fatalf("held state: %+v", state)
		}
		if err := st.ApproveSinkRemovals(ctx, "svc"); err != nil {
			t.Fatal(err)
		}
		if c := step(t, sink, st); c.Deactivated != 3 {
			t.Fatalf("after approval: %+v", c)
		}
		if state, _ := st.Sink(ctx, "svc"); state.Held != "" || state.Approved {
			t.Fatalf("the hold outlived its delivery: %+v", state)
		}
		// Within the limit, nothing is held.
		up.recs = up.recs[:15]
		up.apply()
		if c := step(t, sink, st); c.Deactivated != 2 {
			t.Fatalf("two removals: %+v", c)
		}
		if err := st.ApproveSinkRemovals(ctx, "svc"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("approving a sink that is not held = %v", err)
		}
	})
}
