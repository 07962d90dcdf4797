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
	// Waiting counts tasks by source that wait for someone: held ones (an
	// operator's decision) and queued ones (pushes not applied yet), by
	// status.
	Waiting map[string]map[string]int64
}

// DirectoryCounts counts users and groups per source with one GROUP BY
// query each. Sources that own nothing are absent.
func (s *Store) DirectoryCounts(ctx context.Context) (*DirectoryCounts, error) {
	db := s.db.WithContext(ctx)
	c := &DirectoryCounts{Users: map[string]map[string]int64{}, Groups: map[string]int64{}, Waiting: map[string]map[string]int64{}}
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

	wrows, err := db.Raw(`SELECT source, status, COUNT(*) FROM tasks WHERE status IN (?, ?) GROUP BY source, status`,
		StatusHeld, StatusQueued).Rows()
	if err != nil {
		return nil, fmt.Errorf("count waiting tasks: %w", err)
	}
	defer wrows.Close()
	for wrows.Next() {
		var source, status string
		var n int64
		if err := wrows.Scan(&source, &status, &n); err != nil {
			return nil, fmt.Errorf("count waiting tasks: %w", err)
		}
		if c.Waiting[source] == nil {
			c.Waiting[source] = map[string]int64{}
		}
		c.Waiting[source][status] = n
	}
	if err := wrows.Err(); err != nil {
		return nil, fmt.Errorf("count waiting tasks: %w", err)
	}
	return c, nil
}

// Sources lists every source the store has recorded, configured or not
// (a source removed from the configuration keeps its row), by name.
func (s *Store) Sources(ctx context.Context) ([]Source, error) {
	var out []Source
	if err := s.db.WithContext(ctx).Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list the recorded sources: %w", err)
	}
	return out, nil
}
