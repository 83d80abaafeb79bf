package repository

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
)

// A backup session on a backend that keeps leases (a cairn server,
// backend.Leaser) holds one from before it reads the condemnation plans
// until its snapshot is stored, so the server's prune does not sweep a
// pack the session may dedup against (R12). The lease is opened before
// the plans are read: a session the server counts as opened after a
// plan's condemnation time has seen that plan.
//
// Nothing here fails a backup: without a lease (a server that has none,
// a network error) the grace period alone protects the session, and a
// commit is validated by the server whatever the lease's state (R11).

// leaseEndTimeout bounds ending a lease when the backup's own context is
// already cancelled.
const leaseEndTimeout = 10 * time.Second

// leaseKeeper holds one lease and heartbeats it every TTL/3.
type leaseKeeper struct {
	l   backend.Leaser
	id  string
	log *slog.Logger

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}

	// held: the session is the caller's (backend.WithHeldLease): kept
	// alive while the backup runs, never named in its commit nor ended.
	held bool

	mu     sync.Mutex
	gone   bool // the server said it ended or expired
	closed bool // ended (by us, or by the commit); nothing left to do
}

// openLease opens a lease if r's backend keeps them; nil otherwise (every
// method of a nil keeper does nothing).
func (r *Repository) openLease(ctx context.Context) *leaseKeeper {
	l, ok := backend.AsLeaser(r.be)
	if !ok {
		return nil
	}
	held := false
	var lease backend.Lease
	var err error
	if id := backend.HeldLeaseFrom(ctx); id != "" {
		if lease, err = l.HeartbeatLease(ctx, id); err == nil {
			held = true
		} else {
			r.log.Warn("the backup session given to this backup cannot be used; opening one", "session", id, "err", err)
		}
	}
	if !held {
		lease, err = l.OpenLease(ctx)
	}
	if err != nil {
		r.log.Warn("no backup session lease; a prune on the server relies on its grace period alone while this backup runs", "err", err)
		return nil
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k := &leaseKeeper{l: l, id: lease.ID, held: held, log: r.log.With("session", lease.ID), cancel: cancel, done: make(chan struct{})}
	every := max(lease.TTL/3, 100*time.Millisecond)
	if lease.TTL <= 0 {
		every = time.Minute
	}
	k.log.Debug("backup session opened", "ttl", lease.TTL)
	go k.heartbeat(hctx, every)
	return k
}

func (k *leaseKeeper) heartbeat(ctx context.Context, every time.Duration) {
	defer close(k.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := k.l.HeartbeatLease(ctx, k.id)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, backend.ErrLeaseGone):
			k.mu.Lock()
			k.gone = true
			k.mu.Unlock()
			k.log.Warn("backup session lease expired: a prune may now delete packs this backup relies on; the server will refuse the commit if any of its blobs is gone, and the next backup uploads them again", "err", err)
			return
		case err != nil:
			k.log.Warn("backup session heartbeat failed; trying again", "err", err)
		}
	}
}

// ID is the lease's session ID, "" without one.
func (k *leaseKeeper) ID() string {
	if k == nil {
		return ""
	}
	return k.id
}

// commitID is the session ID a commit names (the server then ends the
// session), "" without one or for a held session.
func (k *leaseKeeper) commitID() string {
	if k == nil || k.held {
		return ""
	}
	return k.id
}

// Gone reports whether the server said the lease ended or expired.
func (k *leaseKeeper) Gone() bool {
	if k == nil {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.gone
}

func (k *leaseKeeper) stop() {
	k.stopOnce.Do(func() {
		k.cancel()
		<-k.done
	})
}

// committed notes that the snapshot naming the lease is stored: the server
// ended the session, heartbeats stop.
func (k *leaseKeeper) committed() {
	if k == nil {
		return
	}
	k.stop()
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
}

// end stops the heartbeats and ends the session on the server, unless a
// commit already did or the session is held (its owner ends it). A failure is only logged: the lease expires anyway.
func (k *leaseKeeper) end() {
	if k == nil {
		return
	}
	k.stop()
	k.mu.Lock()
	done := k.closed || k.gone || k.held
	k.closed = true
	k.mu.Unlock()
	if done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaseEndTimeout)
	defer cancel()
	if err := k.l.EndLease(ctx, k.id); err != nil {
		k.log.Warn("ending the backup session failed; its lease expires by itself", "err", err)
	}
}
