package tenant

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/singleflight"
)

// Usage tracks the bytes each client stores, for quotas and metrics. A
// client's figure is measured in the storage on first use, then kept up to
// date by the handlers: a reservation before each upload, released if the
// upload fails, and a release after each delete. A measurement walks the
// client's storage without holding the figures' lock, so it holds up
// only that client's callers, who share it; no other client waits.
type Usage struct {
	measure func(ctx context.Context, client string) (int64, error)

	mu     sync.Mutex
	used   map[string]int64
	gen    map[string]uint64 // counts Remeasure: a measurement begun before it is not kept
	flight singleflight.Group
}

// NewUsage keeps the figures measure takes in the storage.
func NewUsage(measure func(ctx context.Context, client string) (int64, error)) *Usage {
	return &Usage{measure: measure, used: make(map[string]int64), gen: make(map[string]uint64)}
}

// Get is the bytes client stores.
func (u *Usage) Get(client string) (int64, error) {
	var n int64
	err := u.with(client, func(cur int64) { n = cur })
	return n, err
}

// Reserve adds n bytes to client's usage unless that would exceed quota
// (0: unlimited); it reports the usage before and whether it fit.
func (u *Usage) Reserve(client string, n, quota int64) (int64, bool, error) {
	var cur int64
	var fit bool
	err := u.with(client, func(c int64) {
		cur = c
		if fit = quota <= 0 || c+n <= quota; fit {
			u.used[client] = c + n
		}
	})
	return cur, fit, err
}

// with calls f with client's figure under u.mu, measuring the figure
// first if it is not known.
func (u *Usage) with(client string, f func(cur int64)) error {
	for {
		u.mu.Lock()
		if cur, ok := u.used[client]; ok {
			f(cur)
			u.mu.Unlock()
			return nil
		}
		u.mu.Unlock()
		if _, err, _ := u.flight.Do(client, func() (any, error) { return nil, u.measureOnce(client) }); err != nil {
			return err
		}
		// Measured, unless a Remeasure came meanwhile: look again.
	}
}

// measureOnce measures client's storage and keeps the figure unless one
// is known by now or Remeasure was called meanwhile.
func (u *Usage) measureOnce(client string) error {
	u.mu.Lock()
	_, known := u.used[client]
	gen := u.gen[client]
	u.mu.Unlock()
	if known {
		return nil
	}
	n, err := u.measure(context.Background(), client)
	if err != nil {
		return fmt.Errorf("measure storage of %s: %w", client, err)
	}
	u.mu.Lock()
	if _, known := u.used[client]; !known && u.gen[client] == gen {
		u.used[client] = n
	}
	u.mu.Unlock()
	return nil
}

// Release subtracts n bytes.
func (u *Usage) Release(client string, n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if cur, ok := u.used[client]; ok {
		u.used[client] = max(0, cur-n)
	}
}

// Remeasure makes the next figure of client a fresh measurement: files
// were deleted and written past the upload accounting (maintenance).
func (u *Usage) Remeasure(client string) {
	u.mu.Lock()
	delete(u.used, client)
	u.gen[client]++
	u.mu.Unlock()
}
