package backend

import (
	"context"
	"errors"
	"time"
)

// Leaser is the optional capability of a backend whose server tracks
// backup sessions (a cairn server; R12): a backup opens a lease before it
// uploads anything and heartbeats it until it commits, and a prune does
// not sweep a pack condemned while the lease was held until it has
// ended. Backends that talk to plain storage do not implement it; a
// backup there relies on the grace period alone.
//
// None of these calls is ever fatal to a backup: a lease that cannot be
// opened or kept only means prune falls back to the grace period, and the
// server validates every commit against what is stored (R11) whatever
// the lease's state.
type Leaser interface {
	// OpenLease starts a backup session.
	OpenLease(ctx context.Context) (Lease, error)
	// HeartbeatLease extends it; ErrLeaseGone if it ended or expired.
	HeartbeatLease(ctx context.Context, id string) (Lease, error)
	// EndLease ends it; ending an ended session succeeds.
	EndLease(ctx context.Context, id string) error
}

// Lease is a backup session as the server granted it.
type Lease struct {
	ID         string
	TTL        time.Duration // it expires this long after the last heartbeat
	ServerTime time.Time     // the server's clock when it answered
}

// ErrLeaseGone is returned for a heartbeat of a session that has ended or
// whose lease expired.
var ErrLeaseGone = errors.New("backup session has ended or its lease expired")

// AsLeaser returns be, or the first backend it wraps (through an
// Unwrap() Backend method, as decorators such as retry have), that is a
// Leaser. Lease calls bypass the decorators on purpose: none is fatal,
// a failed heartbeat is simply tried again at the next tick.
func AsLeaser(be Backend) (Leaser, bool) {
	for be != nil {
		if l, ok := be.(Leaser); ok {
			return l, true
		}
		u, ok := be.(interface{ Unwrap() Backend })
		if !ok {
			return nil, false
		}
		be = u.Unwrap()
	}
	return nil, false
}

type leaseKey struct{}

// WithLease returns ctx naming the backup session a snapshot file saved
// with it commits; a Leaser's Save of a snapshot sends the ID to the
// server, which ends the session once the snapshot is stored. An empty
// id returns ctx unchanged.
func WithLease(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, leaseKey{}, id)
}

// LeaseFrom returns the session ID WithLease put in ctx, or "".
func LeaseFrom(ctx context.Context) string {
	id, _ := ctx.Value(leaseKey{}).(string)
	return id
}

type heldKey struct{}

// WithHeldLease returns ctx with the backup session id that the caller
// opened and keeps (the agent, holding a slot of a paced server for its
// whole run; backup --session): a backup under it heartbeats that
// session instead of opening one, so it does not queue again, and
// neither names it in its commit nor ends it. An empty id returns ctx
// unchanged.
func WithHeldLease(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, heldKey{}, id)
}

// HeldLeaseFrom returns the session ID WithHeldLease put in ctx, or "".
func HeldLeaseFrom(ctx context.Context) string {
	id, _ := ctx.Value(heldKey{}).(string)
	return id
}

// QueueWait is where an open of a lease waits in the server's queue: a
// server that paces its fleet (a cairn server with --max-backups) lets
// only so many backups run at once, and OpenLease waits its turn.
type QueueWait struct {
	Position int           // 1: the next to start
	Running  int           // backups running on the server
	Limit    int           // how many may run at once
	Waited   time.Duration // since the open began
}

type queueKey struct{}

// WithQueueWatcher returns ctx with f, which OpenLease calls each time the
// server says the open is still queued (a progress line).
func WithQueueWatcher(ctx context.Context, f func(QueueWait)) context.Context {
	return context.WithValue(ctx, queueKey{}, f)
}

// QueueWatcherFrom returns the function WithQueueWatcher put in ctx, or
// one that does nothing.
func QueueWatcherFrom(ctx context.Context) func(QueueWait) {
	if f, ok := ctx.Value(queueKey{}).(func(QueueWait)); ok && f != nil {
		return f
	}
	return func(QueueWait) {}
}
