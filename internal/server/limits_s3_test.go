package server

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/servertest"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// TestRepositoryLimitOnS3: the per-client repository cap counts the
// repositories in the bucket (created markers and configs).
func TestRepositoryLimitOnS3(t *testing.T) {
	minio := s3Env(t)
	ctx := context.Background()
	data, err := datadir.Init(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := data.SetStorage(ctx, "s3:"+minio.Endpoint()+"/limits/servers"); err != nil {
		t.Fatal(err)
	}
	if err := data.NewClient(ctx, state.Client{Name: "alice", AppendOnly: true}, []byte(pwAlice)); err != nil {
		t.Fatal(err)
	}
	srv, err := New(data, Options{Logger: slog.New(slog.DiscardHandler), MaxRepos: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := &s3Server{Server: srv, url: "http://" + servertest.Serve(t, srv, srv.CloseStorage, func() { data.Close() })}
	for i, want := range []int{200, 200, 403} {
		if st, body := s.do(t, "POST", fmt.Sprintf("/alice/r/%d/?create=true", i), nil); st != want {
			t.Fatalf("repository %d: %d %s, want %d", i, st, body, want)
		}
	}
	if st, body := s.do(t, "POST", "/alice/r/0/?create=true", nil); st != 200 {
		t.Fatalf("an existing repository again: %d %s", st, body)
	}
}
