package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/server/coord"
	"github.com/cairnbackup/cairn/internal/server/maintain"
)

// startMaintenance runs the maintenance scheduler (package maintain) on
// Options.MaintainTicks, or every MaintainTick, until ctx ends or stop is
// called.
func (s *Server) startMaintenance(ctx context.Context) (stop func()) {
	ticks := s.opts.MaintainTicks
	if ticks == nil {
		t := time.NewTicker(s.opts.MaintainTick)
		ticks = t.C
		stopScheduler := s.maintain.Start(ctx, ticks)
		return func() { stopScheduler(); t.Stop() }
	}
	return s.maintain.Start(ctx, ticks)
}

// maintainHost is the server as the maintenance scheduler sees it.
type maintainHost struct{ s *Server }

func (h maintainHost) Coordinate(ctx context.Context, repo string, wait time.Duration) (context.Context, func(), error) {
	cctx, release, err := h.s.coordinator().CoordinateWithin(ctx, repo, wait)
	switch {
	case errors.Is(err, coord.ErrBusy):
		return nil, nil, fmt.Errorf("%w: %w", maintain.ErrBusy, err)
	case errors.Is(err, coord.ErrNotCoordinator):
		return nil, nil, fmt.Errorf("%w: %w", maintain.ErrElsewhere, err)
	}
	return cctx, release, err
}

func (h maintainHost) Open(ctx context.Context, repo string) (*repository.Repository, backend.Backend, error) {
	be, err := h.s.repos.Get(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	cr, err := h.s.verify.Repo(ctx, repo, be)
	if err != nil || cr == nil {
		return nil, nil, err
	}
	r, err := cr.Open(ctx, be)
	return r, be, err
}

// Done forgets what a maintenance run may have made stale: the cached
// index (a prune may have rewritten it) and the client's measured usage
// (files deleted and written past the upload accounting).
func (h maintainHost) Done(client, repo string) {
	h.s.verify.DropIndex(repo)
	h.s.remeasure(client)
}
