package backendtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
)

func (s *suite) testRoundTrip(t *testing.T) {
	for i, typ := range backend.AllTypes {
		sizes := []int{0, 1, 5000}
		if typ == backend.Data {
			sizes = append(sizes, 2<<20+3) // spans several buffers of any copy loop
		}
		t.Run(string(typ), func(t *testing.T) {
			// One backend per type, except that config, having a fixed
			// name, needs a fresh one per size.
			var be backend.Backend
			for j, size := range sizes {
				if be == nil || typ == backend.Config {
					be = s.open(t)
				}
				rng := newRand(uint64(100*i + j))
				h, data := saveRandom(t, be, rng, typ, size)
				checkContent(t, be, h, data)
				fi, err := be.Stat(context.Background(), h)
				if err != nil {
					t.Fatalf("stat %v: %v", h, err)
				}
				if fi.Handle != h || fi.Size != int64(size) {
					t.Fatalf("stat %v: got %v size %d, want size %d", h, fi.Handle, fi.Size, size)
				}
			}
		})
	}
}

// testCallerMutation checks that neither the caller's buffer after Save nor
// bytes read by Load alias what is stored.
func (s *suite) testCallerMutation(t *testing.T) {
	be := s.open(t)
	data := randomBytes(newRand(1), 100)
	want := string(data)
	h := handleFor(backend.Data, data)
	save(t, be, h, data)
	data[0] ^= 0xff // the caller reuses its buffer
	checkContent(t, be, h, []byte(want))

	err := be.Load(context.Background(), h, 0, 0, func(rd io.Reader) error {
		buf, err := io.ReadAll(rd)
		for i := range buf {
			buf[i] = 0
		}
		return err
	})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	checkContent(t, be, h, []byte(want))
}

func (s *suite) testWriteOnce(t *testing.T) {
	be := s.open(t)
	for i, typ := range backend.AllTypes {
		t.Run(string(typ), func(t *testing.T) {
			rng := newRand(uint64(200 + i))
			h, data := saveRandom(t, be, rng, typ, 300)

			err := be.Save(context.Background(), h, backend.NewByteReader(data))
			if !errors.Is(err, backend.ErrExists) {
				t.Fatalf("second save of %v: got %v, want ErrExists", h, err)
			}
			// Different bytes under the same handle: for config a plain
			// overwrite attempt, for content names also a hash mismatch;
			// either way it must fail and change nothing.
			other := randomBytes(rng, 400)
			err = be.Save(context.Background(), h, backend.NewByteReader(other))
			if err == nil {
				t.Fatalf("save of other bytes over %v succeeded", h)
			}
			if typ == backend.Config && !errors.Is(err, backend.ErrExists) {
				t.Fatalf("save over config: got %v, want ErrExists", err)
			}
			checkContent(t, be, h, data)
			if n := len(list(t, be, typ)); n != 1 {
				t.Fatalf("list %s: %d files, want 1", typ, n)
			}
		})
	}
}

func (s *suite) testHashMismatch(t *testing.T) {
	be := s.open(t)
	for i, typ := range backend.AllTypes {
		if !backend.ContentNamed(typ) {
			continue
		}
		t.Run(string(typ), func(t *testing.T) {
			rng := newRand(uint64(300 + i))
			data := randomBytes(rng, 1000)
			unrelated := handleFor(typ, randomBytes(rng, 1000))
			flipped := append([]byte(nil), data...)
			flipped[500] ^= 1 // one bit of damage in transit
			for _, c := range []struct {
				h    backend.Handle
				data []byte
			}{{unrelated, data}, {handleFor(typ, data), flipped}} {
				err := be.Save(context.Background(), c.h, backend.NewByteReader(c.data))
				if !errors.Is(err, backend.ErrHashMismatch) {
					t.Fatalf("save %v with wrong bytes: got %v, want ErrHashMismatch", c.h, err)
				}
				checkAbsent(t, be, c.h)
			}
		})
	}
	checkEmpty(t, be)
}

func (s *suite) testInvalidNames(t *testing.T) {
	data := randomBytes(newRand(2), 10)
	valid := backend.NameOf(data)
	bad := []backend.Handle{
		{Type: backend.Data, Name: ""},
		{Type: backend.Data, Name: "."},
		{Type: backend.Data, Name: ".."},
		{Type: backend.Data, Name: "../config"},
		{Type: backend.Data, Name: "/" + valid[1:]},
		{Type: backend.Data, Name: valid[:30] + "/" + valid[31:]},
		{Type: backend.Data, Name: "../../" + valid[6:]},
		{Type: backend.Data, Name: strings.ToUpper(valid)},
		{Type: backend.Data, Name: valid[:63] + "G"},
		{Type: backend.Data, Name: valid[:63]},
		{Type: backend.Data, Name: valid + "0"},
		{Type: backend.Data, Name: valid[:2]},
		{Type: backend.Data, Name: ".tmp-" + valid[5:]},
		{Type: backend.Snapshots, Name: valid[:32]},
		{Type: backend.Config, Name: ""},
		{Type: backend.Config, Name: valid},
		{Type: backend.Config, Name: "../config"},
		{Type: "bogus", Name: valid},
		{Type: "", Name: valid},
		{Type: "../data", Name: valid},
		{Type: "data/00", Name: valid},
		{Type: "Data", Name: valid},
	}
	be := s.open(t)
	ctx := context.Background()
	for _, h := range bad {
		if err := be.Save(ctx, h, backend.NewByteReader(data)); !errors.Is(err, backend.ErrInvalidName) {
			t.Errorf("save %q/%q: got %v, want ErrInvalidName", h.Type, h.Name, err)
		}
		called := false
		err := be.Load(ctx, h, 0, 0, func(io.Reader) error { called = true; return nil })
		if !errors.Is(err, backend.ErrInvalidName) || called {
			t.Errorf("load %q/%q: got %v (fn called: %v), want ErrInvalidName", h.Type, h.Name, err, called)
		}
		if _, err := be.Stat(ctx, h); !errors.Is(err, backend.ErrInvalidName) {
			t.Errorf("stat %q/%q: got %v, want ErrInvalidName", h.Type, h.Name, err)
		}
		if err := be.Remove(ctx, h); !errors.Is(err, backend.ErrInvalidName) {
			t.Errorf("remove %q/%q: got %v, want ErrInvalidName", h.Type, h.Name, err)
		}
	}
	for _, typ := range []backend.FileType{"", "bogus", "../data", "data/00"} {
		err := be.List(ctx, typ, func(backend.FileInfo) error { return nil })
		if !errors.Is(err, backend.ErrInvalidName) {
			t.Errorf("list %q: got %v, want ErrInvalidName", typ, err)
		}
	}
	checkEmpty(t, be)
}

// testRetryAfterRewind saves through a reader that fails midway: the failed
// Save must leave nothing, and the retry after Rewind must store it all.
func (s *suite) testRetryAfterRewind(t *testing.T) {
	for i, typ := range []backend.FileType{backend.Config, backend.Data, backend.Snapshots} {
		t.Run(string(typ), func(t *testing.T) {
			be := s.open(t)
			data := randomBytes(newRand(uint64(400+i)), 100_000)
			h := handleFor(typ, data)
			rd := &flakyReader{ByteReader: backend.NewByteReader(data), failAt: 50_000}
			if err := be.Save(context.Background(), h, rd); !errors.Is(err, errFlaky) {
				t.Fatalf("save through failing reader: got %v, want the reader's error", err)
			}
			checkAbsent(t, be, h)
			if err := rd.Rewind(); err != nil {
				t.Fatal(err)
			}
			if err := be.Save(context.Background(), h, rd); err != nil {
				t.Fatalf("retry after rewind: %v", err)
			}
			checkContent(t, be, h, data)
		})
	}
}

// testShortReader: a reader that ends before its Length must not leave a
// truncated file; for config no hash would catch it later.
func (s *suite) testShortReader(t *testing.T) {
	for i, typ := range []backend.FileType{backend.Config, backend.Index} {
		t.Run(string(typ), func(t *testing.T) {
			be := s.open(t)
			data := randomBytes(newRand(uint64(500+i)), 1000)
			h := handleFor(typ, data[:900])
			rd := &lyingReader{ByteReader: backend.NewByteReader(data[:900]), length: 1000}
			if err := be.Save(context.Background(), h, rd); err == nil {
				t.Fatalf("save of %d bytes claiming %d succeeded", 900, 1000)
			}
			checkAbsent(t, be, h)
		})
	}
}

func (s *suite) testCancelledSave(t *testing.T) {
	be := s.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, typ := range []backend.FileType{backend.Config, backend.Data} {
		data := randomBytes(newRand(6), 1000)
		h := handleFor(typ, data)
		if err := be.Save(ctx, h, backend.NewByteReader(data)); !errors.Is(err, context.Canceled) {
			t.Fatalf("save %v with cancelled context: got %v, want context.Canceled", h, err)
		}
		checkAbsent(t, be, h)
	}
	checkEmpty(t, be)
}

func (s *suite) testConcurrentSaves(t *testing.T) {
	be := s.open(t)
	const workers, perWorker = 8, 12
	types := []backend.FileType{backend.Data, backend.Index, backend.Snapshots, backend.Receipts}
	files := make([][][]byte, workers)
	for w := range files {
		rng := newRand(uint64(600 + w))
		for range perWorker {
			files[w] = append(files[w], randomBytes(rng, 1+rng.IntN(20_000)))
		}
	}
	errs := make(chan error, workers*perWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i, data := range files[w] {
				h := handleFor(types[(w+i)%len(types)], data)
				if err := be.Save(context.Background(), h, backend.NewByteReader(data)); err != nil {
					errs <- fmt.Errorf("worker %d: save %v: %w", w, h, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	listed := 0
	for _, typ := range types {
		listed += len(list(t, be, typ))
	}
	if listed != workers*perWorker {
		t.Fatalf("listed %d files, want %d", listed, workers*perWorker)
	}
	for w := range files {
		for i, data := range files[w] {
			checkContent(t, be, handleFor(types[(w+i)%len(types)], data), data)
		}
	}
}

// testConcurrentSameHandle races Saves of one handle. For config, with
// different bytes each, exactly one must win; for a content name at least
// one must, and every loser must see ErrExists.
func (s *suite) testConcurrentSameHandle(t *testing.T) {
	for _, typ := range []backend.FileType{backend.Config, backend.Data} {
		t.Run(string(typ), func(t *testing.T) {
			be := s.open(t)
			const n = 8
			rng := newRand(7)
			var contents [n][]byte
			for i := range contents {
				if typ == backend.Config || i == 0 {
					contents[i] = randomBytes(rng, 50_000)
				} else {
					contents[i] = contents[0]
				}
			}
			h := handleFor(typ, contents[0])
			var errs [n]error
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					errs[i] = be.Save(context.Background(), h, backend.NewByteReader(contents[i]))
				})
			}
			wg.Wait()
			winners := 0
			var winner []byte
			for i, err := range errs {
				switch {
				case err == nil:
					winners++
					winner = contents[i]
				case !errors.Is(err, backend.ErrExists):
					t.Errorf("save %d: got %v, want nil or ErrExists", i, err)
				}
			}
			if winners == 0 || typ == backend.Config && winners != 1 {
				t.Fatalf("%d saves succeeded", winners)
			}
			checkContent(t, be, h, winner)
		})
	}
}

func (s *suite) testProperties(t *testing.T) {
	p := s.open(t).Properties()
	if p.Connections < 1 {
		t.Errorf("Connections = %d, want at least 1", p.Connections)
	}
	if p.Location == "" {
		t.Errorf("Location is empty")
	}
}
