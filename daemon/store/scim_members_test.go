package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/sources"
)

// staffInGroups syncs n users into source staff, every one in
// "all-staff", the first 40 in "mid-staff" and the first 3 in
// "small-staff".
func staffInGroups(t *testing.T, s *store.Store, n int) {
	t.Helper()
	recs := make([]sources.Record, n)
	for i := range recs {
		groups := []string{"all-staff"}
		if i < 40 {
			groups = append(groups, "mid-staff")
		}
		if i < 3 {
			groups = append(groups, "small-staff")
		}
		recs[i] = rec(i+1, fmt.Sprint(i+1), fmt.Sprintf("user%06d", i+1), groups...)
	}
	set := reconcile.Settings{Orphans: reconcile.OrphansDelete, ActivateNew: true, Restore: true}
	if err := s.Apply(context.Background(), "staff", plan(t, s, "staff", recs, set, seq()), "fp-groups"); err != nil {
		t.Fatal(err)
	}
}

type wireGroup struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Members     []struct {
		Value   string `json:"value"`
		Ref     string `json:"$ref"`
		Display string `json:"display"`
		Type    string `json:"type"`
	} `json:"members"`
	Meta *struct {
		Version string `json:"version"`
	} `json:"meta"`
}

func (g *wireGroup) memberIDs() []string {
	var ids []string
	for _, m := range g.Members {
		ids = append(ids, m.Value)
	}
	return ids
}

// storedMembers is what the database holds, in member id order.
func storedMembers(t *testing.T, s *store.Store, gid string) []string {
	t.Helper()
	var ids []string
	if err := s.DB().Raw(`SELECT member_id FROM memberships WHERE group_id = ? ORDER BY member_id`, gid).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids) // Go's order, which both stores' id order is
	return ids
}

// TestSCIMGroupMembersInPieces: groups whose members do not fit a page's
// share are answered whole, read in pieces while the answer is written
// (lists, a group by id, a PATCH), with projections applied to every
// piece, on both stores.
func TestSCIMGroupMembersInPieces(t *testing.T) {
	defer store.SetMembersPerPage(25)()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		staffInGroups(t, s, 2300)

		l := want(t, e.do("GET", "/scim/v2/Groups?count=100", readTok, ""), http.StatusOK, "", "")
		var list struct {
			TotalResults int         `json:"totalResults"`
			Resources    []wireGroup `json:"Resources"`
		}
		b, _ := json.Marshal(l)
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatal(err)
		}
		if list.TotalResults != 3 || len(list.Resources) != 3 {
			t.Fatalf("%d groups, want 3: %.300s", list.TotalResults, b)
		}
		sizes := map[string]int{}
		for _, g := range list.Resources {
			if got, want := g.memberIDs(), storedMembers(t, s, g.ID); !slices.Equal(got, want) {
				t.Errorf("group %s: %d members answered, %d stored (or another order)", g.DisplayName, len(got), len(want))
			}
			for _, m := range g.Members {
				if m.Type != "User" || !strings.HasSuffix(m.Ref, "/Users/"+m.Value) || !strings.HasPrefix(m.Display, "G") {
					t.Fatalf("group %s: member %+v is not finished", g.DisplayName, m)
				}
			}
			if g.Meta == nil || g.Meta.Version == "" {
				t.Errorf("group %s has no meta after its members", g.DisplayName)
			}
			sizes[g.DisplayName] = len(g.Members)
		}
		if sizes["all-staff"] != 2300 || sizes["mid-staff"] != 40 || sizes["small-staff"] != 3 {
			t.Errorf("member counts %v", sizes)
		}

		var all wireGroup
		for _, g := range list.Resources {
			if g.DisplayName == "all-staff" {
				all = g
			}
		}
		one := e.do("GET", "/scim/v2/Groups/"+all.ID, readTok, "")
		var got wireGroup
		if err := json.Unmarshal(one.body, &got); err != nil || one.status != http.StatusOK {
			t.Fatalf("GET the group: %d %v %.300s", one.status, err, one.body)
		}
		if !slices.Equal(got.memberIDs(), all.memberIDs()) || one.header.Get("ETag") != all.Meta.Version {
			t.Errorf("GET by id: %d members, ETag %q", len(got.Members), one.header.Get("ETag"))
		}

		only := e.do("GET", "/scim/v2/Groups/"+all.ID+"?attributes=members.value", readTok, "")
		got = wireGroup{}
		if err := json.Unmarshal(only.body, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Members) != 2300 || got.Members[0].Ref != "" || got.Members[0].Display != "" || got.Meta != nil || got.DisplayName != "" {
			t.Errorf("attributes=members.value: %d members, first %+v, meta %v", len(got.Members), got.Members[0], got.Meta)
		}
		none := e.do("GET", "/scim/v2/Groups/"+all.ID+"?excludedAttributes=members", readTok, "")
		if strings.Contains(string(none.body), `"members"`) || !strings.Contains(string(none.body), `"all-staff"`) {
			t.Errorf("excludedAttributes=members: %.300s", none.body)
		}

		// A group of the scim source as large, changed by a PATCH that
		// adds one member: the answer and the store keep the others.
		ids := storedMembers(t, s, all.ID)
		var members []string
		for _, id := range ids[:2200] {
			members = append(members, `{"value":"`+id+`"}`)
		}
		team := want(t, e.do("POST", "/scim/v2/Groups", writeTok, `{"displayName":"team","members":[`+strings.Join(members, ",")+`]}`), http.StatusCreated, "", "")
		tid := team["id"].(string)
		p := e.do("PATCH", "/scim/v2/Groups/"+tid, writeTok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"add","path":"members","value":[{"value":"`+ids[2299]+`"}]}]}`)
		got = wireGroup{}
		if err := json.Unmarshal(p.body, &got); err != nil || p.status != http.StatusOK {
			t.Fatalf("PATCH: %d %v %.300s", p.status, err, p.body)
		}
		if len(got.Members) != 2201 || len(storedMembers(t, s, tid)) != 2201 {
			t.Errorf("after PATCH: %d members answered, %d stored; want 2201", len(got.Members), len(storedMembers(t, s, tid)))
		}
	})
}

// TestSCIMGroupAnswerMemory: the worst group answer, every member of a
// directory-wide group, costs the heap a small, fixed amount however
// large the answer: resources are encoded one at a time and members read
// in pieces. Before, the answer and every member were held at once,
// twice the answer's size (issue 16: 96 MB for one request).
func TestSCIMGroupAnswerMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs 60,000 users")
	}
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		staffInGroups(t, s, 60000)
		for _, path := range []string{
			`/scim/v2/Groups?filter=displayName+sw+%22all%22`,
			`/scim/v2/Groups?count=1000`,
		} {
			answer, peak := heapPeakDuring(t, func() int64 {
				req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+readTok)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				n, err := io.Copy(io.Discard, res.Body)
				if err != nil || res.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d %v", path, res.StatusCode, err)
				}
				return n
			})
			t.Logf("%s: answer %.1f MiB, heap grew at most %.1f MiB", path, float64(answer)/(1<<20), float64(peak)/(1<<20))
			if answer < 8<<20 {
				t.Fatalf("the answer is %d bytes; the test needs one larger than its bound", answer)
			}
			if peak > 6<<20 {
				t.Errorf("%s: the heap grew by %.1f MiB for a %.1f MiB answer; want at most 6 MiB", path, float64(peak)/(1<<20), float64(answer)/(1<<20))
			}
		}
	})
}

// heapPeakDuring runs fn with the collector kept tight and returns fn's
// result and the most the live heap grew over its level before fn,
// sampled every millisecond.
func heapPeakDuring(t *testing.T, fn func() int64) (int64, int64) {
	t.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := int64(ms.HeapAlloc)
	var peak atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if d := int64(ms.HeapAlloc) - base; d > peak.Load() {
					peak.Store(d)
				}
			}
		}
	}()
	n := fn()
	close(done)
	<-stopped
	return n, peak.Load()
}

// TestSCIMGroupPatchMemory: a PATCH of a large group costs the heap what
// the PATCH names, not what the group holds. Member operations are
// membership inserts and deletes (a replace of all members, and a remove
// through another filter than value eq, read them a piece at a time),
// and the answer, when it carries the members, streams them as GET
// does. Before, the group was patched as a document with every member:
// adding one member to a group of 60,000 grew the heap by 57 MiB on both
// stores.
func TestSCIMGroupPatchMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs 60,000 users")
	}
	const members = 60000
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := newSCIMWriteEnv(t, s)
		staffInGroups(t, s, members+1)
		var ids []string
		if err := s.DB().Raw(`SELECT id FROM users WHERE source = 'staff' ORDER BY id`).Scan(&ids).Error; err != nil || len(ids) != members+1 {
			t.Fatalf("users: %d %v", len(ids), err)
		}
		var b strings.Builder
		b.WriteString(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"big","members":[`)
		for i, id := range ids[:members] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"value":"` + id + `"}`)
		}
		b.WriteString(`]}`)
		g := want(t, e.do("POST", "/scim/v2/Groups?excludedAttributes=members", writeTok, b.String()), http.StatusCreated, "", "")
		id, _ := g["id"].(string)
		extra := ids[members]
		for _, step := range []struct {
			name, query, ops string
			members          int   // stored after the step
			answer           int64 // at least this many bytes answered
			bound            int64 // the most the heap may grow
		}{
			{"add one member", "?excludedAttributes=members",
				`{"op":"add","path":"members","value":[{"value":"` + extra + `"}]}`, members + 1, 0, 2 << 20},
			{"remove one member (Entra)", "?excludedAttributes=members",
				`{"op":"Remove","path":"members[value eq \"` + ids[0] + `\"]"}`, members, 0, 2 << 20},
			{"remove one member (Okta)", "?excludedAttributes=members",
				`{"op":"remove","path":"members","value":[{"value":"` + ids[1] + `"}]}`, members - 1, 0, 2 << 20},
			{"add one member, answered with every member", "",
				`{"op":"add","path":"members","value":[{"value":"` + ids[0] + `"}]}`, members, 8 << 20, 6 << 20},
			{"remove one member through a filter on type and value", "?excludedAttributes=members",
				`{"op":"remove","path":"members[type eq \"User\" and value eq \"` + ids[2] + `\"]"}`, members - 1, 0, 3 << 20},
			{"replace every member by two", "?excludedAttributes=members",
				`{"op":"replace","path":"members","value":[{"value":"` + ids[0] + `"},{"value":"` + extra + `"}]}`, 2, 0, 3 << 20},
		} {
			var status int
			answer, peak := heapPeakDuring(t, func() int64 {
				req, _ := http.NewRequest("PATCH", e.srv.URL+"/scim/v2/Groups/"+id+step.query, strings.NewReader(patchOps(step.ops)))
				req.Header.Set("Authorization", "Bearer "+writeTok)
				req.Header.Set("Content-Type", "application/scim+json")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				status = res.StatusCode
				n, err := io.Copy(io.Discard, res.Body)
				if err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				return n
			})
			if status != http.StatusOK {
				t.Fatalf("%s: status %d", step.name, status)
			}
			var n int
			if err := s.DB().Raw(`SELECT COUNT(*) FROM memberships WHERE group_id = ?`, id).Row().Scan(&n); err != nil || n != step.members {
				t.Fatalf("%s: %d members stored, want %d (%v)", step.name, n, step.members, err)
			}
			t.Logf("%s, group of %d: answer %.1f KiB, heap grew at most %.2f MiB", step.name, members, float64(answer)/(1<<10), float64(peak)/(1<<20))
			if answer < step.answer {
				t.Errorf("%s: the answer is %d bytes; want every member (at least %d)", step.name, answer, step.answer)
			}
			if peak > step.bound {
				t.Errorf("%s: the heap grew by %.1f MiB; want at most %.1f MiB whatever the size of the group", step.name, float64(peak)/(1<<20), float64(step.bound)/(1<<20))
			}
		}
	})
}
