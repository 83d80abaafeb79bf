package local

import (
	"bytes"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
)

// TestSpool: bytes written to a spool in pieces are stored read-only under
// their SHA-256, exactly, with no temporary file left; the same bytes again
// are ErrExists and leave nothing behind.
func TestSpool(t *testing.T) {
	be := newTestBackend(t)
	data := bytes.Repeat([]byte("cairn spool "), 300_000)
	sp, err := backend.NewSpool(be, backend.Data, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sp.(*spool); !ok {
		t.Fatalf("NewSpool on a local backend gave %T, not the local spool", sp)
	}
	for rest := data; len(rest) > 0; rest = rest[min(len(rest), 65_537):] {
		if _, err := sp.Write(rest[:min(len(rest), 65_537)]); err != nil {
			t.Fatal(err)
		}
	}
	if sp.Size() != int64(len(data)) {
		t.Fatalf("size %d, wrote %d", sp.Size(), len(data))
	}
	name, err := sp.Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}
	if name != h.Name {
		t.Fatalf("spool saved as %s, want %s", name, h.Name)
	}
	got, err := backend.LoadAll(ctx, be, h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored bytes differ (%d vs %d bytes, %v)", len(got), len(data), err)
	}
	if fi, err := os.Stat(be.path(h)); err != nil || fi.Mode().Perm() != fileMode {
		t.Fatalf("stored file: %v, mode %v", err, fi.Mode())
	}
	sp.Discard() // after Save: nothing to do, the stored file stays
	if _, err := be.Stat(ctx, h); err != nil {
		t.Fatalf("Discard after Save removed the stored file: %v", err)
	}

	again, _ := be.Spool(backend.Data)
	again.Write(data)
	if name, err := again.Save(ctx); !errors.Is(err, backend.ErrExists) || name != h.Name {
		t.Fatalf("second spool of the same bytes: %s, %v; want its name and ErrExists", name, err)
	}

	dropped, _ := be.Spool(backend.Index)
	dropped.Write([]byte("never stored"))
	dropped.Discard()
	checkNothingVisible(t, be, backend.Handle{Type: backend.Index, Name: backend.NameOf([]byte("never stored"))})
	if _, err := dropped.Save(ctx); err == nil {
		t.Fatal("Save after Discard succeeded")
	}
}

// TestSpoolDiskFull: a spool on a full disk reports ErrNoSpace from the
// write on, Save fails, and nothing is stored or left behind.
func TestSpoolDiskFull(t *testing.T) {
	be := newTestBackend(t)
	be.sys.wrapWriter = func(w io.Writer) io.Writer { return &failingWriter{w: w, n: 100_000, err: syscall.ENOSPC} }
	data := bytes.Repeat([]byte{9}, 1<<20)
	sp, err := be.Spool(backend.Data)
	if err != nil {
		t.Fatal(err)
	}
	_, werr := sp.Write(data)
	if !errors.Is(werr, backend.ErrNoSpace) {
		t.Fatalf("write: %v, want ErrNoSpace", werr)
	}
	if _, err := sp.Write([]byte{1}); !errors.Is(err, backend.ErrNoSpace) {
		t.Fatalf("write after a failed write: %v, want the same error", err)
	}
	if _, err := sp.Save(ctx); !errors.Is(err, backend.ErrNoSpace) {
		t.Fatalf("save: %v, want ErrNoSpace", err)
	}
	checkNothingVisible(t, be, backend.Handle{Type: backend.Data, Name: backend.NameOf(data)})
}

// TestSpoolConfigRefused: config is not content-named and cannot be spooled.
func TestSpoolConfigRefused(t *testing.T) {
	be := newTestBackend(t)
	if _, err := be.Spool(backend.Config); !errors.Is(err, backend.ErrInvalidName) {
		t.Fatalf("spool for config: %v", err)
	}
}
