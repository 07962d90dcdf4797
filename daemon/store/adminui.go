package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/schema"
)

// UserFilter selects the users of the admin page's user list.
type UserFilter struct {
	// Search, when not empty, keeps the users whose userName, displayName,
	// given or family name or an e-mail address contains it, ignoring
	// case (ASCII case on SQLite).
	Search string
	Limit  int
	Offset int
}

// UserRow is one user in the admin page's user list.
type UserRow struct {
	ID          string
	UserName    string
	DisplayName string
	Email       string // the primary address, else the first one
	Source      string
	State       string
	StateReason string
	Active      bool
}

// ListUsers returns the directory's live users (tombstones are left out),
// ordered by userName, and the number that match.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]UserRow, int64, error) {
	where := "u.state <> ?"
	args := []any{reconcile.StateDeleted}
	if q := strings.TrimSpace(f.Search); q != "" {
		like := "%" + likeEscaper.Replace(strings.ToLower(q)) + "%"
		where += ` AND (lower(u.user_name) LIKE ? ESCAPE '\' OR lower(u.display_name) LIKE ? ESCAPE '\'` +
			` OR lower(u.given_name) LIKE ? ESCAPE '\' OR lower(u.family_name) LIKE ? ESCAPE '\'` +
			` OR EXISTS (SELECT 1 FROM user_emails e WHERE e.user_id = u.id AND lower(e.value) LIKE ? ESCAPE '\'))`
		args = append(args, like, like, like, like, like)
	}
	db := s.db.WithContext(ctx)
	var total int64
	if err := db.Raw("SELECT COUNT(*) FROM users u WHERE "+where, args...).Scan(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count users: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	var rows []UserRow
	err := db.Raw(`SELECT u.id, u.user_name, u.display_name, u.source, u.state, u.state_reason, u.active,
		COALESCE((SELECT e.value FROM user_emails e WHERE e.user_id = u.id ORDER BY e."primary" DESC, e.value LIMIT 1), '') AS email
		FROM users u WHERE `+where+` ORDER BY u.user_name_key, u.id LIMIT ? OFFSET ?`,
		append(args, limit, max(f.Offset, 0))...).Scan(&rows).Error
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	return rows, total, nil
}

// likeEscaper escapes the wildcards of a LIKE pattern (ESCAPE '\').
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// UserDetail is one user as the admin page and the admin API show it:
// every attribute as SCIM serves it (custom attributes under their URN,
// groups with their ids and names), and what SCIM does not tell, the
// source that owns the user and its state.
type UserDetail struct {
	User        *scim.User
	Source      string
	State       string
	StateReason string
}

// MarshalJSON encodes the SCIM resource with source, state and
// stateReason added beside its attributes, so that a client reads one
// object whatever it asked for.
func (d *UserDetail) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(d.User)
	if err != nil {
		return nil, err
	}
	extra, err := json.Marshal(struct {
		Source      string `json:"source"`
		State       string `json:"state"`
		StateReason string `json:"stateReason,omitempty"`
	}{d.Source, d.State, d.StateReason})
	if err != nil {
		return nil, err
	}
	// Both are objects and the resource always has id: splice them.
	b = bytes.TrimSuffix(bytes.TrimSpace(b), []byte("}"))
	return append(append(b, ','), extra[1:]...), nil
}

// UserDetail reads one live user for the admin page and the admin API,
// its custom attributes as users (the configured User type) declares
// them. A tombstone or an unknown id is ErrNotFound.
func (s *Store) UserDetail(ctx context.Context, id string, users schema.ResourceType) (*UserDetail, error) {
	u, err := s.SCIMFor(users).User(ctx, id, scim.All)
	if errors.Is(err, scim.ErrNotFound) {
		return nil, fmt.Errorf("user %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	scim.ProjectUser(users, u)
	d := &UserDetail{User: u}
	row := s.db.WithContext(ctx).Raw(`SELECT source, state, state_reason FROM users WHERE id = ? AND state <> ?`,
		id, reconcile.StateDeleted).Row()
	if err := row.Scan(&d.Source, &d.State, &d.StateReason); err != nil {
		if errors.Is(err, sql.ErrNoRows) { // deleted since the read above
			return nil, fmt.Errorf("user %q: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("read the source of user %q: %w", id, err)
	}
	return d, nil
}
