package s3_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend/s3"
	"github.com/cairnbackup/cairn/internal/minioserver"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLease(t *testing.T) {
	srv := minioserver.Start(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg := config(srv, "leases", "fleet")
	cfg.Now = clock.Now
	// Two servers in front of one bucket, sharing the (fake) time.
	a := create(t, cfg)
	b := create(t, cfg)
	const ttl = time.Minute

	la, err := a.AcquireLease(ctx, "repo1", "server-a", ttl)
	if err != nil {
		t.Fatalf("a acquires: %v", err)
	}
	if _, err := b.AcquireLease(ctx, "repo1", "server-b", ttl); !errors.Is(err, s3.ErrLeaseHeld) {
		t.Fatalf("b acquires a held lease: got %v, want ErrLeaseHeld", err)
	}
	// Another repository is independent.
	if _, err := b.AcquireLease(ctx, "repo2", "server-b", ttl); err != nil {
		t.Fatalf("b acquires another repository: %v", err)
	}
	// a renews before expiry; b still cannot take it after the first ttl.
	clock.Advance(50 * time.Second)
	if err := a.Renew(ctx, &la, ttl); err != nil {
		t.Fatalf("a renews: %v", err)
	}
	clock.Advance(30 * time.Second)
	if _, err := b.AcquireLease(ctx, "repo1", "server-b", ttl); !errors.Is(err, s3.ErrLeaseHeld) {
		t.Fatalf("b acquires a renewed lease: got %v, want ErrLeaseHeld", err)
	}
	// a stops renewing; after expiry b takes over and a has lost it.
	clock.Advance(31 * time.Second)
	lb, err := b.AcquireLease(ctx, "repo1", "server-b", ttl)
	if err != nil {
		t.Fatalf("b takes over an expired lease: %v", err)
	}
	if err := a.Renew(ctx, &la, ttl); !errors.Is(err, s3.ErrLeaseLost) {
		t.Fatalf("a renews a lost lease: got %v, want ErrLeaseLost", err)
	}
	if err := a.Release(ctx, &la); !errors.Is(err, s3.ErrLeaseLost) {
		t.Fatalf("a releases a lost lease: got %v, want ErrLeaseLost", err)
	}
	if _, err := a.AcquireLease(ctx, "repo1", "server-a", ttl); !errors.Is(err, s3.ErrLeaseHeld) {
		t.Fatalf("a acquires b's lease: got %v, want ErrLeaseHeld", err)
	}
	// b releases: a may take it at once.
	if err := b.Release(ctx, &lb); err != nil {
		t.Fatalf("b releases: %v", err)
	}
	if _, err := a.AcquireLease(ctx, "repo1", "server-a", ttl); err != nil {
		t.Fatalf("a acquires a released lease: %v", err)
	}
}

// TestLeaseRace: of many servers taking over one expired lease at once,
// exactly one wins.
func TestLeaseRace(t *testing.T) {
	srv := minioserver.Start(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg := config(srv, "leaserace", "")
	cfg.Now = clock.Now
	be := create(t, cfg)
	if _, err := be.AcquireLease(ctx, "r", "old", time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	for round, stale := range []bool{true, false} {
		if !stale {
			// Also the race for a lease nobody has held.
			cfg.Prefix = "fresh"
			be = create(t, cfg)
		}
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = be.AcquireLease(ctx, "r", "holder-"+string(rune('a'+i)), time.Minute)
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, s3.ErrLeaseHeld):
				t.Errorf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d holders won, want 1", round, won)
		}
	}
}
