package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/scim"
)

var _ scim.GroupWriter = (*scimWriter)(nil)

// memberChunk bounds the ids of one IN list or multi-row INSERT.
const memberChunk = 500

// CreateGroup creates a group of source with its members.
func (w *scimWriter) CreateGroup(ctx context.Context, source string, g *scim.GroupWrite, inc scim.Include) (*scim.Group, error) {
	v7, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new group id: %w", err)
	}
	id := v7.String()
	err = w.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Group names are not unique among groups written over SCIM
		// (SPEC §2; Entra ID allows duplicates): keyed is false.
		now := time.Now().UTC()
		err := tx.Exec(`INSERT INTO groups (id, source, external_id, display_name, display_name_key, version, created_at, updated_at, keyed)
			VALUES (?, ?, ?, ?, ?, 1, ?, ?, FALSE)`, id, source, g.ExternalID, g.DisplayName, reconcile.Key(g.DisplayName), now, now).Error
		if err != nil {
			return fmt.Errorf("create group %q: %w", g.DisplayName, err)
		}
		if err := writeMembers(tx, id, nil, g.Members); err != nil {
			return err
		}
		return bumpRevision(tx, source)
	})
	if err != nil {
		return nil, err
	}
	return w.s.SCIM().Group(ctx, id, inc)
}

// ReplaceGroup replaces a group of source, writing only the memberships
// that differ from the stored ones.
func (w *scimWriter) ReplaceGroup(ctx context.Context, source, id string, g *scim.GroupWrite, ifMatch string, inc scim.Include) (*scim.Group, error) {
	err := w.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		version, err := groupRow(tx, source, id, ifMatch)
		if err != nil {
			return err
		}
		var stored []string
		if err := tx.Raw(`SELECT member_id FROM memberships WHERE group_id = ?`, id).Scan(&stored).Error; err != nil {
			return fmt.Errorf("read the members of group %s: %w", id, err)
		}
		var name, ext string
		if err := tx.Raw(`SELECT display_name, external_id FROM groups WHERE id = ?`, id).Row().Scan(&name, &ext); err != nil {
			return fmt.Errorf("read group %s: %w", id, err)
		}
		if name == g.DisplayName && (g.ExternalID == "" || g.ExternalID == ext) && sameMembers(stored, g.Members) {
			return nil // RFC 7644 §3.5.2: no change, no new version
		}
		sets := `display_name = ?, display_name_key = ?, version = version + 1, updated_at = ?`
		args := []any{g.DisplayName, reconcile.Key(g.DisplayName), time.Now().UTC()}
		if g.ExternalID != "" {
			sets += `, external_id = ?`
			args = append(args, g.ExternalID)
		}
		res := tx.Exec(`UPDATE groups SET `+sets+` WHERE id = ? AND version = ?`, append(args, id, version)...)
		if res.Error != nil {
			return fmt.Errorf("update group %q: %w", g.DisplayName, res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("group %q: %w", id, scim.ErrPreconditionFailed)
		}
		if err := writeMembers(tx, id, stored, g.Members); err != nil {
			return err
		}
		return bumpRevision(tx, source)
	})
	if err != nil {
		return nil, err
	}
	return w.s.SCIM().Group(ctx, id, inc)
}

// sameMembers reports whether want names exactly the stored member ids.
func sameMembers(stored []string, want []scim.MemberWrite) bool {
	ids := make(map[string]bool, len(want))
	for _, m := range want {
		ids[m.Value] = true
	}
	if len(ids) != len(stored) {
		return false
	}
	for _, id := range stored {
		if !ids[id] {
			return false
		}
	}
	return true
}

// DeleteGroup deletes a group of source for good, with its memberships
// and those that list it as a member; the groups that did are changed.
func (w *scimWriter) DeleteGroup(ctx context.Context, source, id string, ifMatch string) error {
	return w.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		version, err := groupRow(tx, source, id, ifMatch)
		if err != nil {
			return err
		}
		res := tx.Exec(`DELETE FROM groups WHERE id = ? AND version = ?`, id, version)
		if res.Error != nil {
			return fmt.Errorf("delete group %s: %w", id, res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("group %q: %w", id, scim.ErrPreconditionFailed)
		}
		if err := tx.Exec(`UPDATE groups SET version = version + 1, updated_at = ?
			WHERE id IN (SELECT group_id FROM memberships WHERE member_id = ? AND member_type = 'Group')`,
			time.Now().UTC(), id).Error; err != nil {
			return fmt.Errorf("change the groups holding group %s: %w", id, err)
		}
		if err := tx.Exec(`DELETE FROM memberships WHERE group_id = ? OR (member_id = ? AND member_type = 'Group')`, id, id).Error; err != nil {
			return fmt.Errorf("remove the memberships of group %s: %w", id, err)
		}
		return bumpRevision(tx, source)
	})
}

// GroupOwner returns the source of a group.
func (w *scimWriter) GroupOwner(ctx context.Context, id string) (string, error) {
	var owner string
	err := w.s.db.WithContext(ctx).Raw(`SELECT source FROM groups WHERE id = ?`, id).Row().Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("group %q: %w", id, scim.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read group %s: %w", id, err)
	}
	return owner, nil
}

// groupRow reads the version of a group of source for a write, checking
// ifMatch.
func groupRow(tx *gorm.DB, source, id, ifMatch string) (int64, error) {
	var owner string
	var version int64
	err := tx.Raw(`SELECT source, version FROM groups WHERE id = ?`, id).Row().Scan(&owner, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("group %q: %w", id, scim.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("read group %s: %w", id, err)
	}
	if owner != source {
		return 0, &scim.OwnerError{Resource: "group", ID: id, Owner: owner}
	}
	if ifMatch != "" && !scim.IfMatch(ifMatch, scim.WeakVersion(version)) {
		return 0, fmt.Errorf("group %q: %w", id, scim.ErrPreconditionFailed)
	}
	return version, nil
}

// writeMembers makes the memberships of group id those of want, given
// the member ids stored now: it deletes the rows that go and inserts the
// rows that come, checking only the new members.
func writeMembers(tx *gorm.DB, id string, stored []string, want []scim.MemberWrite) error {
	keep := make(map[string]bool, len(want))
	var add []scim.MemberWrite
	has := make(map[string]bool, len(stored))
	for _, m := range stored {
		has[m] = true
	}
	for _, m := range want {
		if m.Value == id {
			return &scim.MemberError{Detail: fmt.Sprintf("group %q cannot be a member of itself", id)}
		}
		keep[m.Value] = true
		if !has[m.Value] {
			add = append(add, m)
		}
	}
	var drop []string
	for _, m := range stored {
		if !keep[m] {
			drop = append(drop, m)
		}
	}
	for c := range slices.Chunk(drop, memberChunk) {
		if err := tx.Exec(`DELETE FROM memberships WHERE group_id = ? AND member_id IN ?`, id, c).Error; err != nil {
			return fmt.Errorf("remove members of group %s: %w", id, err)
		}
	}
	for c := range slices.Chunk(add, memberChunk) {
		types, err := memberTypes(tx, c)
		if err != nil {
			return err
		}
		var b strings.Builder
		args := make([]any, 0, 3*len(c))
		for i, m := range c {
			typ := types[m.Value]
			if typ == "" || (m.Type != "" && m.Type != typ) {
				kind := "user or group"
				if m.Type != "" {
					kind = strings.ToLower(m.Type)
				}
				return &scim.MemberError{Detail: fmt.Sprintf("member %q is no %s of the directory", m.Value, kind)}
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?)")
			args = append(args, id, m.Value, typ)
		}
		if err := tx.Exec(`INSERT INTO memberships (group_id, member_id, member_type) VALUES `+b.String(), args...).Error; err != nil {
			return fmt.Errorf("add members to group %s: %w", id, err)
		}
	}
	if len(add) > 0 {
		return checkNesting(tx, id)
	}
	return nil
}

// checkNesting refuses a group that, with the members just added, holds
// itself through nested groups (a cycle, as pushes refuse them): walking
// down from its member groups must not reach it. UNION keeps the walk
// finite whatever the memberships are.
func checkNesting(tx *gorm.DB, id string) error {
	var via string
	err := tx.Raw(`WITH RECURSIVE down(gid, top) AS (
			SELECT member_id, member_id FROM memberships WHERE group_id = ? AND member_type = 'Group'
			UNION
			SELECT m.member_id, down.top FROM memberships m JOIN down ON m.group_id = down.gid WHERE m.member_type = 'Group')
		SELECT top FROM down WHERE gid = ? LIMIT 1`, id, id).Row().Scan(&via)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check the nesting of group %s: %w", id, err)
	}
	return &scim.MemberError{Detail: fmt.Sprintf("group %q would hold itself through its member group %q: nested groups may not form a cycle", id, via)}
}

// memberTypes tells which of the ids are live users ("User") and which
// are groups ("Group").
func memberTypes(tx *gorm.DB, ms []scim.MemberWrite) (map[string]string, error) {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.Value
	}
	types := make(map[string]string, len(ids))
	for _, q := range []struct{ typ, sql string }{
		{"User", `SELECT id FROM users WHERE id IN ? AND state <> 'deleted'`},
		{"Group", `SELECT id FROM groups WHERE id IN ?`},
	} {
		var found []string
		if err := tx.Raw(q.sql, ids).Scan(&found).Error; err != nil {
			return nil, fmt.Errorf("look up members: %w", err)
		}
		for _, f := range found {
			types[f] = q.typ
		}
	}
	return types, nil
}
