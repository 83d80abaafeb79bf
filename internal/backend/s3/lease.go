package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// ErrLeaseHeld means another holder has a lease that has not expired.
var ErrLeaseHeld = errors.New("lease held by another holder")

// LeaseHeldError is the error of AcquireLease when another holder's lease
// has not expired; it wraps ErrLeaseHeld and says who holds it until when,
// so a caller can tell its own client when to come back.
type LeaseHeldError struct {
	Repo    string
	Holder  string
	Expires time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("s3: lease %s: held by %q until %s: %v", e.Repo, e.Holder, e.Expires.UTC().Format(time.RFC3339), ErrLeaseHeld)
}

// Unwrap makes errors.Is(err, ErrLeaseHeld) hold.
func (e *LeaseHeldError) Unwrap() error { return ErrLeaseHeld }

// ErrLeaseLost means the lease was taken over or released since it was
// last renewed: its holder must stop coordinating at once.
var ErrLeaseLost = errors.New("lease lost")

// Lease is a held lease on one repository.
type Lease struct {
	Repo    string
	Holder  string
	Expires time.Time
	etag    string
}

// leaseDoc is the stored lease object.
type leaseDoc struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// leaseKey is where repo's lease is kept: under restapi.LeaseDir, a name
// no client may take, so no client's files and no purge reach a lease.
func (b *Backend) leaseKey(repo string) string { return b.prefixed(restapi.LeaseDir + "/" + repo) }

func validRepo(repo string) error {
	if repo == "" || len(repo) > 200 {
		return fmt.Errorf("s3: lease: invalid repository name %q", repo)
	}
	for _, c := range repo {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') || repo == "." || repo == ".." {
			return fmt.Errorf("s3: lease: invalid repository name %q (letters, digits, - _ . only)", repo)
		}
	}
	return nil
}

// AcquireLease takes the lease on repo for holder for ttl. Exactly one
// holder wins: the lease object is created with If-None-Match: *, or, if an
// expired one is there, replaced with If-Match on the ETag that was read, so
// of two servers taking over at once only one succeeds. A holder that
// already holds the lease gets it again (a restart). Otherwise the error
// wraps ErrLeaseHeld and names the holder and its expiry.
func (b *Backend) AcquireLease(ctx context.Context, repo, holder string, ttl time.Duration) (Lease, error) {
	if err := validRepo(repo); err != nil {
		return Lease{}, err
	}
	if holder == "" || ttl <= 0 {
		return Lease{}, fmt.Errorf("s3: lease %s: need a holder name and a positive ttl", repo)
	}
	// Each round either creates the object or replaces the version it
	// read; a lease removed between the two (by hand) starts a new round.
	for range 3 {
		l, err := b.tryAcquire(ctx, repo, holder, ttl)
		if !errors.Is(err, backend.ErrNotFound) {
			return l, err
		}
	}
	return Lease{}, fmt.Errorf("s3: lease %s: the lease object keeps changing; try again: %w", repo, ErrLeaseHeld)
}

func (b *Backend) tryAcquire(ctx context.Context, repo, holder string, ttl time.Duration) (Lease, error) {
	l := Lease{Repo: repo, Holder: holder, Expires: b.now().Add(ttl)}
	etag, err := b.putLease(ctx, l, "")
	if err == nil {
		l.etag = etag
		return l, nil
	}
	if !errors.Is(err, errPrecondition) {
		return Lease{}, err
	}
	cur, curETag, err := b.readLease(ctx, repo)
	if err != nil {
		return Lease{}, err
	}
	if cur.Holder != holder && b.now().Before(cur.Expires) {
		return Lease{}, &LeaseHeldError{Repo: repo, Holder: cur.Holder, Expires: cur.Expires}
	}
	etag, err = b.putLease(ctx, l, curETag)
	if errors.Is(err, errPrecondition) {
		// Another holder took it over first: say who, if it can be read.
		if cur, _, rerr := b.readLease(ctx, repo); rerr == nil && cur.Holder != holder {
			return Lease{}, &LeaseHeldError{Repo: repo, Holder: cur.Holder, Expires: cur.Expires}
		}
		return Lease{}, fmt.Errorf("s3: lease %s: another holder took it over first: %w", repo, ErrLeaseHeld)
	}
	if err != nil {
		return Lease{}, err
	}
	l.etag = etag
	return l, nil
}

// Renew extends a held lease by ttl from now. It fails with ErrLeaseLost if
// anyone else wrote the lease since; a holder whose lease expired but was
// not taken over renews fine.
func (b *Backend) Renew(ctx context.Context, l *Lease, ttl time.Duration) error {
	next := *l
	next.Expires = b.now().Add(ttl)
	etag, err := b.putLease(ctx, next, l.etag)
	if errors.Is(err, errPrecondition) {
		return fmt.Errorf("s3: renew lease %s: %w", l.Repo, ErrLeaseLost)
	}
	if err != nil {
		return err
	}
	next.etag = etag
	*l = next
	return nil
}

// Release gives the lease up by writing it expired, conditional on still
// holding it, so another holder can take it at once.
func (b *Backend) Release(ctx context.Context, l *Lease) error {
	next := *l
	next.Expires = time.Unix(0, 0).UTC()
	etag, err := b.putLease(ctx, next, l.etag)
	if errors.Is(err, errPrecondition) {
		return fmt.Errorf("s3: release lease %s: %w", l.Repo, ErrLeaseLost)
	}
	if err != nil {
		return err
	}
	next.etag = etag
	*l = next
	return nil
}

var errPrecondition = errors.New("precondition failed")

// putLease writes l; if etag is empty only when no lease object exists,
// else only over that exact version.
func (b *Backend) putLease(ctx context.Context, l Lease, etag string) (string, error) {
	buf, err := json.Marshal(leaseDoc{Holder: l.Holder, Expires: l.Expires.UTC()})
	if err != nil {
		return "", err
	}
	var opts minio.PutObjectOptions
	opts.ContentType = "application/json"
	if etag == "" {
		opts.SetMatchETagExcept("*")
	} else {
		opts.SetMatchETag(etag)
	}
	info, err := b.client.PutObject(ctx, b.cfg.Bucket, b.leaseKey(l.Repo), bytes.NewReader(buf), int64(len(buf)), opts)
	switch {
	case isCode(err, "PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"):
		return "", errPrecondition
	case err != nil:
		return "", b.classify("write lease "+l.Repo, err)
	}
	return info.ETag, nil
}

func (b *Backend) readLease(ctx context.Context, repo string) (leaseDoc, string, error) {
	body, info, _, err := b.core.GetObject(ctx, b.cfg.Bucket, b.leaseKey(repo), minio.GetObjectOptions{})
	if err != nil {
		return leaseDoc{}, "", b.classify("read lease "+repo, err)
	}
	defer body.Close()
	buf, err := io.ReadAll(io.LimitReader(body, 1<<16))
	if err != nil {
		return leaseDoc{}, "", b.classify("read lease "+repo, err)
	}
	var d leaseDoc
	if err := json.Unmarshal(buf, &d); err != nil {
		// A damaged lease protects nothing: treat it as expired.
		return leaseDoc{}, info.ETag, nil
	}
	return d, info.ETag, nil
}
