package s3_test

import (
	"context"
	"crypto/rand"
	"io"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/minioserver"
)

// BenchmarkLoadRange measures one small ranged read: the per-request cost
// that restores of many small blobs pay.
func BenchmarkLoadRange(b *testing.B) {
	srv := minioserver.Start(b)
	be := create(b, config(srv, "bench", ""))
	data := make([]byte, 4<<20)
	rand.Read(data)
	h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}
	ctx := context.Background()
	if err := be.Save(ctx, h, backend.NewByteReader(data)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(4096)
	b.ResetTimer()
	for i := range b.N {
		off := int64(i*4096) % int64(len(data)-4096)
		err := be.Load(ctx, h, 4096, off, func(rd io.Reader) error { _, err := io.Copy(io.Discard, rd); return err })
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSave measures saving 1 MiB packs.
func BenchmarkSave(b *testing.B) {
	srv := minioserver.Start(b)
	be := create(b, config(srv, "benchsave", ""))
	ctx := context.Background()
	b.SetBytes(1 << 20)
	for range b.N {
		data := make([]byte, 1<<20)
		rand.Read(data)
		if err := be.Save(ctx, backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}, backend.NewByteReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
