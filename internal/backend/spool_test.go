package backend_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
)

// TestMemSpool: a backend without spools of its own gets one that saves
// the bytes under their hash with Save, once.
func TestMemSpool(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	data := bytes.Repeat([]byte("x"), 10_000)
	sp, err := backend.NewSpool(be, backend.Data, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	sp.Write(data[:3])
	sp.Write(data[3:])
	name, err := sp.Save(ctx)
	if err != nil || name != backend.NameOf(data) {
		t.Fatalf("save: %s, %v", name, err)
	}
	got, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Data, Name: name})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored bytes differ: %v", err)
	}
	if _, err := sp.Write([]byte("more")); err == nil {
		t.Fatal("write after Save succeeded")
	}
	again, _ := backend.NewSpool(be, backend.Data, 0, "")
	again.Write(data)
	if _, err := again.Save(ctx); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("same bytes again: %v, want ErrExists", err)
	}
	if _, err := backend.NewSpool(be, backend.Config, 0, ""); err == nil {
		t.Fatal("a config spool was made")
	}
}

// TestFileSpool: a spool kept in a temporary file saves the same bytes
// under their hash, survives a Save that the backend retries from the
// start, leaves no file behind, and refuses what a spool must refuse.
func TestFileSpool(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	dir := t.TempDir()
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	sp, err := backend.NewFileSpool(be, backend.Data, dir)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("spool file visible in %s: %v", dir, ents)
	}
	for off := 0; off < len(data); off += 4096 {
		if _, err := sp.Write(data[off:min(off+4096, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if sp.Size() != int64(len(data)) {
		t.Fatalf("Size = %d", sp.Size())
	}
	// The first attempt fails after reading part of the body; the retry
	// must rewind and send everything.
	failed := false
	retrying := saveFunc{be, func(ctx context.Context, h backend.Handle, rd backend.RewindReader) error {
		if !failed {
			failed = true
			io.CopyN(io.Discard, rd, 1000)
			if err := rd.Rewind(); err != nil {
				return err
			}
		}
		return be.Save(ctx, h, rd)
	}}
	sp2, err := backend.NewFileSpool(retrying, backend.Data, dir)
	if err != nil {
		t.Fatal(err)
	}
	sp2.Write(data)
	name, err := sp2.Save(ctx)
	if err != nil || name != backend.NameOf(data) {
		t.Fatalf("save: %s, %v", name, err)
	}
	got, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Data, Name: name})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored bytes differ: %v", err)
	}
	if _, err := sp.Save(ctx); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("same bytes again: %v, want ErrExists", err)
	}
	if _, err := sp.Write([]byte("more")); err == nil {
		t.Fatal("write after Save succeeded")
	}
	sp.Discard()
	if _, err := backend.NewFileSpool(be, backend.Config, dir); err == nil {
		t.Fatal("a config spool was made")
	}
	if _, err := backend.NewFileSpool(be, backend.Data, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a spool in a missing directory was made")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("spool files left in %s: %v", dir, ents)
	}
}

// saveFunc is a backend whose Save is a function.
type saveFunc struct {
	backend.Backend
	save func(context.Context, backend.Handle, backend.RewindReader) error
}

func (f saveFunc) Save(ctx context.Context, h backend.Handle, rd backend.RewindReader) error {
	return f.save(ctx, h, rd)
}
