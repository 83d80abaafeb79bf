package server

import (
	"context"

	"github.com/cairnbackup/cairn/internal/backend"
)

// Repository returns the backend of an existing repository
// (<client>/<repository…>) in the server's storage, or one wrapping
// backend.ErrNotFound; replication reads the primary through it.
func (s *Server) Repository(ctx context.Context, repo string) (backend.Backend, error) {
	return s.repos.Get(ctx, repo)
}
