package store

import (
	"context"
	"fmt"
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
