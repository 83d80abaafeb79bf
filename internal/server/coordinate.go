package server

// Coordination of repositories (package coord) as the server uses it.

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/coord"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
)

// Coordinate makes this server the coordinator of repo until release is
// called (package coord): code that commits to a repository or maintains
// it calls it first, works with the returned context, and releases.
func (s *Server) Coordinate(ctx context.Context, repo string) (context.Context, func(), error) {
	return s.coordinator().Coordinate(ctx, repo)
}

// CloseStorage gives up the leases this server holds and stops renewing
// them; Serve's caller calls it after Serve returns.
func (s *Server) CloseStorage() {
	s.coordinator().Close()
}

// refuseCoordinate answers a failed Coordinate: 503 with Retry-After (the
// seconds until the holder's lease expires) if another server coordinates
// the repository, the storage error's status otherwise.
func (s *Server) refuseCoordinate(q *repohttp.Request, err error) {
	var nc *coord.NotCoordinatorError
	if !errors.As(err, &nc) {
		q.Fail("coordinate", err)
		return
	}
	secs := int(math.Ceil(nc.Until.Sub(s.opts.Now()).Seconds()))
	q.W.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
	q.Refuse(http.StatusServiceUnavailable, restapi.CodeNotCoordinator, "%v", err)
}

func (s *Server) coordinator() *coord.Coordinator {
	s.coordOnce.Do(func() {
		s.coord = coord.New(s.repos, coord.HolderName(s.data.Dir), s.opts.Now, s.log)
	})
	return s.coord
}
