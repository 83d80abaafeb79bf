package sessions

// Fleet pacing (docs/server.md "Fleet pacing"): with MaxBackups set, at
// most that many backup sessions of all clients together hold a lease at
// once. A further open joins a FIFO queue and is held: the request waits
// on the server until its turn comes (answered 200 with the lease, as
// unpaced) or until Hold passes; then it is answered 503 backup-queued
// with a ticket and its position, and the client opens again with the
// ticket to keep its place. A place whose client has no request waiting
// and made none for Grace is dropped (the client vanished); a session
// granted to a vanished client is ended at that point ("never
// claimed"), or, should the grant's answer itself be lost, expires with
// its TTL like any session without heartbeats.
//
// The queue lives in this process's memory: a restarted server starts
// with an empty one, and clients that come back with tickets it does not
// know join at the back. Running sessions are counted in the state
// database (live sessions of every client), so sessions that survive a
// restart still count.

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// Defaults of the queue's timing.
const (
	DefaultHold  = 20 * time.Second // a queued open is held this long before it is answered 503
	DefaultGrace = time.Minute      // a place not asked about for this long is dropped
	// recheck is how often held opens look again: a lease that expired
	// frees a slot without any request.
	recheck = time.Second
)

// pacer is the fleet queue of a Sessions with MaxBackups.
type pacer struct {
	mu      sync.Mutex
	queue   []*waiter          // not yet granted, first to start first
	tickets map[string]*waiter // queued, or granted and not yet claimed
	wake    chan struct{}      // closed (and replaced) when a grant is made
	running int                // live sessions at the last count
	peak    int                // most live sessions at once since started
	peakAt  time.Time
	started time.Time
	last    state.Pacing // the summary last recorded
}

// waiter is one place in the queue.
type waiter struct {
	ticket, client, repo string
	seen                 time.Time // when a request about it last started or ended
	attached             int       // requests waiting on it now
	granted              *state.BackupSession
	refused              error
}

func (s *Sessions) pace() *pacer {
	s.paceOnce.Do(func() {
		s.pacer = &pacer{tickets: map[string]*waiter{}, wake: make(chan struct{}), started: s.Now()}
	})
	return s.pacer
}

var errTooManyWaiting = errors.New("too many queued opens")

// join finds the place ticket names for client's repo, or queues a new
// one (fresh).
func (p *pacer) join(client, repo, ticket string, max int, now time.Time) (w *waiter, fresh bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w, ok := p.tickets[ticket]; ok && w.client == client && w.repo == repo {
		w.attached++
		w.seen = now
		return w, false, nil
	}
	n := 0
	for _, w := range p.tickets {
		if w.client == client {
			n++
		}
	}
	if n >= max {
		return nil, false, errTooManyWaiting
	}
	id, err := newID()
	if err != nil {
		return nil, false, err
	}
	w = &waiter{ticket: id, client: client, repo: repo, seen: now, attached: 1}
	p.queue = append(p.queue, w)
	p.tickets[id] = w
	return w, true, nil
}

// leave notes that a request about w has ended at now.
func (p *pacer) leave(w *waiter, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.attached--
	w.seen = now
}

// dispatch drops vanished places and grants sessions to the head of the
// queue while fewer than MaxBackups are live, then records the summary.
func (s *Sessions) dispatch(ctx context.Context) {
	p := s.pace()
	ctx = context.WithoutCancel(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	now := s.Now()
	grace := s.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	for id, w := range p.tickets {
		if w.attached > 0 || now.Sub(w.seen) <= grace {
			continue
		}
		delete(p.tickets, id)
		p.queue = slices.DeleteFunc(p.queue, func(x *waiter) bool { return x == w })
		if w.granted != nil {
			if _, err := s.State.EndSession(ctx, w.client, w.repo, w.granted.ID, now, "never claimed"); err != nil && s.Log != nil {
				s.Log.Error("end an unclaimed backup session", "session", w.granted.ID, "err", err)
			}
		}
	}
	live, err := s.State.LiveSessions(ctx, now)
	if err != nil {
		if s.Log != nil {
			s.Log.Error("count backup sessions", "err", err)
		}
		return
	}
	n := 0
	for _, c := range live {
		n += c
	}
	granted := false
	for n < s.MaxBackups && len(p.queue) > 0 {
		w := p.queue[0]
		p.queue = p.queue[1:]
		id, err := newID()
		if err != nil {
			w.refused = err
			continue
		}
		b := state.BackupSession{ID: id, Client: w.client, Repo: w.repo, Opened: now, LastHeartbeat: now, Expires: now.Add(s.TTL)}
		if err := s.State.OpenSession(ctx, b, now, s.Max); err != nil {
			w.refused = err
			continue
		}
		w.granted = &b
		granted = true
		n++
	}
	p.running = n
	if n > p.peak {
		p.peak, p.peakAt = n, now
	}
	if granted {
		close(p.wake)
		p.wake = make(chan struct{})
	}
	sum := state.Pacing{Limit: s.MaxBackups, Running: n, Queued: []string{}, Peak: p.peak, PeakAt: p.peakAt, Started: p.started}
	for _, w := range p.queue {
		sum.Queued = append(sum.Queued, w.client)
	}
	if sum.Running != p.last.Running || sum.Peak != p.last.Peak || !slices.Equal(sum.Queued, p.last.Queued) || p.last.Updated.IsZero() {
		sum.Updated = now
		if err := s.State.SetPacing(ctx, sum); err != nil && s.Log != nil {
			s.Log.Error("record the backup queue", "err", err)
		}
		p.last = sum
	}
}

// Start records the queue's summary as the server starts: empty, or
// without a limit (so `server status` shows no queue a previous run left).
func (s *Sessions) Start(ctx context.Context) {
	if s.MaxBackups > 0 {
		s.dispatch(ctx)
		return
	}
	if err := s.State.SetPacing(ctx, state.Pacing{Queued: []string{}, Started: s.Now(), Updated: s.Now()}); err != nil && s.Log != nil {
		s.Log.Error("record the backup queue", "err", err)
	}
}

// position is w's place in the queue, 1 for the next to start; p.mu held.
func (p *pacer) position(w *waiter) int {
	return slices.Index(p.queue, w) + 1
}

// openPaced answers an open while the fleet is paced: with a lease at once
// when a slot is free and nobody waits before it; a new place is told its
// position at once (503), so the client can say it waits; an open with a
// ticket is held until its turn comes (200) or Hold passes (503 again).
func (s *Sessions) openPaced(q *repohttp.Request, client, repo string) {
	ctx := q.R.Context()
	p := s.pace()
	w, fresh, err := p.join(client, repo, q.R.URL.Query().Get(restapi.SessionTicketParam), s.Max, s.Now())
	if errors.Is(err, errTooManyWaiting) {
		q.Refuse(http.StatusTooManyRequests, restapi.CodeTooManySessions,
			"client %s already has %d backup sessions open or queued, the server's limit; end some and retry", client, s.Max)
		return
	}
	if err != nil {
		q.Fail("open session", err)
		return
	}
	defer func() { p.leave(w, s.Now()) }()
	hold := s.Hold
	if hold <= 0 {
		hold = DefaultHold
	}
	if fresh {
		hold = 0
	}
	deadline := time.NewTimer(hold)
	defer deadline.Stop()
	tick := time.NewTicker(recheck)
	defer tick.Stop()
	for {
		s.dispatch(ctx)
		p.mu.Lock()
		b, refused, pos, running, wake := w.granted, w.refused, p.position(w), p.running, p.wake
		if b != nil || refused != nil {
			delete(p.tickets, w.ticket)
		}
		p.mu.Unlock()
		switch {
		case errors.Is(refused, state.ErrTooManySessions):
			q.Refuse(http.StatusTooManyRequests, restapi.CodeTooManySessions,
				"client %s already has %d open backup sessions, the server's limit; end some (or let them expire, %v after their last heartbeat) and retry",
				client, s.Max, s.TTL)
			return
		case refused != nil:
			q.Fail("open session", refused)
			return
		case b != nil:
			q.Log.Info("backup session opened", "client", client, "repo", repo, "session", b.ID, "running", running, "limit", s.MaxBackups)
			s.answer(q, *b, s.Now())
			return
		}
		select {
		case <-wake:
		case <-tick.C:
		case <-ctx.Done():
			return // the client went away; its place waits Grace for it
		case <-deadline.C:
			const after = 1
			q.W.Header().Set("Retry-After", strconv.Itoa(after))
			q.W.Header().Set(restapi.HeaderError, restapi.CodeBackupQueued)
			q.W.Header().Set("Content-Type", "application/json")
			q.W.WriteHeader(http.StatusServiceUnavailable)
			writeJSON(q.W, restapi.SessionQueued{Ticket: w.ticket, Position: pos, Running: running, Limit: s.MaxBackups, RetryAfterSeconds: after})
			return
		}
	}
}

// Collector is the fleet queue's metrics; nil without MaxBackups.
func (s *Sessions) Collector() prometheus.Collector {
	if s.MaxBackups <= 0 {
		return nil
	}
	return paceCollector{s}
}

var (
	descRunning = prometheus.NewDesc("cairn_server_backups_running", "Backup sessions of all clients holding a lease.", nil, nil)
	descQueued  = prometheus.NewDesc("cairn_server_backups_queued", "Backup session opens waiting for a slot (--max-backups).", nil, nil)
	descPeak    = prometheus.NewDesc("cairn_server_backups_running_peak", "Most backup sessions holding a lease at once since the server started.", nil, nil)
	descLimit   = prometheus.NewDesc("cairn_server_backups_limit", "Backup sessions allowed at once (--max-backups).", nil, nil)
)

type paceCollector struct{ s *Sessions }

func (c paceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRunning
	ch <- descQueued
	ch <- descPeak
	ch <- descLimit
}

func (c paceCollector) Collect(ch chan<- prometheus.Metric) {
	live, err := c.s.State.LiveSessions(context.Background(), c.s.Now())
	n := 0
	for _, k := range live {
		n += k
	}
	p := c.s.pace()
	p.mu.Lock()
	queued, peak := len(p.queue), p.peak
	p.mu.Unlock()
	if err == nil {
		ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(n))
	}
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(queued))
	ch <- prometheus.MustNewConstMetric(descPeak, prometheus.GaugeValue, float64(peak))
	ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(c.s.MaxBackups))
}
