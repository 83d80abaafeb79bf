package state

import (
	"context"

	"github.com/cairnbackup/cairn/internal/server/state/schema"
)

// metaStorage is the meta key of the storage location; absent or empty
// means the data directory's repos/.
const metaStorage = "storage"

// Storage returns the storage location SetStorage recorded ("" if none).
func (s *State) Storage(ctx context.Context) (string, error) {
	return schema.Meta(ctx, s.db, metaStorage)
}

// SetStorage records the storage location.
func (s *State) SetStorage(ctx context.Context, loc string) error {
	return schema.SetMeta(ctx, s.db, metaStorage, loc)
}
