package store

import (
	"context"

	"gorm.io/gorm"
)

// SCIMRead runs fn as the SCIM directory runs its filtered queries.
func SCIMRead(s *Store, ctx context.Context, fn func(db *gorm.DB) error) error {
	return (&scimDirectory{s: s}).read(ctx, false, fn)
}
