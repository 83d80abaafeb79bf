package restapi

import "time"

// Backup sessions: POST {repo}/?session=open, ?session=heartbeat&id=ID and
// ?session=end&id=ID (docs/server.md). A session is a lease on the
// server's clock that a backup holds while it uploads, so a prune does not
// sweep a pack the backup may still reference (R12).
const (
	SessionParam     = "session" // the query parameter naming the action
	SessionIDParam   = "id"
	SessionOpen      = "open"
	SessionHeartbeat = "heartbeat"
	SessionEnd       = "end"
	// SessionTicketParam, on an open, names the queue place an earlier
	// open was given (SessionQueued.Ticket).
	SessionTicketParam = "ticket"
)

// SessionLease is the server's answer to every session request.
type SessionLease struct {
	ID         string    `json:"id"`
	TTLSeconds int64     `json:"ttl_seconds"` // the lease ends this long after the last open or heartbeat
	ServerTime time.Time `json:"server_time"` // RFC 3339, the server's clock
}

// TTL is the lease's time to live.
func (l SessionLease) TTL() time.Duration { return time.Duration(l.TTLSeconds) * time.Second }

// SessionQueued is the body of a 503 backup-queued answer to an open: the
// server paces its fleet (`server run --max-backups`) and this open waits
// in its queue. The client opens again with ticket=Ticket after
// RetryAfterSeconds to keep its place; a ticket not used for a while
// loses it (docs/server.md "Fleet pacing").
type SessionQueued struct {
	Ticket            string `json:"ticket"`
	Position          int    `json:"position"` // 1: next to start
	Running           int    `json:"running"`  // backups running on the server
	Limit             int    `json:"limit"`
	RetryAfterSeconds int    `json:"retry_after_seconds"`
}
