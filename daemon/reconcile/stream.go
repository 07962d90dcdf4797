package reconcile

import (
	"hash/maphash"
	"math"

	"github.com/rosterd/roster/sources"
)

// Stream plans a large snapshot in parts, so that no part holds every
// record: the head (the source's groups and its orphans, known from a first
// pass over the input), then one part per chunk of records, planned against
// just those records' users. Applied in order in one transaction, the parts
// do what PlanSnapshot's plan does, provided no record's login is held by
// another user: the caller checks that before each chunk and, when one is,
// plans the whole input with PlanSnapshot instead, which resolves such
// conflicts (moves, swaps, other owners) with the whole picture.
type Stream struct {
	s      Settings
	newID  func() string
	groups map[string]string // group key → id
	total  int
	// m holds the ids of the records that manage others (an ldap
	// source's): a report may come in a chunk before its manager's.
	m *managers
	// Counts add up the head's and every chunk's.
	Counts Counts
}

// StreamInput is what the first pass over an input found.
type StreamInput struct {
	Records int
	// GroupNames are the records' group names in order of first mention.
	GroupNames []string
	// Total is how many users the source owns (not deleted).
	Total int
	// Absent are the source's users, not deleted, that no record names.
	Absent []User
	// Nested are the groups' memberships in groups (an ldap source's),
	// HadNested those the directory holds: the head plans the difference.
	Nested    []Nesting
	HadNested []Membership
	// Managers maps the external ids of the records that are another
	// record's manager to their user's id ("": a new user, whose id the
	// head chooses now, so that a report in an earlier chunk can name it).
	Managers map[string]string
}

// NewStream plans the head: group creations, renames and deletions, and
// the orphans. The head plan's Hold says whether the safety valve stops the
// sync; the caller then plans with PlanSnapshot, whose held plan shows the
// operator every count.
func NewStream(in StreamInput, existing []Group, s Settings, newID func() string) (*Stream, *Plan) {
	p := &Plan{Records: in.Records, Total: in.Total}
	st := &Stream{s: s, newID: newID, total: in.Total}
	st.groups = planGroups(p, in.GroupNames, existing, s.Orphans != OrphansIgnore, newID)
	planNested(p, in.Nested, in.HadNested, st.groups)
	st.m = &managers{}
	if len(in.Managers) > 0 {
		st.m.byExt, st.m.fresh = make(map[string]string, len(in.Managers)), map[string]string{}
		for ext, id := range in.Managers {
			if id == "" {
				id = newID()
				st.m.fresh[ext] = id
			}
			st.m.byExt[ext] = id
		}
	}
	p.Changes, _ = planOrphans(p, in.Absent, func(string) bool { return false }, s)
	checkHold(p, s)
	st.Counts = p.Counts
	return st, p
}

// Chunk plans records, whose logins nobody else holds, against their users
// (by external id, tombstones included; absent for new records). With
// Settings.Adopt, a record without a user of its own whose login a user
// of another source holds adopts that user: adoptable holds them by login
// key, as Snapshot.Adoptable does.
func (st *Stream) Chunk(records []sources.Record, users map[string]*User, adoptable map[string]*User) *Plan {
	p := &Plan{Changes: make([]Change, 0, len(records))}
	for i := range records {
		r := &records[i]
		if holder := adoptable[Key(r.UserName)]; holder != nil && st.s.Adopt && users[r.ExternalID] == nil {
			planAdopt(p, r, holder, st.groups, st.s, st.m.manager(r))
			continue
		}
		planRecord(p, r, users[r.ExternalID], st.groups, st.s, st.m.id(st.newID), st.m.manager(r))
	}
	c := &st.Counts
	c.Created += p.Counts.Created
	c.Updated += p.Counts.Updated
	c.Unchanged += p.Counts.Unchanged
	c.Restored += p.Counts.Restored
	c.NotRestored += p.Counts.NotRestored
	c.Adopted += p.Counts.Adopted
	return p
}

// Manages reports whether the record with external id ext is a new user
// that manages others: its reports may already name the id the head chose
// for it, which adopting another user's id would leave dangling.
func (st *Stream) Manages(ext string) bool {
	_, ok := st.m.fresh[ext]
	return ok
}

// Held reports whether the safety valve stops the plan once the chunks
// so far adopted users: the head weighed only its removals. The caller
// then plans with PlanSnapshot, as for a held head.
func (st *Stream) Held() bool {
	return st.Counts.Adopted > 0 && !st.s.Force && overValve(st.Counts, st.total, st.s)
}

// Known is what a streamed sync keeps of each of the source's users to
// tell, without reading the user again, that a record leaves it as it is
// (most records of a re-sync do): a hash of every attribute a record sets,
// and whether a record can find the user unchanged at all.
type Known struct {
	sum uint64 // 61 bits
	// settled: active, or inactive for a reason a record does not undo
	// (restored are only orphans and tombstones).
	settled     bool
	hasPassword bool
}

// KnownOf sums up u, a user of the source as its snapshot holds it.
func KnownOf(u *User, s Settings) Known {
	return Known{
		sum: attributeSum(u.ExternalID, u.UserName, u.GivenName, u.FamilyName, u.DisplayName, u.Email, u.Phone,
			u.EmployeeNumber, u.Department, u.Attrs, u.Manager, u.Groups),
		settled:     u.State == StateActive || (u.State == StateInactive && u.StateReason != ReasonOrphan),
		hasPassword: u.HasPassword,
	}
}

// Unchanged reports whether r, the record of the user k sums up, plans
// nothing: planRecord would find no changed field. A false answer only
// costs reading the user and planning the record.
func (st *Stream) Unchanged(r *sources.Record, k Known) bool {
	if !k.settled || r.Active != nil || (r.PasswordHash != "" && !k.hasPassword) || r.Manager == sources.KeepManager {
		return false
	}
	f := fieldsOf(r, st.s)
	return attributeSum(r.ExternalID, r.UserName, r.GivenName, r.FamilyName, f.display, f.email, f.phone,
		f.emp, f.department, f.attrs, st.m.manager(r), groupKeys(r.Groups)) == k.sum
}

// Pack folds k into a negative int, so that a map of ids to their lines
// (positive) can hold it in place of an id's line: a million ids then cost
// one map, not two.
func (k Known) Pack() int {
	v := int64(k.sum<<2) | math.MinInt64
	if k.settled {
		v |= 2
	}
	if k.hasPassword {
		v |= 1
	}
	return int(v)
}

// Unpack returns the Known that Pack folded into v; false for any other
// value (a line number).
func Unpack(v int) (Known, bool) {
	if v >= 0 {
		return Known{}, false
	}
	u := uint64(v) &^ (1 << 63)
	return Known{sum: u >> 2, settled: u&2 != 0, hasPassword: u&1 != 0}, true
}

// sumSeed is random per process: a file cannot be written to collide.
var sumSeed = maphash.MakeSeed()

func attributeSum(ext, login, given, family, display, email, phone, emp, department, doc, manager string, groups []string) uint64 {
	var h maphash.Hash
	h.SetSeed(sumSeed)
	field := func(v string) {
		// The length first, so that no two lists of fields hash alike by
		// moving text from one field to the next.
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(v)), byte(len(v)>>8), byte(len(v)>>16), byte(len(v)>>24)
		h.Write(n[:])
		h.WriteString(v)
	}
	for _, v := range []string{ext, login, given, family, display, email, phone, emp, department, doc, manager} {
		field(v)
	}
	for _, g := range groups {
		field(g)
	}
	return h.Sum64() >> 3 // 61 bits: what Pack keeps
}
