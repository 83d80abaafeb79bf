package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/blob"
)

// TestWriterList: a signed request gets only the signer's statements and
// its last snapshot's blob-ID set (R16); unsigned, stale and too frequent
// requests are refused.
func TestWriterList(t *testing.T) {
	ts := startTest(t, Options{})
	ctx := context.Background()
	repo, _ := ts.cairnClient("wl")
	commit(t, repo, "first")
	ts.advance(2 * time.Hour)
	last := commit(t, repo, "second")
	u, _ := url.Parse(ts.url + "/bob/wl")
	u.User = url.UserPassword("bob", pwBob)
	signer := repo.Keys().Sign

	l, err := rest.FetchWriterList(ctx, nil, u, signer, ts.nowFn())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Snapshots) != 2 || l.Snapshots[0].Seq != 1 || l.Snapshots[1].Seq != 2 || l.Snapshots[1].ID != last.ID.String() {
		t.Fatalf("snapshots %+v", l.Snapshots)
	}
	if !l.Snapshots[1].Time.Equal(ts.nowFn()) {
		t.Fatalf("time %v is not the receipt's %v", l.Snapshots[1].Time, ts.nowFn())
	}
	refs, err := rest.WriterRefs(l)
	if err != nil {
		t.Fatal(err)
	}
	data := 0
	for _, r := range refs {
		if r.Type == blob.Data {
			data++
		}
	}
	if data != 1 || len(refs) != 1 {
		t.Fatalf("last snapshot's refs: %v", refs)
	}

	if _, err := rest.FetchWriterList(ctx, nil, u, signer, ts.nowFn()); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("second request at once: %v", err)
	}
	ts.advance(3 * time.Second)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	l, err = rest.FetchWriterList(ctx, nil, u, other, ts.nowFn())
	if err != nil || len(l.Snapshots) != 0 || len(l.LastRefs) != 0 {
		t.Fatalf("another key: %v %+v", err, l)
	}
	ts.advance(3 * time.Second)
	if _, err := rest.FetchWriterList(ctx, nil, u, signer, ts.nowFn().Add(-time.Hour)); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("stale request: %v", err)
	}
	if !strings.Contains(ts.logs.String(), "writer snapshot list") {
		t.Fatal("not logged")
	}
}
