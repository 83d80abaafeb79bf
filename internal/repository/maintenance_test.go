package repository_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// A tombstone starts with its own magic, CRD1, not a tree's (CRT1): a
// stored tombstone never parses as a tree.
func TestTombstoneMagic(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	owner, err := repository.Init(ctx, be, []byte("pw"), repository.Options{KDF: &quickKDF, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	commitOne(t, owner, "one")
	if err := owner.ForgetSnapshot(ctx, commitOne(t, owner, "two"), "test"); err != nil {
		t.Fatal(err)
	}
	var names []string
	be.List(ctx, backend.Tombstones, func(fi backend.FileInfo) error { names = append(names, fi.Name); return nil })
	if len(names) != 1 {
		t.Fatalf("%d tombstones, want 1", len(names))
	}
	buf, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Tombstones, Name: names[0]})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf, []byte("CRD1")) {
		t.Fatalf("tombstone starts with %q, want CRD1", buf[:4])
	}
	if _, err := snapshot.DecodeTree(buf); err == nil {
		t.Fatal("a tombstone parses as a tree")
	}
}
