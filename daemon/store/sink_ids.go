package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// SinkServiceIDs returns every resource of a kind that the sink's service
// holds for roster, roster id → service id: a full comparison looks at
// those too, since some may have left the directory or the scope.
func (s *Store) SinkServiceIDs(ctx context.Context, sink, kind string) (map[string]string, error) {
	rows, err := s.db.WithContext(ctx).Raw(`SELECT resource_id, service_id FROM sink_ids WHERE sink = ? AND kind = ?`, sink, kind).Rows()
	if err != nil {
		return nil, fmt.Errorf("read the %s ids of sink %s: %w", kind, sink, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, sid string
		if err := rows.Scan(&id, &sid); err != nil {
			return nil, fmt.Errorf("read the %s ids of sink %s: %w", kind, sink, err)
		}
		out[id] = sid
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the %s ids of sink %s: %w", kind, sink, err)
	}
	return out, nil
}

// SetServiceIDs records the ids the sink's service gave resources of a
// kind (roster id → service id) in one transaction: a /Bulk answer
// brings a hundred at once.
func (s *Store) SetServiceIDs(ctx context.Context, sink, kind string, ids map[string]string) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for id, sid := range ids {
			if err := tx.Exec(`INSERT INTO sink_ids (sink, kind, resource_id, service_id) VALUES (?, ?, ?, ?)
			ON CONFLICT (sink, kind, resource_id) DO UPDATE SET service_id = excluded.service_id`, sink, kind, id, sid).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record the %s ids of sink %s: %w", kind, sink, err)
	}
	return nil
}
