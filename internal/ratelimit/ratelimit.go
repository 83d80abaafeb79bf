// Package ratelimit paces bytes to a rate: a destination's replication
// bandwidth on a server, a client's --limit-upload and --limit-download.
// One Limiter is shared by every stream it wraps, so the rate holds
// across concurrent transfers.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/clock"
	"github.com/cairnbackup/cairn/internal/units"
)

// Limiter is a token bucket of bytes. It lets a burst of up to one
// second's worth through, then makes each read wait until the bytes it
// returned are paid for.
type Limiter struct {
	rate  float64 // bytes per second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a limiter of bytesPerSecond (> 0) on the machine's clock.
func New(bytesPerSecond int64) *Limiter {
	return NewWithClock(bytesPerSecond, time.Now, clock.Sleep)
}

// NewWithClock is New on a given clock: now tells the time, sleep waits
// (or returns ctx's error once ctx is done). Tests pass a virtual one.
func NewWithClock(bytesPerSecond int64, now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) *Limiter {
	l := &Limiter{rate: float64(bytesPerSecond), burst: float64(bytesPerSecond), now: now, sleep: sleep}
	l.tokens = l.burst
	l.last = now()
	return l
}

// Rate is the limit in bytes a second.
func (l *Limiter) Rate() int64 { return int64(l.rate) }

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
		return ctx.Err()
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

// Limits are a client's two directions; a nil Limiter is unlimited.
type Limits struct {
	Upload, Download *Limiter
}

// Transport wraps rt so that request bodies are paced by the upload
// limiter and response bodies by the download limiter, each with the
// request's context. With no limits it returns rt itself.
func (ls Limits) Transport(rt http.RoundTripper) http.RoundTripper {
	if ls.Upload == nil && ls.Download == nil {
		return rt
	}
	return &transport{rt: rt, ls: ls}
}

type transport struct {
	rt http.RoundTripper
	ls Limits
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.ls.Upload != nil && req.Body != nil && req.Body != http.NoBody {
		// A RoundTripper must not change the request it was given.
		r2 := req.Clone(req.Context())
		r2.Body = t.upload(req, req.Body)
		if req.GetBody != nil { // a resent body is paced too
			r2.GetBody = func() (io.ReadCloser, error) {
				b, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				return t.upload(req, b), nil
			}
		}
		req = r2
	}
	resp, err := t.rt.RoundTrip(req)
	if err != nil || t.ls.Download == nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &readCloser{Reader: t.ls.Download.Reader(req.Context(), resp.Body), c: resp.Body}
	return resp, nil
}

// CloseIdleConnections passes http.Client's call on to the transport.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *transport) upload(req *http.Request, body io.ReadCloser) io.ReadCloser {
	return &readCloser{Reader: t.ls.Upload.Reader(req.Context(), body), c: body}
}

type readCloser struct {
	io.Reader
	c io.Closer
}

func (r *readCloser) Close() error { return r.c.Close() }

// ErrRate is a rate that does not parse.
var ErrRate = errors.New("invalid rate")

// ParseRate parses a rate such as "20MiB/s", "500KiB/s" or "1.5M" (the
// "/s" is optional; units are powers of 1024 as everywhere in cairn) into
// bytes a second. A bare number is refused: restic's --limit-upload
// counts KiB/s, and a rate off by 1024 should not pass silently.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "ps")
	if t == "" || strings.IndexFunc(t, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' }) < 0 {
		return 0, fmt.Errorf("%w %q: give a unit, such as 20MiB/s or 500KiB/s", ErrRate, s)
	}
	n, err := units.ParseSize(t)
	if err != nil || n == 0 || n > math.MaxInt64 {
		return 0, fmt.Errorf("%w %q: want a rate above zero, such as 20MiB/s or 500KiB/s", ErrRate, s)
	}
	return int64(n), nil
}
