package server

import (
	"context"
	"fmt"
	"sync"

	"github.com/cairnbackup/cairn/internal/server/storage"
)

// usage tracks the bytes each client stores, for quotas and metrics. A
// client's figure is measured in the storage on first use, then kept up to
// date by the handlers: a reservation before each upload, released if the
// upload fails, and a release after each delete.
type usage struct {
	data *Data

	stOnce sync.Once
	st     storage.Storage
	stErr  error

	mu   sync.Mutex
	used map[string]int64
}

func newUsage(d *Data) *usage { return &usage{data: d, used: make(map[string]int64)} }

func (u *usage) get(client string) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.getLocked(client)
}

func (u *usage) getLocked(client string) (int64, error) {
	if n, ok := u.used[client]; ok {
		return n, nil
	}
	ctx := context.Background()
	u.stOnce.Do(func() { u.st, u.stErr = openStorage(ctx, u.data) })
	if u.stErr != nil {
		return 0, fmt.Errorf("measure storage of %s: %w", client, u.stErr)
	}
	n, err := u.st.Used(ctx, client)
	if err != nil {
		return 0, fmt.Errorf("measure storage of %s: %w", client, err)
	}
	u.used[client] = n
	return n, nil
}

// reserve adds n bytes to client's usage unless that would exceed quota
// (0: unlimited); it reports the usage before and whether it fit.
func (u *usage) reserve(client string, n, quota int64) (int64, bool, error) {
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

// release subtracts n bytes.
func (u *usage) release(client string, n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if cur, ok := u.used[client]; ok {
		u.used[client] = max(0, cur-n)
	}
}
