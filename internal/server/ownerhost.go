package server

import (
	"context"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/server/maintain"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

// ownerHost is the server as owner requests (package owner) see it.
type ownerHost struct{ s *Server }

// CairnRepo returns the repository's storage and ID, if it is a cairn
// repository.
func (h ownerHost) CairnRepo(ctx context.Context, path string) (backend.Backend, [32]byte, bool, error) {
	be, err := h.s.repos.Get(ctx, path)
	if err != nil {
		return nil, [32]byte{}, false, err
	}
	cr, err := h.s.verify.Repo(ctx, path, be)
	if err != nil || cr == nil {
		return nil, [32]byte{}, false, err
	}
	return be, cr.RepoID(), true, nil
}

// Open opens the repository with the server's keys, as maintenance does.
func (h ownerHost) Open(ctx context.Context, path string) (*repository.Repository, backend.Backend, error) {
	return maintainHost(h).Open(ctx, path)
}

// Owner carries out an owner order through the maintenance scheduler.
func (h ownerHost) Owner(ctx context.Context, client, path string, o maintain.OwnerOrder, check func(*repository.Repository) error) (*maintain.OwnerResult, error) {
	return h.s.maintain.Owner(ctx, client, path, o, check)
}

// RecordDrill records a drill in the state database.
func (h ownerHost) RecordDrill(ctx context.Context, d reports.Drill) error {
	return h.s.data.State.RecordDrill(ctx, d)
}

// RefuseCoordinate answers a failed Coordinate (coordinate.go).
func (h ownerHost) RefuseCoordinate(q *repohttp.Request, err error) {
	h.s.refuseCoordinate(q, err)
}
