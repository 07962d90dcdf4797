package store

import (
	"context"
	"fmt"
)

// OutboxEnd is the position before every outbox entry not committed yet:
// whatever a read started afterwards sees covers every entry up to it. A
// sink's full comparison starts from it, so that it does not deliver again
// what the comparison already read.
func (s *Store) OutboxEnd(ctx context.Context) (Position, error) {
	p, err := s.outboxEnd(s.db.WithContext(ctx))
	if err != nil {
		return p, fmt.Errorf("read the end of the outbox: %w", err)
	}
	return p, nil
}
