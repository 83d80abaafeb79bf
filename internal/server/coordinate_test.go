package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/coord"
)

// s3Client opens repository /alice/<name> through server s with the
// owner's keys of repo (nil: create it there, as `cairn init` does).
func s3Client(t *testing.T, s *s3Server, name string, repo *repository.Repository) *repository.Repository {
	t.Helper()
	ctx := context.Background()
	u, _ := url.Parse(s.url + "/alice/" + name + "/")
	u.User = url.UserPassword("alice", pwAlice)
	if repo == nil {
		pub, err := fetchPublic(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		be, err := rest.Create(ctx, rest.Config{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := repository.InitServerMode(ctx, be, []byte("pw"), pub, repository.Options{KDF: &fastKDF, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	be, err := rest.Open(ctx, rest.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.OpenWithKeys(ctx, be, repo.Keys(), "", cfg, repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// prepare makes the next snapshot of a file through repo (packs and index
// stored) and returns the snapshot file, not uploaded.
func prepare(t *testing.T, repo *repository.Repository, content string) []byte {
	t.Helper()
	r, pb := blindClient(t, repo)
	if _, err := commitFile(context.Background(), r, [][]byte{[]byte(content)}, map[int]bool{0: true}); err != nil {
		t.Fatal(err)
	}
	return pb.snap
}

// postSnapshot uploads a snapshot file to s over HTTP.
func postSnapshot(t *testing.T, s *s3Server, name string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/alice/"+name+"/snapshots/"+backend.NameOf(body), bytes.NewReader(body))
	req.SetBasicAuth("alice", pwAlice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestCommitNeedsCoordinator: of two servers in front of one bucket (one
// identity, as a pair serving the same repositories has), only the one
// holding the repository's lease accepts a snapshot upload; the other
// answers 503 not-coordinator with Retry-After and stores nothing, and
// accepts once it holds the lease. Each server's chain record follows the
// commits the other made meanwhile.
func TestCommitNeedsCoordinator(t *testing.T) {
	minio := s3Env(t)
	loc := "s3:" + minio.Endpoint() + "/fleet/commit"
	clock := &sharedClock{t: time.Unix(1_800_000_000, 0)}
	a := startOnS3(t, loc, clock)
	b := startOnS3(t, loc, clock)
	b.data.Identity = a.data.Identity
	a.coordinator().RenewEvery = time.Hour // neither renews: leases expire with the clock
	b.coordinator().RenewEvery = time.Hour
	ctx := context.Background()

	owner := s3Client(t, a, "laptop", nil)
	viaB := s3Client(t, b, "laptop", owner)
	snaps := func() int { return count(t, owner.Backend(), backend.Snapshots) }

	// a takes the lease with the first commit.
	if resp := postSnapshot(t, a, "laptop", prepare(t, owner, "one")); resp.StatusCode != 200 {
		t.Fatalf("commit through a: %d", resp.StatusCode)
	}
	second := prepare(t, viaB, "two") // packs and index go through b
	resp := postSnapshot(t, b, "laptop", second)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(restapi.HeaderError) != restapi.CodeNotCoordinator || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("commit through b while a holds the lease: %d %q", resp.StatusCode, resp.Header)
	}
	if n := snaps(); n != 1 {
		t.Fatalf("%d snapshots after a refused commit", n)
	}
	if !strings.Contains(b.logs.String(), restapi.CodeNotCoordinator) {
		t.Fatal("refusal not logged")
	}

	// a's lease expires: b takes it with the same upload, retried.
	clock.advance(coord.TTL + time.Second)
	if resp := postSnapshot(t, b, "laptop", second); resp.StatusCode != 200 {
		t.Fatalf("commit through b holding the lease: %d", resp.StatusCode)
	}
	if _, _, err := a.Coordinate(ctx, "alice/laptop"); err == nil {
		t.Fatal("a coordinates while b holds the lease")
	}

	// Back to a: its chain record learns b's commit from storage.
	clock.advance(coord.TTL + time.Second)
	if resp := postSnapshot(t, a, "laptop", prepare(t, owner, "three")); resp.StatusCode != 200 {
		t.Fatalf("commit through a after b's: %d", resp.StatusCode)
	}
	if n := snaps(); n != 3 {
		t.Fatalf("%d snapshots, want 3", n)
	}
	l, ok, err := a.data.State.ChainLink(ctx, "alice/laptop", owner.Keys().RepoID, [32]byte(owner.Keys().SignerID()))
	if err != nil || !ok || l.Seq != 3 {
		t.Fatalf("a's chain record: %+v %v %v", l, ok, err)
	}
}
