package repository

import (
	"context"
	"time"
)

// SetClaimTimes shortens the claim timeouts for a test; the returned
// function restores them.
func SetClaimTimes(wait, stale time.Duration) func() {
	w, s := claimWait, claimStale
	claimWait, claimStale = wait, stale
	return func() { claimWait, claimStale = w, s }
}

// ClaimSeq exposes claimSeq to tests.
func (r *Repository) ClaimSeq(seq uint64) error { return r.claimSeq(bgctx, seq) }

var bgctx = context.Background()
