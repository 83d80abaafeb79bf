package backendtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
)

// RunSuite runs the conformance suite. newBackend must return a fresh, empty
// backend for each call; RunSuite closes it when the subtest ends.
func RunSuite(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	s := &suite{newBackend: newBackend}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"RoundTrip", s.testRoundTrip},
		{"CallerMutation", s.testCallerMutation},
		{"Ranges", s.testRanges},
		{"LoadFnError", s.testLoadFnError},
		{"WriteOnce", s.testWriteOnce},
		{"HashMismatch", s.testHashMismatch},
		{"InvalidNames", s.testInvalidNames},
		{"Missing", s.testMissing},
		{"Stat", s.testStat},
		{"ListEmpty", s.testListEmpty},
		{"List", s.testList},
		{"ListManyData", s.testListManyData},
		{"ListStopsOnError", s.testListStopsOnError},
		{"ListRemoveInCallback", s.testListRemoveInCallback},
		{"Remove", s.testRemove},
		{"RetryAfterRewind", s.testRetryAfterRewind},
		{"ShortReader", s.testShortReader},
		{"CancelledSave", s.testCancelledSave},
		{"ConcurrentSaves", s.testConcurrentSaves},
		{"ConcurrentSameHandle", s.testConcurrentSameHandle},
		{"Properties", s.testProperties},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

type suite struct {
	newBackend func(t *testing.T) backend.Backend
}

// open returns a fresh backend that is closed when t ends.
func (s *suite) open(t *testing.T) backend.Backend {
	t.Helper()
	be := s.newBackend(t)
	t.Cleanup(func() {
		if err := be.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return be
}

// newRand returns a deterministic source, so failures reproduce.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x63616972)) }

func randomBytes(rng *rand.Rand, n int) []byte {
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	return buf
}

// handleFor names data as a file of type t would be named.
func handleFor(t backend.FileType, data []byte) backend.Handle {
	if t == backend.Config {
		return backend.Handle{Type: backend.Config, Name: "config"}
	}
	return backend.Handle{Type: t, Name: backend.NameOf(data)}
}

func save(t *testing.T, be backend.Backend, h backend.Handle, data []byte) {
	t.Helper()
	if err := be.Save(context.Background(), h, backend.NewByteReader(data)); err != nil {
		t.Fatalf("save %v: %v", h, err)
	}
}

// saveRandom stores size random bytes as a file of type typ.
func saveRandom(t *testing.T, be backend.Backend, rng *rand.Rand, typ backend.FileType, size int) (backend.Handle, []byte) {
	t.Helper()
	data := randomBytes(rng, size)
	h := handleFor(typ, data)
	save(t, be, h, data)
	return h, data
}

func load(t *testing.T, be backend.Backend, h backend.Handle) []byte {
	t.Helper()
	buf, err := backend.LoadAll(context.Background(), be, h)
	if err != nil {
		t.Fatalf("load %v: %v", h, err)
	}
	return buf
}

func checkContent(t *testing.T, be backend.Backend, h backend.Handle, want []byte) {
	t.Helper()
	got := load(t, be, h)
	if string(got) != string(want) {
		t.Fatalf("load %v: got %d bytes %s, want %d bytes %s", h, len(got), short(got), len(want), short(want))
	}
}

func checkAbsent(t *testing.T, be backend.Backend, h backend.Handle) {
	t.Helper()
	if fi, err := be.Stat(context.Background(), h); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("stat %v: got %+v, %v; want ErrNotFound", h, fi, err)
	}
	if h.Type != backend.Config {
		return
	}
	// Also make sure nothing is listed under Config, whose name is fixed.
	if n := len(list(t, be, backend.Config)); n != 0 {
		t.Fatalf("list config: %d files, want none", n)
	}
}

// list returns everything List reports for typ, failing on duplicates.
func list(t *testing.T, be backend.Backend, typ backend.FileType) map[backend.Handle]backend.FileInfo {
	t.Helper()
	out := make(map[backend.Handle]backend.FileInfo)
	err := be.List(context.Background(), typ, func(fi backend.FileInfo) error {
		if fi.Type != typ {
			return fmt.Errorf("listed %v while listing %s", fi.Handle, typ)
		}
		if _, dup := out[fi.Handle]; dup {
			return fmt.Errorf("listed %v twice", fi.Handle)
		}
		out[fi.Handle] = fi
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", typ, err)
	}
	return out
}

// checkEmpty fails unless every type lists no files.
func checkEmpty(t *testing.T, be backend.Backend) {
	t.Helper()
	for _, typ := range backend.AllTypes {
		for h := range list(t, be, typ) {
			t.Fatalf("list %s: unexpected %v", typ, h)
		}
	}
}

func short(b []byte) string {
	if len(b) > 16 {
		return fmt.Sprintf("%x…", b[:16])
	}
	return fmt.Sprintf("%x", b)
}

// flakyReader fails with errFlaky after failAt bytes on its first pass and
// behaves after Rewind, like a network source that drops once.
type flakyReader struct {
	*backend.ByteReader
	failAt int64
	read   int64
	failed bool
}

var errFlaky = errors.New("backendtest: flaky reader fails")

func (r *flakyReader) Read(p []byte) (int, error) {
	if !r.failed {
		if r.read >= r.failAt {
			r.failed = true
			return 0, errFlaky
		}
		if rest := r.failAt - r.read; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := r.ByteReader.Read(p)
	r.read += int64(n)
	return n, err
}

func (r *flakyReader) Rewind() error {
	r.read = 0
	return r.ByteReader.Rewind()
}

// lyingReader claims a different length than it delivers.
type lyingReader struct {
	*backend.ByteReader
	length int64
}

func (r *lyingReader) Length() int64 { return r.length }

var _ io.Reader = (*flakyReader)(nil)
