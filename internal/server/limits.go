package server

// Bounded resources (R26): no request, authenticated or not, leaves state
// behind beyond fixed bounds, and no client can hold a server resource
// for longer than its own progress allows.
//
//   - Metric labels come from fixed sets: a method outside GET, HEAD,
//     POST, DELETE is "other" (and refused before anything else), a client
//     label is only ever an authenticated client's name, a type label a
//     file type from restapi.ParsePath.
//   - Headers are capped (MaxHeaderBytes) and must arrive within
//     HeaderTimeout; a body must keep a minimum average rate after a grace
//     period and never stall longer than BodyIdle (repohttp.BodyLimit);
//     the number of connections is capped (repohttp.LimitListener).
//   - Failed authentication is rate-limited per source address
//     (tenant.AuthLimiter); bcrypt comparisons run a few at a time.
//   - Per client: concurrent uploads (tenant.UploadSlots), backup sessions
//     (package sessions) and repositories (mayCreateRepo) are capped.

import (
	"net/http"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// Defaults of the limits in Options.
const (
	DefaultSessionTTL      = 10 * time.Minute
	DefaultMaxSessions     = 64
	DefaultMaxHeaderBytes  = 64 << 10
	DefaultHeaderTimeout   = 10 * time.Second
	DefaultIdleTimeout     = 2 * time.Minute
	DefaultBodyGrace       = 10 * time.Second
	DefaultBodyIdle        = 30 * time.Second
	DefaultBodyMinRate     = 16 << 10 // bytes per second
	DefaultMaxConns        = 4096
	DefaultMaxUploads      = 8 // per client
	DefaultMaxRepos        = 16
	DefaultAuthFailures    = 30 // per source and minute
	DefaultMaintainWait    = 30 * time.Second
	DefaultMaxUploadMemory = 128 << 20
	DefaultMaxMetaUpload   = 64 << 20
)

// repoCreateCost is the quota headroom creating a repository needs: about
// what its config and first key file take.
const repoCreateCost = 4 << 10

// mayCreateRepo refuses client a new repository beyond MaxRepos, or
// without quota headroom for one.
func (s *Server) mayCreateRepo(c state.Client) func(count int) error {
	return func(count int) error {
		if count >= s.opts.MaxRepos {
			return repohttp.Refusef(http.StatusForbidden, restapi.CodeTooManyRepos, "client %s has %d repositories, the most the server allows; use one of them or ask the operator to raise --max-repos", c.Name, count)
		}
		if c.Quota > 0 {
			used, err := s.usage.Get(c.Name)
			if err != nil {
				return err
			}
			if used+repoCreateCost > c.Quota {
				return repohttp.Refusef(http.StatusInsufficientStorage, restapi.CodeQuota, "quota exceeded: client %s stores %d of its %d bytes; a new repository needs %d bytes of headroom", c.Name, used, c.Quota, repoCreateCost)
			}
		}
		return nil
	}
}
