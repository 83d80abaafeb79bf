package ticker

import (
	"sync"
	"sync/atomic"
	"time"
)

// Counts is the state of a long run for a progress report: items (files,
// packs, blobs: the caller says which) and bytes done, of the totals known
// so far (a total may grow while a walk finds more work).
type Counts struct {
	Items, TotalItems uint64
	Bytes, TotalBytes uint64
	Elapsed           time.Duration
	// Final is set on the last report, the one Stop makes: a report
	// function that thins its output must never drop it.
	Final bool
}

// Counter counts a long run's work and hands its Counts to a report
// function at a fixed interval, from its own goroutine. It is safe for
// concurrent use; a nil *Counter counts nothing, so work that takes an
// optional report calls it unconditionally.
type Counter struct {
	items, totalItems, bytes, totalBytes atomic.Uint64
	start                                time.Time
	report                               func(Counts)
	stop                                 func()
}

// Interval is how often a Counter reports.
const Interval = 250 * time.Millisecond

// Start returns a Counter that calls report every Interval until Stop;
// a nil report gives a nil Counter.
func Start(report func(Counts)) *Counter {
	if report == nil {
		return nil
	}
	c := &Counter{start: time.Now(), report: report}
	stop := Every(Interval, func() { c.report(c.Counts()) })
	c.stop = sync.OnceFunc(func() {
		stop()
		final := c.Counts()
		final.Final = true
		c.report(final)
	})
	return c
}

// AddTotal adds to the totals: work found to do.
func (c *Counter) AddTotal(items, bytes uint64) {
	if c != nil {
		c.totalItems.Add(items)
		c.totalBytes.Add(bytes)
	}
}

// Add adds work done.
func (c *Counter) Add(items, bytes uint64) {
	if c != nil {
		c.items.Add(items)
		c.bytes.Add(bytes)
	}
}

// Counts returns the counters now.
func (c *Counter) Counts() Counts {
	if c == nil {
		return Counts{}
	}
	return Counts{Items: c.items.Load(), TotalItems: c.totalItems.Load(), Bytes: c.bytes.Load(),
		TotalBytes: c.totalBytes.Load(), Elapsed: time.Since(c.start)}
}

// Stop ends the reports with a last one of the final counts (so that
// even work shorter than Interval reports once); once it returns, report
// is not running and will not be called again. Calling it more than once
// is fine.
func (c *Counter) Stop() {
	if c != nil {
		c.stop()
	}
}
