package blockcache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
)

// store is a file of size bytes, each byte its offset mod 251, with a
// fetch counting its calls and a direct load counting its own.
type store struct {
	size    int64
	fetches atomic.Int64
	directs atomic.Int64
	fail    atomic.Bool
	gate    chan struct{} // when set, fetches wait on it
}

func (s *store) bytes(off, n int64) []byte {
	n = max(0, min(n, s.size-off))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off + int64(i)) % 251)
	}
	return b
}

func (s *store) fetch(ctx context.Context, h backend.Handle, off int64, n int) ([]byte, error) {
	s.fetches.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	if s.fail.Load() {
		return nil, errors.New("connection reset")
	}
	if off >= s.size {
		return nil, errors.New("invalid range")
	}
	return s.bytes(off, int64(n)), nil
}

func (s *store) load(c *Cache, h backend.Handle, length int, offset int64) ([]byte, error) {
	var got []byte
	err := c.Load(context.Background(), h, length, offset, func(rd io.Reader) error {
		var err error
		got, err = io.ReadAll(rd)
		return err
	}, func() error {
		s.directs.Add(1)
		if offset+int64(length) > s.size {
			return io.ErrUnexpectedEOF
		}
		got = s.bytes(offset, int64(length))
		return nil
	})
	return got, err
}

var pack = backend.Handle{Type: backend.Data, Name: "aa"}

func TestSmallReadsShareABlock(t *testing.T) {
	s := &store{size: 3*BlockSize + 100}
	c := New(s.fetch)
	for _, r := range []struct {
		off int64
		n   int
	}{{0, 100}, {5000, 2000}, {BlockSize - 10, 10}, {300, MaxRead}} {
		got, err := s.load(c, pack, r.n, r.off)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, s.bytes(r.off, int64(r.n))) {
			t.Fatalf("read of %d at %d: wrong bytes", r.n, r.off)
		}
	}
	if f, d := s.fetches.Load(), s.directs.Load(); f != 1 || d != 0 {
		t.Fatalf("%d fetches and %d direct loads for four reads in one block, want 1 and 0", f, d)
	}
	// The short last block serves what it holds.
	if got, err := s.load(c, pack, 50, 3*BlockSize+50); err != nil || !bytes.Equal(got, s.bytes(3*BlockSize+50, 50)) {
		t.Fatalf("read in the last block: %v", err)
	}
	if f := s.fetches.Load(); f != 2 {
		t.Fatalf("%d fetches, want 2", f)
	}
}

func TestReadsTheCacheDoesNotServe(t *testing.T) {
	s := &store{size: 3 * BlockSize}
	c := New(s.fetch)
	for _, r := range []struct {
		name string
		h    backend.Handle
		off  int64
		n    int
	}{
		{"large", pack, 0, MaxRead + 1},
		{"whole file", pack, 0, 0},
		{"across blocks", pack, BlockSize - 10, 20},
		{"not a pack", backend.Handle{Type: backend.Index, Name: "aa"}, 0, 10},
	} {
		before := s.directs.Load()
		got, err := s.load(c, r.h, r.n, r.off)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if s.directs.Load() != before+1 || !bytes.Equal(got, s.bytes(r.off, int64(r.n))) {
			t.Fatalf("%s: not loaded directly", r.name)
		}
	}
	if f := s.fetches.Load(); f != 0 {
		t.Fatalf("%d fetches, want none", f)
	}
	var nilCache *Cache
	if _, err := s.load(nilCache, pack, 10, 0); err != nil || s.fetches.Load() != 0 {
		t.Fatalf("a nil cache: %v, %d fetches", err, s.fetches.Load())
	}
}

func TestPastTheEndIsTheBackendsAnswer(t *testing.T) {
	s := &store{size: BlockSize + 100}
	c := New(s.fetch)
	// Inside the last block but running past the end of the file: the
	// direct load gives the backend's error.
	if _, err := s.load(c, pack, 200, BlockSize+50); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read past the end: %v, want io.ErrUnexpectedEOF", err)
	}
	// A block that starts past the end cannot be fetched: the same.
	if _, err := s.load(c, pack, 10, 5*BlockSize); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read of a block past the end: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestFailedFetchIsNotCached(t *testing.T) {
	s := &store{size: BlockSize}
	c := New(s.fetch)
	s.fail.Store(true)
	got, err := s.load(c, pack, 10, 20)
	if err != nil || !bytes.Equal(got, s.bytes(20, 10)) || s.directs.Load() != 1 {
		t.Fatalf("after a failed fetch: %v, %d direct loads; want the direct load's bytes", err, s.directs.Load())
	}
	s.fail.Store(false)
	if _, err := s.load(c, pack, 10, 20); err != nil {
		t.Fatal(err)
	}
	if f, d := s.fetches.Load(), s.directs.Load(); f != 2 || d != 1 {
		t.Fatalf("%d fetches, %d direct loads; want the block fetched again", f, d)
	}
}

func TestConcurrentReadsWaitForOneFetch(t *testing.T) {
	s := &store{size: BlockSize, gate: make(chan struct{})}
	c := New(s.fetch)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			got, err := s.load(c, pack, 100, int64(i)*1000)
			if err == nil && !bytes.Equal(got, s.bytes(int64(i)*1000, 100)) {
				err = errors.New("wrong bytes")
			}
			errs[i] = err
		})
	}
	// Every reader is either the fetcher or waiting on it once the block
	// is in the map; release the fetch then.
	for {
		c.mu.Lock()
		n := len(c.blocks)
		c.mu.Unlock()
		if n == 1 {
			break
		}
		runtime.Gosched()
	}
	close(s.gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f := s.fetches.Load(); f != 1 {
		t.Fatalf("%d fetches for 8 concurrent reads of one block, want 1", f)
	}
}

func TestLeastRecentlyUsedBlockGoes(t *testing.T) {
	s := &store{size: (Blocks + 2) * BlockSize}
	c := New(s.fetch)
	for i := range int64(Blocks) {
		if _, err := s.load(c, pack, 10, i*BlockSize); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.load(c, pack, 10, 0); err != nil { // block 0 used again
		t.Fatal(err)
	}
	if _, err := s.load(c, pack, 10, Blocks*BlockSize); err != nil { // evicts block 1
		t.Fatal(err)
	}
	before := s.fetches.Load()
	if _, err := s.load(c, pack, 10, 0); err != nil {
		t.Fatal(err)
	}
	if s.fetches.Load() != before {
		t.Fatal("block 0, used recently, was evicted")
	}
	if _, err := s.load(c, pack, 10, BlockSize); err != nil {
		t.Fatal(err)
	}
	if s.fetches.Load() != before+1 {
		t.Fatal("block 1, the least recently used, was kept")
	}
	if got := c.Fetches(); got != uint64(s.fetches.Load()) {
		t.Fatalf("Fetches() = %d, the store saw %d", got, s.fetches.Load())
	}
}
