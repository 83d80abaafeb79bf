package server

// The web status page (internal/server/web) counts its failed logins
// against the same limiter as clients' (internal/server/tenant), so one source cannot
// try passwords faster on the page than on the API.

import "time"

// LoginAllowed reports whether source may try a password now, and if
// not, how long until it may.
func (s *Server) LoginAllowed(source string) (bool, time.Duration) {
	return s.authLimit.Allowed(source)
}

// LoginFailed counts a failed login from source.
func (s *Server) LoginFailed(source string) { s.authLimit.Failed(source) }
