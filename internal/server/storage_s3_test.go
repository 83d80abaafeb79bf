package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/minioserver"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/servertest"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// sharedClock is the fake time of several servers.
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

// s3Server is one server instance on S3 storage, serving on loopback.
type s3Server struct {
	*Server
	url  string
	logs *logBuffer
}

// startOnS3 starts a server with its own data directory whose storage is
// loc, with client alice.
func startOnS3(t *testing.T, loc string, clock *sharedClock) *s3Server {
	t.Helper()
	ctx := context.Background()
	data, err := Init(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := data.SetStorage(ctx, loc); err != nil {
		t.Fatal(err)
	}
	if err := data.NewClient(ctx, state.Client{Name: "alice", AppendOnly: true}, []byte(pwAlice)); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	srv, err := New(data, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	addr := servertest.Serve(t, srv, srv.CloseStorage, func() { data.Close() })
	return &s3Server{Server: srv, url: "http://" + addr, logs: logs}
}

func (s *s3Server) do(t *testing.T, method, path string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	req.SetBasicAuth("alice", pwAlice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func s3Env(t *testing.T) *minioserver.Server {
	srv := minioserver.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", minioserver.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", minioserver.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("CAIRN_S3_CA_FILE", "")
	return srv
}

// TestTwoServersOneBucket: two servers in front of one bucket share the
// repositories; exactly one coordinates a repository, the other refuses
// with 503 naming the holder, serves reads and pack uploads meanwhile, and
// takes over when the lease expires.
func TestTwoServersOneBucket(t *testing.T) {
	minio := s3Env(t)
	loc := "s3:" + minio.Endpoint() + "/fleet/servers"
	clock := &sharedClock{t: time.Unix(1_800_000_000, 0)}
	a := startOnS3(t, loc, clock)
	b := startOnS3(t, loc, clock)
	// a never renews on its own in this test: it behaves like a server that
	// died after taking the lease.
	a.coordinator().renewEvery = time.Hour
	b.coordinator().renewEvery = time.Hour
	ctx := context.Background()

	// A repository created through a is there for b, before its config.
	if st, body := a.do(t, "POST", "/alice/laptop/?create=true", nil); st != 200 {
		t.Fatalf("create: %d %s", st, body)
	}
	if st, body := b.do(t, "GET", "/alice/laptop/keys/", nil); st != 200 {
		t.Fatalf("b lists a's new repository: %d %s", st, body)
	}
	if st, _ := b.do(t, "GET", "/alice/nowhere/keys/", nil); st != 404 {
		t.Fatalf("b lists a repository nobody created: %d", st)
	}

	actx, releaseA, err := a.Coordinate(ctx, "alice/laptop")
	if err != nil {
		t.Fatalf("a coordinates: %v", err)
	}
	_, _, err = b.Coordinate(ctx, "alice/laptop")
	var nc *NotCoordinatorError
	if !errors.As(err, &nc) || !errors.Is(err, ErrNotCoordinator) || nc.Holder != a.coordinator().holder ||
		!nc.Until.Equal(clock.now().Add(coordTTL)) {
		t.Fatalf("b coordinates while a does: %v", err)
	}
	// Another repository is b's to coordinate.
	if _, rel, err := b.Coordinate(ctx, "alice/desktop"); err != nil {
		t.Fatalf("b coordinates another repository: %v", err)
	} else {
		rel()
	}

	// b's refusal as a client sees it.
	rec := httptest.NewRecorder()
	q := testRequest(rec, httptest.NewRequest("POST", "/alice/laptop/snapshots/x", nil))
	clock.advance(10 * time.Second)
	b.refuseCoordinate(q, err)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "20" ||
		rec.Header().Get(restapi.HeaderError) != codeNotCoordinator ||
		!strings.Contains(rec.Body.String(), a.coordinator().holder) || !strings.Contains(rec.Body.String(), "lease until") {
		t.Fatalf("refusal: %d %q %q", rec.Code, rec.Header(), rec.Body)
	}

	// Reads and pack uploads go through on both servers meanwhile.
	pack := random(3000)
	name := backend.NameOf(pack)
	if st, body := b.do(t, "POST", "/alice/laptop/data/"+name, pack); st != 200 {
		t.Fatalf("b stores a pack: %d %s", st, body)
	}
	if st, body := a.do(t, "GET", "/alice/laptop/data/"+name, nil); st != 200 || !bytes.Equal(body, pack) {
		t.Fatalf("a reads b's pack: %d", st)
	}
	if used, err := b.usage.Get("alice"); err != nil || used < 3000 {
		t.Fatalf("b's usage of alice: %d %v", used, err)
	}

	// a stops renewing; after the lease expires b takes over, a refuses,
	// and a's work in progress is told the lease is lost.
	releaseA()
	if actx.Err() == nil {
		t.Fatal("released context not done")
	}
	clock.advance(coordTTL)
	bctx, releaseB, err := b.Coordinate(ctx, "alice/laptop")
	if err != nil {
		t.Fatalf("b takes over an expired lease: %v", err)
	}
	defer releaseB()
	if _, _, err := a.Coordinate(ctx, "alice/laptop"); !errors.As(err, &nc) || nc.Holder != b.coordinator().holder {
		t.Fatalf("a coordinates after b took over: %v", err)
	}
	if bctx.Err() != nil {
		t.Fatal("b's coordination context ended")
	}
}

// TestLeaseLostCancelsWork: when a renewal finds another server has taken
// the lease, the work in progress is cancelled with ErrNotCoordinator.
func TestLeaseLostCancelsWork(t *testing.T) {
	minio := s3Env(t)
	loc := "s3:" + minio.Endpoint() + "/fleet"
	clock := &sharedClock{t: time.Unix(1_800_000_000, 0)}
	a := startOnS3(t, loc, clock)
	b := startOnS3(t, loc, clock)
	// A renewal may take as long as renewEvery: on a loaded machine a
	// call to MinIO can take well over 50 ms.
	a.coordinator().renewEvery = 500 * time.Millisecond
	a.coordinator().idle = time.Hour
	b.coordinator().renewEvery = time.Hour
	ctx := context.Background()
	a.do(t, "POST", "/alice/r/?create=true", nil)
	actx, releaseA, err := a.Coordinate(ctx, "alice/r")
	if err != nil {
		t.Fatal(err)
	}
	defer releaseA()
	// Renewals keep the lease: b is refused even after several TTLs. Each
	// round waits until a has renewed at the current time (its lease runs
	// a whole TTL from now), then moves the clock by less than a TTL.
	renewedNow := func() bool {
		c := a.coordinator()
		c.mu.Lock()
		defer c.mu.Unlock()
		h := c.repos["alice/r"].held
		return h != nil && !h.lease.Expires.Before(clock.now().Add(coordTTL))
	}
	for range 3 {
		for deadline := time.Now().Add(time.Minute); !renewedNow(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("a did not renew its lease within a minute")
			}
		}
		clock.advance(coordTTL - time.Second)
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
	a.coordinator().mu.Lock()
	clock.advance(2 * coordTTL)
	var releaseB func()
	for try := 0; ; try++ {
		_, releaseB, err = b.Coordinate(ctx, "alice/r")
		if err == nil || try == 2 || !errors.Is(err, ErrNotCoordinator) {
			break
		}
	}
	a.coordinator().mu.Unlock()
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
	if !strings.Contains(a.logs.String(), "lost the lease") {
		t.Fatalf("a did not log the lost lease:\n%s", a.logs)
	}
}

// TestCoordinateLocal: on local storage Coordinate is a lock per
// repository.
func TestCoordinateLocal(t *testing.T) {
	data, err := Init(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	srv, err := New(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.CloseStorage()
	ctx := context.Background()
	_, release, err := srv.Coordinate(ctx, "alice/r")
	if err != nil {
		t.Fatal(err)
	}
	if _, rel, err := srv.Coordinate(ctx, "alice/other"); err != nil {
		t.Fatal(err)
	} else {
		rel()
	}
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := srv.Coordinate(wctx, "alice/r"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second coordinator of one repository: %v", err)
	}
	release()
	release() // twice is fine
	if _, rel, err := srv.Coordinate(ctx, "alice/r"); err != nil {
		t.Fatalf("after release: %v", err)
	} else {
		rel()
	}
}
