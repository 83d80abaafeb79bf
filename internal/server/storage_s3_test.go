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
	"github.com/cairnbackup/cairn/internal/server/coord"
	"github.com/cairnbackup/cairn/internal/server/datadir"
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
	data, err := datadir.Init(ctx, t.TempDir())
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
	a.coordinator().RenewEvery = time.Hour
	b.coordinator().RenewEvery = time.Hour
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
	var nc *coord.NotCoordinatorError
	if !errors.As(err, &nc) || !errors.Is(err, coord.ErrNotCoordinator) || nc.Holder != a.coordinator().Holder ||
		!nc.Until.Equal(clock.now().Add(coord.TTL)) {
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
	b.refuseCoordinate(q.Request, err)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "20" ||
		rec.Header().Get(restapi.HeaderError) != restapi.CodeNotCoordinator ||
		!strings.Contains(rec.Body.String(), a.coordinator().Holder) || !strings.Contains(rec.Body.String(), "lease until") {
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
	clock.advance(coord.TTL)
	bctx, releaseB, err := b.Coordinate(ctx, "alice/laptop")
	if err != nil {
		t.Fatalf("b takes over an expired lease: %v", err)
	}
	defer releaseB()
	if _, _, err := a.Coordinate(ctx, "alice/laptop"); !errors.As(err, &nc) || nc.Holder != b.coordinator().Holder {
		t.Fatalf("a coordinates after b took over: %v", err)
	}
	if bctx.Err() != nil {
		t.Fatal("b's coordination context ended")
	}
}

// TestCoordinateLocal: on local storage Coordinate is a lock per
// repository.
func TestCoordinateLocal(t *testing.T) {
	data, err := datadir.Init(context.Background(), t.TempDir())
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
