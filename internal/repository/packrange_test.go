package repository

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/retry"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
)

// cutOnce cuts the first load of a pack short after limit bytes, as a
// connection dropped mid-response would.
type cutOnce struct {
	backend.Backend
	limit int64
	loads int
}

var errCut = errors.New("connection reset mid-response")

func (c *cutOnce) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error) error {
	if h.Type != backend.Data {
		return c.Backend.Load(ctx, h, length, offset, fn)
	}
	c.loads++
	if c.loads > 1 {
		return c.Backend.Load(ctx, h, length, offset, fn)
	}
	return c.Backend.Load(ctx, h, length, offset, func(rd io.Reader) error {
		return fn(io.MultiReader(io.LimitReader(rd, c.limit), errReader{errCut}))
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestLoadPackRangeResumes: a pack range cut off mid-stream and loaded
// again by the retry decorator gives fn every blob exactly once, with its
// plaintext, and a blob that does not open reaches fn with its error while
// the others still come through.
func TestLoadPackRangeResumes(t *testing.T) {
	ctx := context.Background()
	mbe, _, plains := newTestRepo(t, 1)
	var entries []index.Entry
	orig, err := Open(ctx, mbe, []byte("pw"), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := orig.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for id, plain := range plains {
		if bytes.HasPrefix(plain, []byte("CRT1")) {
			continue // the root tree, in a tree pack of its own
		}
		if e, ok := orig.Lookup(blob.Data, id); ok {
			entries = append(entries, e)
		}
	}
	if len(entries) != 3 {
		t.Fatalf("%d data entries, want 3", len(entries))
	}
	sort.Slice(entries, func(a, b int) bool { return entries[a].Offset < entries[b].Offset })
	start, end := entries[0].Offset, entries[2].Offset+entries[2].Length

	cut := &cutOnce{Backend: mbe, limit: int64(entries[1].Offset-start) + 10} // inside the second blob
	rbe := retry.New(cut, retry.Options{Sleep: func(context.Context, time.Duration) error { return nil }})
	r, err := Open(ctx, rbe, []byte("pw"), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	// Slot numbers are each repository's own (interned as its index loads).
	rEntries := make([]index.Entry, len(entries))
	for i, e := range entries {
		rEntries[i], _ = r.Lookup(blob.Data, e.ID)
	}
	seen := map[blob.ID]int{}
	err = r.LoadPackRange(ctx, entries[0].Pack, start, end, rEntries, nil, func(e index.Entry, plain []byte, err error) error {
		if err != nil {
			t.Errorf("blob %s: %v", e.ID.Short(), err)
		}
		seen[e.ID]++
		if !bytes.Equal(plain, plains[e.ID]) {
			t.Errorf("blob %s: wrong plaintext", e.ID.Short())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cut.loads != 2 {
		t.Fatalf("%d loads of the pack, want 2 (cut, then retried)", cut.loads)
	}
	for _, e := range entries {
		if seen[e.ID] != 1 {
			t.Errorf("blob %s given to fn %d times, want once", e.ID.Short(), seen[e.ID])
		}
	}

	// A damaged blob: fn gets its error, the others their plaintext.
	damaged := entries[1]
	if err := mbe.Corrupt(backend.Handle{Type: backend.Data, Name: damaged.Pack.String()}, func(b []byte) []byte {
		b[damaged.Offset+damaged.Length/2] ^= 1
		return b
	}); err != nil {
		t.Fatal(err)
	}
	var good, bad int
	err = orig.LoadPackRange(ctx, damaged.Pack, start, end, entries, new(BlobBuffers), func(e index.Entry, plain []byte, err error) error {
		switch {
		case e.ID == damaged.ID && err != nil:
			bad++
		case err == nil && bytes.Equal(plain, plains[e.ID]):
			good++
		default:
			t.Errorf("blob %s: err %v", e.ID.Short(), err)
		}
		return nil
	})
	if err != nil || good != 2 || bad != 1 {
		t.Fatalf("with a damaged blob: err %v, %d good, %d reported damaged; want nil, 2, 1", err, good, bad)
	}
}
