package server

import (
	"context"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/repository"
)

// Repository returns the backend of an existing repository
// (<client>/<repository…>) in the server's storage, or one wrapping
// backend.ErrNotFound; replication reads the primary through it.
func (s *Server) Repository(ctx context.Context, repo string) (backend.Backend, error) {
	return s.repos.Get(ctx, repo)
}

// AuditRepository returns the backend of a repository for the audit
// (internal/server/audit): as Repository, and also of one that lost its
// config and kept its files, which requests and replication never get
// (storage.Repos.GetForAudit): the audit heals its config only with one
// of its config versions.
func (s *Server) AuditRepository(ctx context.Context, repo string) (backend.Backend, error) {
	return s.repos.GetForAudit(ctx, repo)
}

// RepositoryPaths lists a client's repositories in storage
// (<client>/<repository…>), whether or not they ever got a snapshot.
func (s *Server) RepositoryPaths(ctx context.Context, client string) ([]string, error) {
	st, err := s.repos.Storage(ctx)
	if err != nil {
		return nil, err
	}
	return st.Repos(ctx, client)
}

// OpenRepository opens be, a copy of the server's repository repo (its
// primary or a replica), with the server's keys: the metadata identity
// and the coordinator key. nil, nil for a restic repository or one
// without a config yet. Replication applies a destination's retention
// with it.
func (s *Server) OpenRepository(ctx context.Context, repo string, be backend.Backend) (*repository.Repository, error) {
	prim, err := s.repos.Get(ctx, repo)
	if err != nil {
		return nil, err
	}
	cr, err := s.verify.Repo(ctx, repo, prim)
	if err != nil || cr == nil {
		return nil, err
	}
	return cr.Open(ctx, be)
}
