package replicate

import (
	"context"
	"io"
	"sync"
	"time"
)

// Limiter paces bytes to a rate shared by every reader it wraps: one
// destination's bandwidth limit across all of its concurrent copies. It
// lets a burst of up to one second's worth through, then makes each read
// wait until the bytes it returned are paid for.
type Limiter struct {
	rate  float64 // bytes per second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// NewLimiter returns a limiter of bytesPerSecond (> 0).
func NewLimiter(bytesPerSecond int64) *Limiter {
	l := &Limiter{rate: float64(bytesPerSecond), burst: float64(bytesPerSecond), now: time.Now, sleep: sleepCtx}
	l.tokens = l.burst
	l.last = l.now()
	return l
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// wait takes n bytes' worth of tokens, sleeping for what is owed.
func (l *Limiter) wait(ctx context.Context, n int) error {
	l.mu.Lock()
	now := l.now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	owed := -l.tokens
	l.mu.Unlock()
	if owed <= 0 {
		return nil
	}
	return l.sleep(ctx, time.Duration(owed/l.rate*float64(time.Second)))
}

// Reader wraps r so that what is read from it is paced by l.
func (l *Limiter) Reader(ctx context.Context, r io.Reader) io.Reader {
	return &limitedReader{ctx: ctx, r: r, l: l}
}

type limitedReader struct {
	ctx context.Context
	r   io.Reader
	l   *Limiter
}

// maxChunk keeps one read from taking far more than the burst at once.
const maxChunk = 64 << 10

func (r *limitedReader) Read(p []byte) (int, error) {
	if len(p) > maxChunk {
		p = p[:maxChunk]
	}
	n, err := r.r.Read(p)
	if n > 0 {
		if werr := r.l.wait(r.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}
