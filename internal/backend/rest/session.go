package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// The client side of a cairn server's backup sessions (backend.Leaser;
// docs/server.md). A restic rest-server does not know them: opening one
// fails there, and a backup goes on without a lease.

var _ backend.Leaser = (*Backend)(nil)

// OpenLease implements backend.Leaser.
func (b *Backend) OpenLease(ctx context.Context) (backend.Lease, error) {
	return b.session(ctx, restapi.SessionOpen, "")
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
