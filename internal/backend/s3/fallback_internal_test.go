package s3

import (
	"context"
	"errors"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/minioserver"
)

// TestStatThenPutFallback runs the path taken against servers that refuse
// If-None-Match: write-once still holds for sequential writers.
func TestStatThenPutFallback(t *testing.T) {
	srv := minioserver.Start(t)
	ctx := context.Background()
	b, err := Create(ctx, Config{Endpoint: srv.Addr(), Bucket: "fallback", Region: "us-east-1",
		KeyID: minioserver.AccessKey, Secret: minioserver.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	b.noConditional.Store(true)
	for _, h := range []backend.Handle{{Type: backend.Config, Name: "config"}, {Type: backend.Index, Name: backend.NameOf([]byte("v1"))}} {
		if err := b.Save(ctx, h, backend.NewByteReader([]byte("v1"))); err != nil {
			t.Fatalf("save %v: %v", h, err)
		}
		if err := b.Save(ctx, h, backend.NewByteReader([]byte("v1"))); !errors.Is(err, backend.ErrExists) {
			t.Fatalf("second save %v: got %v, want ErrExists", h, err)
		}
		if got, err := backend.LoadAll(ctx, b, h); err != nil || string(got) != "v1" {
			t.Fatalf("load %v: %q, %v", h, got, err)
		}
	}
}
