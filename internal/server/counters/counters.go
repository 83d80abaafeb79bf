// Package counters keeps each client's request and error counts in memory
// between flushes to the state database, where they go with the bytes the
// client stores (`cairn server status` and /metrics read them there).
package counters

import (
	"context"
	"log/slog"
	"sync"
)

// Store is where counts are flushed: the state database.
type Store interface {
	AddCounters(ctx context.Context, client string, requests, errs, bytesStored int64) error
}

// Counters are the counts not yet flushed; the zero value is ready.
type Counters struct {
	mu     sync.Mutex
	counts map[string]*count
}

type count struct{ requests, errors int64 }

// Count notes a request of client (and whether it failed); a request of
// no client is not counted.
func (c *Counters) Count(client string, failed bool) {
	if client == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[string]*count)
	}
	n := c.counts[client]
	if n == nil {
		n = &count{}
		c.counts[client] = n
	}
	n.requests++
	if failed {
		n.errors++
	}
}

// Flush writes the pending counts to st, each with the bytes used says
// the client stores, and starts afresh. A count st refuses is logged and
// dropped.
func (c *Counters) Flush(ctx context.Context, st Store, used func(client string) (int64, error), log *slog.Logger) {
	c.mu.Lock()
	counts := c.counts
	c.counts = nil
	c.mu.Unlock()
	for name, n := range counts {
		u, _ := used(name)
		if err := st.AddCounters(ctx, name, n.requests, n.errors, u); err != nil {
			log.Error("flush counters", "client", name, "err", err)
		}
	}
}
