package tenant

import (
	"sync"
	"time"
)

// AuthLimiter is a token bucket of failed authentications per source
// address: each failure takes a token, perMinute tokens come back a
// minute. A source with no token left gets 429 for credentials it has not
// proven before (the authenticator's cache still lets a proven client
// in), without a bcrypt comparison. The table holds at most maxSources
// sources; when full, sources whose bucket is full again go first, and if
// none has, the table starts afresh (bounded memory before fairness).
type AuthLimiter struct {
	perMinute  float64
	now        func() time.Time
	maxSources int

	mu      sync.Mutex
	buckets map[string]*authBucket
}

type authBucket struct {
	tokens float64
	at     time.Time
}

// NewAuthLimiter allows perMinute failures a minute per source.
func NewAuthLimiter(perMinute int, now func() time.Time) *AuthLimiter {
	return &AuthLimiter{perMinute: float64(perMinute), now: now, maxSources: 10000, buckets: map[string]*authBucket{}}
}

// refill brings b up to now; the caller holds mu.
func (a *AuthLimiter) refill(b *authBucket, now time.Time) {
	b.tokens = min(a.perMinute, b.tokens+now.Sub(b.at).Minutes()*a.perMinute)
	b.at = now
}

// Allowed reports whether source may try credentials the server has not
// seen succeed, and if not, how long until it may.
func (a *AuthLimiter) Allowed(source string) (bool, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.buckets[source]
	if b == nil {
		return true, 0
	}
	a.refill(b, a.now())
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / a.perMinute * float64(time.Minute))
}

// Failed takes a token from source.
func (a *AuthLimiter) Failed(source string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	b := a.buckets[source]
	if b == nil {
		if len(a.buckets) >= a.maxSources {
			for k, o := range a.buckets {
				if a.refill(o, now); o.tokens >= a.perMinute {
					delete(a.buckets, k)
				}
			}
			if len(a.buckets) >= a.maxSources {
				a.buckets = map[string]*authBucket{}
			}
		}
		b = &authBucket{tokens: a.perMinute, at: now}
		a.buckets[source] = b
	}
	a.refill(b, now)
	b.tokens = max(0, b.tokens-1)
}

// UploadSlots counts each client's uploads in progress.
type UploadSlots struct {
	mu sync.Mutex
	n  map[string]int
}

// Take reserves an upload slot for client unless it holds max already;
// release gives it back.
func (u *UploadSlots) Take(client string, max int) (release func(), ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n == nil {
		u.n = map[string]int{}
	}
	if u.n[client] >= max {
		return nil, false
	}
	u.n[client]++
	return sync.OnceFunc(func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.n[client]--; u.n[client] <= 0 {
			delete(u.n, client)
		}
	}), true
}

// InUse is how many uploads client has in progress.
func (u *UploadSlots) InUse(client string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n[client]
}
