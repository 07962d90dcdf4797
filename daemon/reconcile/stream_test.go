package reconcile_test

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/sources"
)

// streamPlan plans records as a streamed sync does (head, then chunks of
// size chunk against their own users, records that change nothing
// skipped by their sums) and merges the parts into one plan.
func streamPlan(snap *reconcile.Snapshot, records []sources.Record, s reconcile.Settings, newID func() string, chunk int) *reconcile.Plan {
	present := map[string]bool{}
	var names []string
	for _, r := range records {
		present[r.ExternalID] = true
		names = append(names, r.Groups...)
	}
	in := reconcile.StreamInput{Records: len(records), GroupNames: names}
	byExt := map[string]*reconcile.User{}
	for i := range snap.Users {
		u := &snap.Users[i]
		byExt[u.ExternalID] = u
		if u.State == reconcile.StateDeleted {
			continue
		}
		in.Total++
		if !present[u.ExternalID] {
			in.Absent = append(in.Absent, *u)
		}
	}
	st, p := reconcile.NewStream(in, snap.Groups, s, newID)
	if p.Hold != "" {
		return p
	}
	for start := 0; start < len(records); start += chunk {
		var part []sources.Record
		users := map[string]*reconcile.User{}
		adoptable := map[string]*reconcile.User{}
		for _, r := range records[start:min(start+chunk, len(records))] {
			if o, ok := snap.Adoptable[reconcile.Key(r.UserName)]; ok && byExt[r.ExternalID] == nil {
				adoptable[reconcile.Key(r.UserName)] = &o
			}
			u := byExt[r.ExternalID]
			if u != nil && st.Unchanged(&r, reconcile.KnownOf(u, s)) {
				st.Counts.Unchanged++
				continue
			}
			part = append(part, r)
			if u != nil {
				users[r.ExternalID] = u
			}
		}
		q := st.Chunk(part, users, adoptable)
		if st.Held() {
			p.Hold = "held after a chunk"
			return p
		}
		p.Changes = append(p.Changes, q.Changes...)
		p.MembershipAdds = append(p.MembershipAdds, q.MembershipAdds...)
		p.MembershipRemoves = append(p.MembershipRemoves, q.MembershipRemoves...)
	}
	p.Counts = st.Counts
	return p
}

// contested reports whether a record's login is held by someone other
// than its own user, and not one it adopts: a streamed sync plans such
// inputs whole.
func contested(snap *reconcile.Snapshot, records []sources.Record, s reconcile.Settings) bool {
	holder := map[string]string{}
	ours := map[string]bool{}
	for _, u := range snap.Users {
		ours[u.ExternalID] = true
		if u.State != reconcile.StateDeleted {
			holder[reconcile.Key(u.UserName)] = u.ExternalID
		}
	}
	for _, r := range records {
		k := reconcile.Key(r.UserName)
		if _, ok := snap.Foreign[k]; ok && (!s.Adopt || ours[r.ExternalID]) {
			return true
		}
		if ext, ok := holder[k]; ok && ext != r.ExternalID {
			return true
		}
	}
	return false
}

// sameStreamed reports how a streamed plan differs from the whole one.
func sameStreamed(whole, streamed *reconcile.Plan) string {
	norm := func(p *reconcile.Plan) *reconcile.Plan {
		q := *p
		q.Changes = slices.Clone(p.Changes)
		slices.SortFunc(q.Changes, func(a, b reconcile.Change) int {
			return cmp.Or(strings.Compare(a.After.ExternalID, b.After.ExternalID), strings.Compare(string(a.Action), string(b.Action)))
		})
		for _, l := range []*[]reconcile.Membership{&q.MembershipAdds, &q.MembershipRemoves} {
			*l = slices.Clone(*l)
			slices.SortFunc(*l, func(a, b reconcile.Membership) int {
				return cmp.Or(strings.Compare(a.GroupID, b.GroupID), strings.Compare(a.UserID, b.UserID))
			})
			if len(*l) == 0 {
				*l = nil
			}
		}
		if len(q.Changes) == 0 {
			q.Changes = nil
		}
		q.Revision, q.Warnings = 0, nil
		return &q
	}
	w, s := norm(whole), norm(streamed)
	if !reflect.DeepEqual(w, s) {
		return fmt.Sprintf("whole:    %+v\nstreamed: %+v", *w, *s)
	}
	return ""
}

// FuzzStreamMatchesWhole checks that a streamed sync plans what planning
// the whole input does, for every input it does not hand back: no login
// held by another user (except one the source adopts), no plan held by
// the safety valve.
func FuzzStreamMatchesWhole(f *testing.F) {
	f.Add([]byte{}, uint8(1))
	f.Add([]byte("\x01\x03\x01\x05\x07\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"), uint8(2))
	f.Add([]byte("\x02\x0b\x02\x03\x09\x00\x00\x00\x06\x00\x00\x01\x02\x03\x00\x01\x01\x01\x02\x02\x02\x01\x02\x00\x01"), uint8(3))
	f.Add([]byte("\x00\x7f\x00\x00\x01\x01\x01\x08\x01\x02\x00\x00\x00\x00\x01\x02\x02\x03\x05\x01\x01\x01\x01\x03\x01\x01"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		snap, records, s := fuzzCase(data)
		if contested(&snap, records, s) {
			return
		}
		whole := reconcile.PlanSnapshot(records, &snap, s, seq())
		if len(whole.Errors) > 0 || whole.Hold != "" {
			return
		}
		streamed := streamPlan(&snap, records, s, seq(), int(chunk%4)+1)
		if streamed.Hold != "" {
			t.Fatalf("the streamed head is held (%s) but the whole plan is not", streamed.Hold)
		}
		if diff := sameStreamed(whole, streamed); diff != "" {
			t.Fatalf("settings %+v\nrecords %s\n%s", s, fmtRecords(records), diff)
		}
	})
}

func TestKnownPacks(t *testing.T) {
	s := reconcile.Settings{EmployeeNumberIsExternalID: true}
	for _, u := range []reconcile.User{
		{ExternalID: "1", UserName: "ada", State: reconcile.StateActive, HasPassword: true, Groups: []string{"eng"}},
		{ExternalID: "2", UserName: "bob", State: reconcile.StateInactive, StateReason: reconcile.ReasonAdmin},
		{ExternalID: "3", UserName: "cy", State: reconcile.StateInactive, StateReason: reconcile.ReasonOrphan},
		{ExternalID: "4", UserName: "di", State: reconcile.StateDeleted, HasPassword: true},
	} {
		k := reconcile.KnownOf(&u, s)
		v := k.Pack()
		back, ok := reconcile.Unpack(v)
		if v >= 0 || !ok || back != k {
			t.Errorf("%s: Pack = %d, Unpack = %+v %t; want a negative int that unpacks to %+v", u.UserName, v, back, ok, k)
		}
	}
	for _, line := range []int{0, 1, 17, 1 << 40} {
		if _, ok := reconcile.Unpack(line); ok {
			t.Errorf("Unpack(%d) took a line number for a Known", line)
		}
	}
}
