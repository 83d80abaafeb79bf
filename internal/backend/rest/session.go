package rest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/clock"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// The client side of a cairn server's backup sessions (backend.Leaser;
// docs/server.md). A restic rest-server does not know them: opening one
// fails there, and a backup goes on without a lease.

var _ backend.Leaser = (*Backend)(nil)

// OpenLease implements backend.Leaser. A server that paces its fleet
// answers 503 backup-queued while its limit of running backups is
// reached (docs/server.md "Fleet pacing"): OpenLease then waits its turn,
// opening again with the queue ticket, and tells the context's
// backend.QueueWatcher its place each time.
func (b *Backend) OpenLease(ctx context.Context) (backend.Lease, error) {
	start, ticket, failures := time.Now(), "", 0
	watch := backend.QueueWatcherFrom(ctx)
	for {
		l, q, err := b.openOnce(ctx, ticket)
		switch {
		case err != nil && ticket != "" && ctx.Err() == nil && failures < queueRetries:
			// Queued already: a network error (a restarted server) should
			// not throw the place away, nor start the backup unpaced.
			failures++
			if werr := clock.Sleep(ctx, queueRetryWait); werr != nil {
				return backend.Lease{}, werr
			}
			continue
		case err != nil || q == nil:
			return l, err
		}
		failures = 0
		ticket = q.Ticket
		watch(backend.QueueWait{Position: q.Position, Running: q.Running, Limit: q.Limit, Waited: time.Since(start)})
		wait := time.Duration(q.RetryAfterSeconds) * time.Second
		if err := clock.Sleep(ctx, min(max(wait, 100*time.Millisecond), time.Minute)); err != nil {
			return backend.Lease{}, err
		}
	}
}

// While queued, a failed open is tried again queueRetries times,
// queueRetryWait apart.
const (
	queueRetries   = 5
	queueRetryWait = 2 * time.Second
)

// openOnce asks for a session once: a lease, or (nil error) the queue
// place of a backup-queued answer.
func (b *Backend) openOnce(ctx context.Context, ticket string) (backend.Lease, *restapi.SessionQueued, error) {
	rel := "?" + restapi.SessionParam + "=" + restapi.SessionOpen
	if ticket != "" {
		rel += "&" + restapi.SessionTicketParam + "=" + url.QueryEscape(ticket)
	}
	req, err := b.request(ctx, http.MethodPost, rel, nil)
	if err != nil {
		return backend.Lease{}, nil, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		}
		return backend.Lease{}, nil, fmt.Errorf("rest: session open: %w", err)
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(restapi.HeaderError) == restapi.CodeBackupQueued {
		defer resp.Body.Close()
		var q restapi.SessionQueued
		if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&q); err != nil || q.Ticket == "" {
			return backend.Lease{}, nil, fmt.Errorf("rest: session open: the server's queue answer: %w", cmp.Or(err, errors.New("no ticket")))
		}
		return backend.Lease{}, &q, nil
	}
	if resp.StatusCode/100 != 2 {
		return backend.Lease{}, nil, fmt.Errorf("rest: session open: %w", errorFrom(resp))
	}
	l, err := decodeLease(resp, restapi.SessionOpen)
	return l, nil, err
}

// HeartbeatLease implements backend.Leaser.
func (b *Backend) HeartbeatLease(ctx context.Context, id string) (backend.Lease, error) {
	return b.session(ctx, restapi.SessionHeartbeat, id)
}

// EndLease implements backend.Leaser.
func (b *Backend) EndLease(ctx context.Context, id string) error {
	_, err := b.session(ctx, restapi.SessionEnd, id)
	return err
}

func (b *Backend) session(ctx context.Context, action, id string) (backend.Lease, error) {
	rel := "?" + restapi.SessionParam + "=" + action
	if id != "" {
		rel += "&" + restapi.SessionIDParam + "=" + url.QueryEscape(id)
	}
	resp, err := b.do(ctx, http.MethodPost, rel, nil, nil)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusGone {
			err = fmt.Errorf("%w: %w", backend.ErrLeaseGone, err)
		}
		return backend.Lease{}, fmt.Errorf("rest: session %s: %w", action, err)
	}
	return decodeLease(resp, action)
}

func decodeLease(resp *http.Response, action string) (backend.Lease, error) {
	defer resp.Body.Close()
	var l restapi.SessionLease
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&l); err != nil {
		return backend.Lease{}, fmt.Errorf("rest: session %s: the server's answer: %w", action, err)
	}
	if l.ID == "" || l.TTLSeconds < 0 {
		return backend.Lease{}, fmt.Errorf("rest: session %s: %w", action, errors.New("the server's answer has no session ID"))
	}
	return backend.Lease{ID: l.ID, TTL: l.TTL(), ServerTime: l.ServerTime}, nil
}

// setSessionHeader names the backup session a snapshot upload commits.
func setSessionHeader(ctx context.Context, req *http.Request, h backend.Handle) {
	if id := backend.LeaseFrom(ctx); id != "" && h.Type == backend.Snapshots {
		req.Header.Set(restapi.HeaderSession, id)
	}
}
