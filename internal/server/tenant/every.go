package tenant

import (
	"sync"
	"time"
)

// Every allows each client one request of a kind per Every (the zero
// value: every time); Allow says how long to wait otherwise.
type Every struct {
	Every time.Duration

	mu   sync.Mutex
	last map[string]time.Time
}

// Allow takes client's turn at now, or says how long until it has one.
func (l *Every) Allow(client string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	if t, ok := l.last[client]; ok && now.Sub(t) < l.Every {
		return l.Every - now.Sub(t), false
	}
	l.last[client] = now
	return 0, true
}
