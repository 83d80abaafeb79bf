package agent

// A run's backup slot: against a cairn server that paces its fleet
// (server run --max-backups), the agent takes its place in the queue
// before its before hooks, so no service is stopped and no database
// locked while the run waits for its turn. It opens one backup session
// (waiting in the queue as a backup would), keeps it alive while the run
// lasts, and hands its ID to every backup the run makes (backup
// --session): they heartbeat it instead of opening their own, so they
// never queue again. The run ends the session; should the agent die, the
// session expires on the server's clock after its TTL without
// heartbeats, like any backup's. A session is a session: one held this
// way counts against the client's --max-sessions like any other.

import (
	"context"
	"errors"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
)

// slotEndTimeout bounds ending the session when the run is over.
const slotEndTimeout = 10 * time.Second

// HoldSession opens a backup session on l, waiting in the server's queue
// and logging where it stands with logf, and heartbeats it every third
// of its TTL until release, which ends it.
func HoldSession(ctx context.Context, l backend.Leaser, logf func(format string, args ...any)) (id string, release func(), err error) {
	last := 0
	watch := func(w backend.QueueWait) {
		if w.Position != last {
			logf("waiting for a backup slot on the server before any hook: place %d in the queue (%d of %d backups running)", w.Position, w.Running, w.Limit)
			last = w.Position
		}
	}
	lease, err := l.OpenLease(backend.WithQueueWatcher(ctx, watch))
	if err != nil {
		return "", nil, err
	}
	if last != 0 {
		logf("got a backup slot on the server")
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	every := max(lease.TTL/3, 100*time.Millisecond)
	if lease.TTL <= 0 {
		every = time.Minute
	}
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
			}
			_, err := l.HeartbeatLease(hctx, lease.ID)
			switch {
			case hctx.Err() != nil:
				return
			case errors.Is(err, backend.ErrLeaseGone):
				logf("warning: the run's backup session on the server ended: %v", err)
				return
			case err != nil:
				logf("warning: backup session heartbeat failed; trying again: %v", err)
			}
		}
	}()
	release = func() {
		cancel()
		<-done
		ectx, ecancel := context.WithTimeout(context.Background(), slotEndTimeout)
		defer ecancel()
		if err := l.EndLease(ectx, lease.ID); err != nil {
			logf("warning: ending the run's backup session failed; it expires by itself: %v", err)
		}
	}
	return lease.ID, release, nil
}
