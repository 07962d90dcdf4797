package store

import (
	"context"
	"fmt"
)

// Owner is a user who owns a department (NocoBase's isOwner, SPEC §3.3).
type Owner struct {
	GroupID     string `json:"-"`
	UserID      string `json:"id"`
	UserName    string `json:"userName"`
	DisplayName string `json:"displayName"`
}

// ownersSQL reads the owners of groups: owners are kept by department
// uid, and a group is a department of the source that owns both.
// Deleted users own nothing.
const ownersSQL = `SELECT g.id, u.id, u.user_name, u.display_name
	FROM groups g
	JOIN department_owners o ON o.source = g.source AND o.dept_uid = g.external_id
	JOIN users u ON u.id = o.user_id AND u.state <> 'deleted'
	WHERE g.keyed AND g.id IN ?
	ORDER BY g.id, lower(u.user_name)`

// GroupOwners returns the owners of the groups ids, by group id.
func (s *Store) GroupOwners(ctx context.Context, ids []string) (map[string][]Owner, error) {
	out := map[string][]Owner{}
	batch := max(s.batchRows(), 500)
	for start := 0; start < len(ids); start += batch {
		rows, err := s.db.WithContext(ctx).Raw(ownersSQL, ids[start:min(start+batch, len(ids))]).Rows()
		if err != nil {
			return nil, fmt.Errorf("load the owners of groups: %w", err)
		}
		for rows.Next() {
			var o Owner
			if err := rows.Scan(&o.GroupID, &o.UserID, &o.UserName, &o.DisplayName); err != nil {
				rows.Close()
				return nil, fmt.Errorf("load the owners of groups: %w", err)
			}
			out[o.GroupID] = append(out[o.GroupID], o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("load the owners of groups: %w", err)
		}
	}
	return out, nil
}

// GroupFilter selects the groups of the admin API's list.
type GroupFilter struct {
	Source string // "" for every source
	Limit  int
	Offset int
}

// GroupRow is one group of the admin API's list and the admin page's
// tree: Parent is the id of the group that holds it as a member ("" at
// the top; a group held by several has the first by id).
type GroupRow struct {
	ID          string  `json:"id"`
	Source      string  `json:"source"`
	ExternalID  string  `json:"externalId,omitempty"`
	DisplayName string  `json:"displayName"`
	Parent      string  `json:"parent,omitempty"`
	Members     int     `json:"members"`   // users, deleted ones aside
	SubGroups   int     `json:"subGroups"` // groups held as members
	Owners      []Owner `json:"owners" gorm:"-"`
}

// groupRowSQL reads groups with their parent and counts.
const groupRowSQL = `SELECT g.id, g.source, g.external_id, g.display_name,
	COALESCE((SELECT MIN(p.group_id) FROM memberships p WHERE p.member_id = g.id AND p.member_type = 'Group'), '') AS parent,
	(SELECT COUNT(*) FROM memberships m JOIN users mu ON mu.id = m.member_id
		WHERE m.group_id = g.id AND m.member_type = 'User' AND mu.state <> 'deleted') AS members,
	(SELECT COUNT(*) FROM memberships c WHERE c.group_id = g.id AND c.member_type = 'Group') AS sub_groups
	FROM groups g`

// ListGroups returns groups ordered by source and name, with their
// parent, member counts and owners, and the number that match.
func (s *Store) ListGroups(ctx context.Context, f GroupFilter) ([]GroupRow, int64, error) {
	where, args := "1=1", []any{}
	if f.Source != "" {
		where, args = "g.source = ?", append(args, f.Source)
	}
	db := s.db.WithContext(ctx)
	var total int64
	if err := db.Raw("SELECT COUNT(*) FROM groups g WHERE "+where, args...).Scan(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count groups: %w", err)
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var rows []GroupRow
	err := db.Raw(groupRowSQL+" WHERE "+where+" ORDER BY g.source, lower(g.display_name), g.id LIMIT ? OFFSET ?",
		append(args, f.Limit, max(f.Offset, 0))...).Scan(&rows).Error
	if err != nil {
		return nil, 0, fmt.Errorf("list groups: %w", err)
	}
	if err := s.withOwners(ctx, rows); err != nil {
		return nil, 0, err
	}
	return rows, total, nil
}

func (s *Store) withOwners(ctx context.Context, rows []GroupRow) error {
	ids := make([]string, len(rows))
	for i := range rows {
		ids[i] = rows[i].ID
	}
	owners, err := s.GroupOwners(ctx, ids)
	if err != nil {
		return err
	}
	for i := range rows {
		rows[i].Owners = owners[rows[i].ID]
		if rows[i].Owners == nil {
			rows[i].Owners = []Owner{}
		}
	}
	return nil
}

// GroupMember is a user or a group held by a group.
type GroupMember struct {
	ID          string `json:"id"`
	Name        string `json:"name"` // userName, or the group's displayName
	DisplayName string `json:"displayName,omitempty"`
	Active      bool   `json:"active"`
	Owner       bool   `json:"owner,omitempty"`
}

// GroupDetail is one group with its members, sub-groups and owners.
type GroupDetail struct {
	GroupRow
	Users  []GroupMember `json:"users"`
	Groups []GroupMember `json:"groups"`
}

// GetGroup returns one group with its user members (deleted ones aside),
// the groups it holds and its owners; ErrNotFound when there is none.
func (s *Store) GetGroup(ctx context.Context, id string) (*GroupDetail, error) {
	db := s.db.WithContext(ctx)
	var rows []GroupRow
	if err := db.Raw(groupRowSQL+" WHERE g.id = ?", id).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read group %s: %w", id, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("group %s: %w", id, ErrNotFound)
	}
	if err := s.withOwners(ctx, rows); err != nil {
		return nil, err
	}
	d := &GroupDetail{GroupRow: rows[0], Users: []GroupMember{}, Groups: []GroupMember{}}
	owner := map[string]bool{}
	for _, o := range d.Owners {
		owner[o.UserID] = true
	}
	if err := db.Raw(`SELECT u.id, u.user_name AS name, u.display_name, u.active FROM memberships m
		JOIN users u ON u.id = m.member_id AND u.state <> 'deleted'
		WHERE m.group_id = ? AND m.member_type = 'User' ORDER BY u.user_name_key, u.id`, id).Scan(&d.Users).Error; err != nil {
		return nil, fmt.Errorf("read the members of group %s: %w", id, err)
	}
	for i := range d.Users {
		d.Users[i].Owner = owner[d.Users[i].ID]
	}
	if err := db.Raw(`SELECT c.id, c.display_name AS name, TRUE AS active FROM memberships m
		JOIN groups c ON c.id = m.member_id
		WHERE m.group_id = ? AND m.member_type = 'Group' ORDER BY lower(c.display_name), c.id`, id).Scan(&d.Groups).Error; err != nil {
		return nil, fmt.Errorf("read the sub-groups of group %s: %w", id, err)
	}
	return d, nil
}
