package backend_test

import (
	"bytes"
	"context"
	"errors"
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
	sp, err := backend.NewSpool(be, backend.Data, 100)
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
	again, _ := backend.NewSpool(be, backend.Data, 0)
	again.Write(data)
	if _, err := again.Save(ctx); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("same bytes again: %v, want ErrExists", err)
	}
	if _, err := backend.NewSpool(be, backend.Config, 0); err == nil {
		t.Fatal("a config spool was made")
	}
}
