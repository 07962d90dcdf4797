package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/patch"
)

var _ scim.GroupPatcher = (*scimWriter)(nil)

// PatchGroup applies a PATCH to a group of source: the member edits as
// inserts and deletes of memberships, in order, without holding the
// members (a replace or remove of all members, or a remove through a
// filter, reads them a piece at a time), so that its memory is bounded
// by the PATCH, not by the group. The version moves only when the PATCH
// changed something, net.
func (w *scimWriter) PatchGroup(ctx context.Context, source, id string, p *scim.GroupPatch, ifMatch string, inc scim.Include) (*scim.Group, error) {
	err := w.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		version, err := groupRow(tx, source, id, ifMatch)
		if err != nil {
			return err
		}
		var name, ext string
		if err := tx.Raw(`SELECT display_name, external_id FROM groups WHERE id = ?`, id).Row().Scan(&name, &ext); err != nil {
			return fmt.Errorf("read group %s: %w", id, err)
		}
		changed := name != p.DisplayName || (p.ExternalID != "" && p.ExternalID != ext)
		d := newMemberDelta(p.Members)
		nested := false
		for _, e := range p.Members {
			groups, err := d.edit(tx, id, e)
			if err != nil {
				return err
			}
			nested = nested || groups
		}
		if !changed && !d.changed() {
			return nil // RFC 7644 §3.5.2: no change, no new version
		}
		sets := `display_name = ?, display_name_key = ?, version = version + 1, updated_at = ?`
		args := []any{p.DisplayName, reconcile.Key(p.DisplayName), time.Now().UTC()}
		if p.ExternalID != "" {
			sets += `, external_id = ?`
			args = append(args, p.ExternalID)
		}
		res := tx.Exec(`UPDATE groups SET `+sets+` WHERE id = ? AND version = ?`, append(args, id, version)...)
		if res.Error != nil {
			return fmt.Errorf("update group %q: %w", p.DisplayName, res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("group %q: %w", id, scim.ErrPreconditionFailed)
		}
		if nested {
			if err := checkNesting(tx, id); err != nil {
				return err
			}
		}
		return bumpRevision(tx, source)
	})
	if err != nil {
		return nil, err
	}
	return w.s.SCIM().Group(ctx, id, inc)
}

// memberDelta carries out the member edits of one PATCH and tells
// whether they changed the memberships once all are done: an add and a
// remove of the same member cancel out, and such a PATCH leaves the
// version alone as one that changes nothing does. It holds what the
// PATCH names, not the group: a stored member removed counts until the
// PATCH adds it back, and once more are removed than the PATCH names
// values, they cannot all come back, so the change is sure and nothing
// more is tracked.
type memberDelta struct {
	values  int             // member values the PATCH names
	net     map[string]int8 // +1 added, -1 removed, by member id
	removed int             // entries of net at -1
	sure    bool
}

func newMemberDelta(edits []scim.MemberEdit) *memberDelta {
	d := &memberDelta{net: map[string]int8{}}
	for _, e := range edits {
		d.values += len(e.Members)
	}
	return d
}

// record notes that member id was added (+1) or removed (-1).
func (d *memberDelta) record(id string, sign int8) {
	if d.sure {
		return
	}
	old := d.net[id]
	v := old + sign
	if v == 0 {
		delete(d.net, id)
	} else {
		d.net[id] = v
	}
	switch {
	case old == -1:
		d.removed--
	case v == -1:
		d.removed++
	}
	if d.removed > d.values {
		d.sure, d.net = true, nil
	}
}

func (d *memberDelta) changed() bool { return d.sure || len(d.net) > 0 }

// edit carries out one member edit on group id; it returns whether it
// added a group.
func (d *memberDelta) edit(tx *gorm.DB, id string, e scim.MemberEdit) (bool, error) {
	switch e.Op {
	case patch.OpRemove:
		if e.All {
			return false, d.keepOnly(tx, id, nil)
		}
		var n int64
		var err error
		if e.Where != nil {
			n, err = d.removeWhere(tx, id, e.Where)
		} else {
			n, err = d.remove(tx, id, e.Members)
		}
		if err == nil && n == 0 && e.NoTarget != nil {
			err = e.NoTarget
		}
		return false, err
	case patch.OpReplace:
		if err := d.keepOnly(tx, id, e.Members); err != nil {
			return false, err
		}
		return d.add(tx, id, e.Members)
	case patch.OpAdd:
		return d.add(tx, id, e.Members)
	}
	return false, fmt.Errorf("group %s: unknown member operation %q", id, e.Op)
}

// presentMembers returns those of ids that are members of group id. With
// fold, ids are compared ignoring case, as PATCH compares member values
// (members.value is not caseExact); that reads the group's memberships
// in the database, so it is asked only for ids not found exactly.
func presentMembers(tx *gorm.DB, id string, ids []string, fold bool) ([]string, error) {
	q := `SELECT member_id FROM memberships WHERE group_id = ? AND member_id IN ?`
	if fold {
		q = `SELECT member_id FROM memberships WHERE group_id = ? AND LOWER(member_id) IN ?`
		lower := make([]string, len(ids))
		for i, v := range ids {
			lower[i] = strings.ToLower(v)
		}
		ids = lower
	}
	var found []string
	if err := tx.Raw(q, id, ids).Scan(&found).Error; err != nil {
		return nil, fmt.Errorf("read members of group %s: %w", id, err)
	}
	return found, nil
}

// removeMembers removes the members of group id whose ids are those of
// ms, ignoring case; the others are no error.
func (d *memberDelta) remove(tx *gorm.DB, id string, ms []scim.MemberWrite) (int64, error) {
	var n int64
	for c := range slices.Chunk(ms, memberChunk) {
		ids := make([]string, len(c))
		for i, m := range c {
			ids[i] = m.Value
		}
		found, err := presentMembers(tx, id, ids, false)
		if err != nil {
			return 0, err
		}
		if rest := missing(ids, found); len(rest) > 0 {
			more, err := presentMembers(tx, id, rest, true)
			if err != nil {
				return 0, err
			}
			// Two values may name one member in different cases.
			found = append(found, more...)
			slices.Sort(found)
			found = slices.Compact(found)
		}
		if len(found) == 0 {
			continue
		}
		res := tx.Exec(`DELETE FROM memberships WHERE group_id = ? AND member_id IN ?`, id, found)
		if res.Error != nil {
			return 0, fmt.Errorf("remove members of group %s: %w", id, res.Error)
		}
		n += res.RowsAffected
		for _, m := range found {
			d.record(m, -1)
		}
	}
	return n, nil
}

// removeWhere removes the members of group id that where selects,
// reading them as GET answers them, a piece at a time.
func (d *memberDelta) removeWhere(tx *gorm.DB, id string, where func(scim.Reference) bool) (int64, error) {
	var n int64
	after := ""
	for {
		rows, err := tx.Raw(scimMembersQuery+`
			WHERE m.group_id = ? AND m.member_id > ? AND (m.member_type <> 'User' OR mu.state <> 'deleted')
			ORDER BY m.member_id LIMIT ?`, id, after, scim.MemberPiece).Rows()
		if err != nil {
			return 0, fmt.Errorf("read members of group %s: %w", id, err)
		}
		read := 0
		var drop []string
		for rows.Next() {
			var gid string
			var r scim.Reference
			if err := rows.Scan(&gid, &r.Value, &r.Type, &r.Display); err != nil {
				rows.Close()
				return 0, fmt.Errorf("read members of group %s: %w", id, err)
			}
			read++
			after = r.Value
			if where(r) {
				drop = append(drop, r.Value)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return 0, fmt.Errorf("read members of group %s: %w", id, err)
		}
		for c := range slices.Chunk(drop, memberChunk) {
			res := tx.Exec(`DELETE FROM memberships WHERE group_id = ? AND member_id IN ?`, id, c)
			if res.Error != nil {
				return 0, fmt.Errorf("remove members of group %s: %w", id, res.Error)
			}
			n += res.RowsAffected
			for _, m := range c {
				d.record(m, -1)
			}
		}
		if read < scim.MemberPiece {
			return n, nil
		}
	}
}

// missing returns the ids not in found, exactly compared.
func missing(ids, found []string) []string {
	var out []string
	for _, v := range ids {
		if !slices.Contains(found, v) {
			out = append(out, v)
		}
	}
	return out
}

// keepOnly removes the members of group id that ms does not name,
// reading the memberships a piece at a time (by primary key range) so
// that a group of any size costs one piece of memory; once the change
// is sure and ms is empty, it deletes them all at once.
func (d *memberDelta) keepOnly(tx *gorm.DB, id string, ms []scim.MemberWrite) error {
	if d.sure && len(ms) == 0 {
		if err := tx.Exec(`DELETE FROM memberships WHERE group_id = ?`, id).Error; err != nil {
			return fmt.Errorf("remove the members of group %s: %w", id, err)
		}
		return nil
	}
	keep := make(map[string]bool, len(ms))
	for _, m := range ms {
		keep[m.Value] = true
	}
	after := ""
	for {
		var piece []string
		if err := tx.Raw(`SELECT member_id FROM memberships WHERE group_id = ? AND member_id > ? ORDER BY member_id LIMIT ?`,
			id, after, scim.MemberPiece).Scan(&piece).Error; err != nil {
			return fmt.Errorf("read members of group %s: %w", id, err)
		}
		var drop []string
		for _, m := range piece {
			if !keep[m] {
				drop = append(drop, m)
			}
		}
		for c := range slices.Chunk(drop, memberChunk) {
			if err := tx.Exec(`DELETE FROM memberships WHERE group_id = ? AND member_id IN ?`, id, c).Error; err != nil {
				return fmt.Errorf("remove members of group %s: %w", id, err)
			}
			for _, m := range c {
				d.record(m, -1)
			}
		}
		if len(piece) < scim.MemberPiece {
			return nil
		}
		after = piece[len(piece)-1]
	}
}

// add adds the members of ms that group id does not hold yet, checking
// only those; it returns whether one is a group. A member already there,
// whatever type it is given, is no change, as RFC 7644 §3.5.2 has it.
func (d *memberDelta) add(tx *gorm.DB, id string, ms []scim.MemberWrite) (bool, error) {
	groups := false
	for c := range slices.Chunk(ms, memberChunk) {
		ids := make([]string, len(c))
		for i, m := range c {
			if m.Value == id {
				return false, &scim.MemberError{Detail: fmt.Sprintf("group %q cannot be a member of itself", id)}
			}
			ids[i] = m.Value
		}
		found, err := presentMembers(tx, id, ids, false)
		if err != nil {
			return false, err
		}
		var add []scim.MemberWrite
		for _, m := range c {
			if !slices.Contains(found, m.Value) {
				add = append(add, m)
			}
		}
		if len(add) == 0 {
			continue
		}
		types, err := memberTypes(tx, add)
		if err != nil {
			return false, err
		}
		var b strings.Builder
		args := make([]any, 0, 3*len(add))
		for _, m := range add {
			typ := types[m.Value]
			if typ == "" {
				// A member given in another case than stored is there
				// already (members.value is not caseExact).
				if again, err := presentMembers(tx, id, []string{m.Value}, true); err != nil || len(again) > 0 {
					if err != nil {
						return false, err
					}
					continue
				}
			}
			if typ == "" || (m.Type != "" && m.Type != typ) {
				kind := "user or group"
				if m.Type != "" {
					kind = strings.ToLower(m.Type)
				}
				return false, &scim.MemberError{Detail: fmt.Sprintf("member %q is no %s of the directory", m.Value, kind)}
			}
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?)")
			args = append(args, id, m.Value, typ)
			groups = groups || typ == "Group"
		}
		if b.Len() == 0 {
			continue
		}
		// ON CONFLICT: a member a concurrent write added since it was
		// looked for makes this no failure; the change is then taken as
		// sure, so that the version check after it answers 412 unless
		// nothing moved.
		res := tx.Exec(`INSERT INTO memberships (group_id, member_id, member_type) VALUES `+b.String()+` ON CONFLICT DO NOTHING`, args...)
		if res.Error != nil {
			return false, fmt.Errorf("add members to group %s: %w", id, res.Error)
		}
		if res.RowsAffected != int64(len(args)/3) {
			d.sure, d.net = true, nil
			continue
		}
		for i := 1; i < len(args); i += 3 {
			d.record(args[i].(string), +1)
		}
	}
	return groups, nil
}
