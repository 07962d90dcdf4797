package ldap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/rosterd/roster/sources"
)

// Index is what a read with Options.Index keeps of a directory instead of
// its records, so that a large directory is synced a chunk of records at a
// time (the task runner's streamed sync): the users' ids, and their group
// memberships and managers resolved from the DNs. Each maps the read's
// LDIF again and hands the records over one by one, complete.
//
// At a million users it holds the ids (a map of id to line, some 100
// bytes a user, which the streamed plan reuses), 8 bytes per membership
// and 4 per user for managers; the read itself also indexes logins and
// DNs until it ends.
type Index struct {
	// Records counts the users read.
	Records int
	// IDs maps every user's id to its line (its place among the users,
	// from 1), as csv.Result.IDs does.
	IDs map[string]int
	// memberships are (user index << 32 | group index) pairs; sorted by
	// finish, so that Each walks them with the users.
	memberships []uint64
	groups      []string // by group index: its name
	// managers holds, by user index, the line of the user's manager
	// (0: none); managerIDs the ids of those managers by line.
	managers   []int32
	managerIDs map[int32]string
}

func (x *Index) member(user, group int) {
	x.memberships = append(x.memberships, uint64(user)<<32|uint64(group))
}

// Managers returns the ids of the users that are another user's manager.
func (x *Index) Managers() []string {
	out := make([]string, 0, len(x.managerIDs))
	for _, id := range x.managerIDs {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// finishIndex completes the index with the memberships and managers
// resolved; the records were never kept.
func (b *builder) finishIndex(res *Result) {
	x := b.index
	x.Records, x.IDs = b.n, b.ids
	for _, g := range b.groups {
		x.groups = append(x.groups, g.name)
	}
	slices.Sort(x.memberships)
	x.memberships = slices.Compact(x.memberships)
	x.managers = make([]int32, len(b.managers))
	x.managerIDs = map[int32]string{}
	for i, m := range b.managers {
		if m == (dnKey{}) {
			continue
		}
		if j, ok := b.byDN[m]; ok {
			x.managers[i] = int32(j + 1)
			x.managerIDs[int32(j+1)] = ""
		}
	}
	// The managers' ids: the id map gives every id its line.
	for id, line := range b.ids {
		if _, ok := x.managerIDs[int32(line)]; ok {
			x.managerIDs[int32(line)] = id
		}
	}
	unknown := 0
	for i, m := range b.managers {
		if m != (dnKey{}) && (x.managers[i] == 0 || x.managerIDs[x.managers[i]] == "") {
			x.managers[i] = 0
			unknown++
		}
	}
	for line, id := range x.managerIDs {
		if id == "" {
			delete(x.managerIDs, line)
		}
	}
	b.warnManagers(unknown)
	res.Warnings = b.warnings
	res.Partial = b.partial
	res.Index = x
}

// Each maps the users of raw, the LDIF that the read x indexes wrote,
// again and hands each record to each, in the order read, with its groups
// and manager. The read checked every value: Each reports no problem of
// the entries, only of raw, which must be that read's.
func (x *Index) Each(o Options, raw io.Reader, each func(sources.Record) error) error {
	r, err := newReader(o)
	if err != nil {
		return err
	}
	b := &builder{source: o.Source, m: r.m}
	next, line := 0, 0
	err = ReadLDIF(bufio.NewReaderSize(raw, 64<<10), func(kind Kind, e *Entry) error {
		if kind != KindUser {
			return errStop
		}
		line++
		if line > x.Records {
			return fmt.Errorf("ldap source %s: the raw record holds more users than its read (%d)", o.Source, x.Records)
		}
		rec, _ := b.user(e, line)
		i := uint64(line - 1)
		for next < len(x.memberships) && x.memberships[next]>>32 == i {
			rec.Groups = append(rec.Groups, x.groups[uint32(x.memberships[next])])
			next++
		}
		if m := x.managers[line-1]; m != 0 {
			rec.Manager = x.managerIDs[m]
		}
		return each(rec)
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if line != x.Records {
		return fmt.Errorf("ldap source %s: the raw record holds %d users, its read %d", o.Source, line, x.Records)
	}
	return nil
}

// errStop ends ReadLDIF at the first group.
var errStop = errors.New("stop")
