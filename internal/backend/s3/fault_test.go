package s3_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/retry"
	"github.com/cairnbackup/cairn/internal/minioserver"
)

// stallReader stops at byte at on its first pass until resume is closed,
// so the test can kill the server mid-upload.
type stallReader struct {
	*backend.ByteReader
	at      int64
	read    int64
	stalled bool
	reached chan struct{}
	resume  chan struct{}
}

func (r *stallReader) Read(p []byte) (int, error) {
	if !r.stalled {
		if r.read >= r.at {
			r.stalled = true
			close(r.reached)
			<-r.resume
		} else if rest := r.at - r.read; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := r.ByteReader.Read(p)
	r.read += int64(n)
	return n, err
}

func (r *stallReader) Rewind() error { r.read = 0; return r.ByteReader.Rewind() }

// saveDuringOutage saves 8 MiB through be and kills the server when half is
// sent, restarting it after a second; it returns Save's result.
func saveDuringOutage(t *testing.T, srv *minioserver.Server, be backend.Backend, data []byte) error {
	t.Helper()
	h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}
	rd := &stallReader{ByteReader: backend.NewByteReader(data), at: int64(len(data) / 2),
		reached: make(chan struct{}), resume: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- be.Save(context.Background(), h, rd) }()
	select {
	case <-rd.reached:
	case err := <-done:
		t.Fatalf("save finished before the outage: %v", err)
	}
	srv.Stop()
	close(rd.resume)
	time.Sleep(time.Second)
	srv.Start()
	return <-done
}

func TestServerRestartMidUpload(t *testing.T) {
	srv := minioserver.Start(t)
	cfg := config(srv, "fault", "repo")
	raw := create(t, cfg)
	ctx := context.Background()

	t.Run("without retry fails cleanly", func(t *testing.T) {
		data := make([]byte, 8<<20)
		rand.Read(data)
		h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}
		err := saveDuringOutage(t, srv, raw, data)
		if err == nil {
			t.Fatal("save through a server kill succeeded without retrying")
		}
		if errors.Is(err, backend.ErrExists) || errors.Is(err, backend.ErrHashMismatch) {
			t.Fatalf("outage reported as %v", err)
		}
		if _, err := raw.Stat(ctx, h); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("after failed save: stat got %v, want ErrNotFound", err)
		}
		n := 0
		if err := raw.List(ctx, backend.Data, func(backend.FileInfo) error { n++; return nil }); err != nil || n != 0 {
			t.Fatalf("after failed save: list found %d files, %v", n, err)
		}
	})

	t.Run("with retry succeeds", func(t *testing.T) {
		be := retry.New(raw, retry.Options{Attempts: 40, Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond})
		data := make([]byte, 8<<20)
		rand.Read(data)
		h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}
		if err := saveDuringOutage(t, srv, be, data); err != nil {
			t.Fatalf("save with retry through a restart: %v", err)
		}
		got, err := backend.LoadAll(ctx, be, h)
		if err != nil || backend.NameOf(got) != h.Name {
			t.Fatalf("load after restart: %d bytes, %v", len(got), err)
		}
	})
}
