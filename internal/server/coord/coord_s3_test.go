package coord

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/minioserver"
	"github.com/cairnbackup/cairn/internal/server/storage"
)

// sharedClock is the fake time of several coordinators.
type sharedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *sharedClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *sharedClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logBuffer collects a coordinator's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func s3Env(t *testing.T) *minioserver.Server {
	srv := minioserver.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", minioserver.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", minioserver.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("CAIRN_S3_CA_FILE", "")
	return srv
}

// onS3 is the coordinator, named holder, of one server in front of the
// S3 storage at loc.
func onS3(t *testing.T, loc, holder string, clock *sharedClock) (*Coordinator, *logBuffer) {
	t.Helper()
	rs := storage.NewRepos(func(ctx context.Context) (storage.Storage, error) {
		return storage.Connect(ctx, t.TempDir(), loc, true)
	})
	logs := &logBuffer{}
	c := New(rs, holder, clock.now, slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(c.Close)
	return c, logs
}

// TestLeaseLostCancelsWork: when a renewal finds another server has taken
// the lease, the work in progress is cancelled with ErrNotCoordinator.
func TestLeaseLostCancelsWork(t *testing.T) {
	minio := s3Env(t)
	loc := "s3:" + minio.Endpoint() + "/fleet"
	clock := &sharedClock{t: time.Unix(1_800_000_000, 0)}
	a, alog := onS3(t, loc, "a", clock)
	b, _ := onS3(t, loc, "b", clock)
	// A renewal may take as long as RenewEvery: on a loaded machine a
	// call to MinIO can take well over 50 ms.
	a.RenewEvery = 500 * time.Millisecond
	a.Idle = time.Hour
	b.RenewEvery = time.Hour
	ctx := context.Background()
	if err := a.rs.Create(ctx, "alice/r", func(int) error { return nil }); err != nil {
		t.Fatal(err)
	}
	actx, releaseA, err := a.Coordinate(ctx, "alice/r")
	if err != nil {
		t.Fatal(err)
	}
	defer releaseA()
	// Renewals keep the lease: b is refused even after several TTLs. Each
	// round waits until a has renewed at the current time (its lease runs
	// a whole TTL from now), then moves the clock by less than a TTL.
	renewedNow := func() bool {
		c := a
		c.mu.Lock()
		defer c.mu.Unlock()
		h := c.repos["alice/r"].held
		return h != nil && !h.lease.Expires.Before(clock.now().Add(TTL))
	}
	for range 3 {
		for deadline := time.Now().Add(time.Minute); !renewedNow(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("a did not renew its lease within a minute")
			}
		}
		clock.advance(TTL - time.Second)
		if _, _, err := b.Coordinate(ctx, "alice/r"); !errors.Is(err, ErrNotCoordinator) {
			t.Fatalf("b coordinates a renewed repository: %v", err)
		}
	}
	// A partition: a's renewals cannot land in time, b takes over. Holding
	// a's mutex stops the next renewal, not one already on the wire: that
	// one (its expiry computed before the clock jumped) may land between
	// b's read of the lease and b's conditional write, and b then rightly
	// sees a as holder. Its expiry is still in the past, so b's next try
	// takes over: the renewal goroutine waits for the mutex before it
	// sends another.
	a.mu.Lock()
	clock.advance(2 * TTL)
	var releaseB func()
	for try := 0; ; try++ {
		_, releaseB, err = b.Coordinate(ctx, "alice/r")
		if err == nil || try == 2 || !errors.Is(err, ErrNotCoordinator) {
			break
		}
	}
	a.mu.Unlock()
	if err != nil {
		t.Fatalf("b takes over: %v", err)
	}
	defer releaseB()
	select {
	case <-actx.Done():
	case <-time.After(time.Minute):
		t.Fatal("a's work was not cancelled within a minute of losing its lease")
	}
	if !errors.Is(context.Cause(actx), ErrNotCoordinator) {
		t.Fatalf("cause: %v", context.Cause(actx))
	}
	if !strings.Contains(alog.String(), "lost the lease") {
		t.Fatalf("a did not log the lost lease:\n%s", alog)
	}
}
