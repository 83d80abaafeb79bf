package rest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/backend/retry"
	"github.com/cairnbackup/cairn/internal/server"
	"github.com/cairnbackup/cairn/internal/server/datadir"
)

// sessionServer runs a cairn server on loopback with client "suite", a
// TTL of one minute and a clock the test moves.
func sessionServer(t *testing.T) (addr string, data *datadir.Data, advance func(time.Duration)) {
	t.Helper()
	var mu sync.Mutex
	now := time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	addr, data = startServer(t, server.Options{Now: clock, SessionTTL: time.Minute})
	return addr, data, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
}

// TestLease: the REST backend is a backend.Leaser, found through the
// retry decorator; heartbeats of an expired lease fail with
// ErrLeaseGone; a snapshot saved with WithLease ends the session.
func TestLease(t *testing.T) {
	ctx := context.Background()
	addr, data, advance := sessionServer(t)
	u, err := rest.ParseURL(fmt.Sprintf("rest:http://suite:%s@%s/suite/r", password, addr))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := rest.Create(ctx, rest.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	be := retry.New(rb, retry.Options{Attempts: 1})
	if _, ok := backend.AsLeaser(mem.New()); ok {
		t.Fatal("the memory backend claims to keep leases")
	}
	l, ok := backend.AsLeaser(be)
	if !ok {
		t.Fatal("no Leaser behind the retry decorator")
	}
	lease, err := l.OpenLease(ctx)
	if err != nil || len(lease.ID) != 32 || lease.TTL != time.Minute || lease.ServerTime.IsZero() {
		t.Fatalf("open: %+v %v", lease, err)
	}
	advance(50 * time.Second)
	if _, err := l.HeartbeatLease(ctx, lease.ID); err != nil {
		t.Fatalf("heartbeat within the TTL: %v", err)
	}
	advance(61 * time.Second)
	if _, err := l.HeartbeatLease(ctx, lease.ID); !errors.Is(err, backend.ErrLeaseGone) {
		t.Fatalf("heartbeat after the TTL: %v", err)
	}
	if err := l.EndLease(ctx, lease.ID); err != nil {
		t.Fatalf("end an expired lease: %v", err)
	}
	if err := l.EndLease(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("end an unknown lease: %v", err)
	}

	lease, err = l.OpenLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("a snapshot file of a repository the server does not validate")
	h := backend.Handle{Type: backend.Snapshots, Name: backend.NameOf(body)}
	if err := be.Save(backend.WithLease(ctx, lease.ID), h, backend.NewByteReader(body)); err != nil {
		t.Fatal(err)
	}
	s, err := data.State.Session(ctx, "suite", "suite/r", lease.ID)
	if err != nil || s.Ended.IsZero() || s.EndNote != "committed" {
		t.Fatalf("session after its snapshot was saved: %+v %v", s, err)
	}
	if _, err := l.HeartbeatLease(ctx, lease.ID); !errors.Is(err, backend.ErrLeaseGone) {
		t.Fatalf("heartbeat after the commit: %v", err)
	}
	// Only snapshot files carry the session.
	lease, _ = l.OpenLease(ctx)
	data2 := []byte("not a snapshot")
	if err := be.Save(backend.WithLease(ctx, lease.ID), backend.Handle{Type: backend.Data, Name: backend.NameOf(data2)}, backend.NewByteReader(data2)); err != nil {
		t.Fatal(err)
	}
	if s, _ := data.State.Session(ctx, "suite", "suite/r", lease.ID); !s.Ended.IsZero() {
		t.Fatalf("a data upload ended the session: %+v", s)
	}
}

// TestLeaseWaitsInQueue: against a server that runs one backup at a
// time, a second OpenLease waits in the queue, tells its watcher its
// place, and gets its lease once the first ends.
func TestLeaseWaitsInQueue(t *testing.T) {
	ctx := context.Background()
	addr, _ := startServer(t, server.Options{MaxBackups: 1, QueueHold: 200 * time.Millisecond})
	leaser := func(repo string) backend.Leaser {
		u, err := rest.ParseURL(fmt.Sprintf("rest:http://suite:%s@%s/suite/%s", password, addr, repo))
		if err != nil {
			t.Fatal(err)
		}
		rb, err := rest.Create(ctx, rest.Config{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		return rb
	}
	first, second := leaser("one"), leaser("two")
	a, err := first.OpenLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waits := make(chan backend.QueueWait, 100)
	type result struct {
		l   backend.Lease
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := second.OpenLease(backend.WithQueueWatcher(ctx, func(w backend.QueueWait) { waits <- w }))
		done <- result{l, err}
	}()
	if w := <-waits; w.Position != 1 || w.Running != 1 || w.Limit != 1 {
		t.Fatalf("queued at %+v", w)
	}
	if err := first.EndLease(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.l.ID) != 32 || r.l.ID == a.ID {
		t.Fatalf("the queued open: %+v %v", r.l, r.err)
	}
	close(waits)
	for w := range waits {
		if w.Position != 1 {
			t.Errorf("later wait at %+v", w)
		}
	}
}
