package tenant

import (
	"context"
	"fmt"
	"sync"
)

// Usage tracks the bytes each client stores, for quotas and metrics. A
// client's figure is measured in the storage on first use, then kept up to
// date by the handlers: a reservation before each upload, released if the
// upload fails, and a release after each delete.
type Usage struct {
	measure func(ctx context.Context, client string) (int64, error)

	mu   sync.Mutex
	used map[string]int64
}

// NewUsage keeps the figures measure takes in the storage.
func NewUsage(measure func(ctx context.Context, client string) (int64, error)) *Usage {
	return &Usage{measure: measure, used: make(map[string]int64)}
}

// Get is the bytes client stores.
func (u *Usage) Get(client string) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.getLocked(client)
}

func (u *Usage) getLocked(client string) (int64, error) {
	if n, ok := u.used[client]; ok {
		return n, nil
	}
	n, err := u.measure(context.Background(), client)
	if err != nil {
		return 0, fmt.Errorf("measure storage of %s: %w", client, err)
	}
	u.used[client] = n
	return n, nil
}

// Reserve adds n bytes to client's usage unless that would exceed quota
// (0: unlimited); it reports the usage before and whether it fit.
func (u *Usage) Reserve(client string, n, quota int64) (int64, bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	cur, err := u.getLocked(client)
	if err != nil {
		return 0, false, err
	}
	if quota > 0 && cur+n > quota {
		return cur, false, nil
	}
	u.used[client] = cur + n
	return cur, true, nil
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
	u.mu.Unlock()
}
