package store

import (
	"context"
	"fmt"
)

// DirectoryCounts is the size of the directory per owning source, as the
// roster_directory_users and roster_directory_groups metrics export it.
type DirectoryCounts struct {
	// Users counts users by source and lifecycle state (active, inactive,
	// deleted: tombstones count until they are purged).
	Users map[string]map[string]int64
	// Groups counts groups by source.
	Groups map[string]int64
}

// DirectoryCounts counts users and groups per source with one GROUP BY
// query each. Sources that own nothing are absent.
func (s *Store) DirectoryCounts(ctx context.Context) (*DirectoryCounts, error) {
	db := s.db.WithContext(ctx)
	c := &DirectoryCounts{Users: map[string]map[string]int64{}, Groups: map[string]int64{}}
	rows, err := db.Raw(`SELECT source, state, COUNT(*) FROM users GROUP BY source, state`).Rows()
	if err != nil {
		return nil, fmt.Errorf("count users: %w", err)
	}
	for rows.Next() {
		var source, state string
		var n int64
		if err := rows.Scan(&source, &state, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("count users: %w", err)
		}
		if c.Users[source] == nil {
			c.Users[source] = map[string]int64{}
		}
		c.Users[source][state] = n
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("count users: %w", err)
	}

	rows, err = db.Raw(`SELECT source, COUNT(*) FROM groups GROUP BY source`).Rows()
	if err != nil {
		return nil, fmt.Errorf("count groups: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var source string
		var n int64
		if err := rows.Scan(&source, &n); err != nil {
			return nil, fmt.Errorf("count groups: %w", err)
		}
		c.Groups[source] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count groups: %w", err)
	}
	return c, nil
}
