package backendtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
)

func (s *suite) testRanges(t *testing.T) {
	be := s.open(t)
	h, data := saveRandom(t, be, newRand(10), backend.Data, 1000)
	tests := []struct {
		name           string
		length         int
		offset         int64
		want           []byte // nil when an error is expected
		wantUnexpected bool
	}{
		{"whole", 0, 0, data, false},
		{"start", 10, 0, data[:10], false},
		{"middle", 450, 100, data[100:550], false},
		{"end", 10, 990, data[990:], false},
		{"tail", 0, 990, data[990:], false},
		{"exact", 1000, 0, data, false},
		{"last byte", 1, 999, data[999:], false},
		{"empty tail", 0, 1000, []byte{}, false},
		{"one past end", 11, 990, nil, true},
		{"length past end", 1001, 0, nil, true},
		{"offset past end", 0, 1001, nil, true},
		{"far past end", 10, 5000, nil, true},
		{"negative offset", 10, -1, nil, false},
		{"negative length", -1, 0, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []byte
			err := be.Load(context.Background(), h, tt.length, tt.offset, func(rd io.Reader) error {
				var err error
				got, err = io.ReadAll(rd)
				return err
			})
			if tt.want == nil {
				if err == nil {
					t.Fatalf("load %d+%d of 1000 bytes: no error, got %d bytes", tt.offset, tt.length, len(got))
				}
				if tt.wantUnexpected && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("load %d+%d of 1000 bytes: got %v, want io.ErrUnexpectedEOF", tt.offset, tt.length, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("load %d+%d: %v", tt.offset, tt.length, err)
			}
			if string(got) != string(tt.want) {
				t.Fatalf("load %d+%d: got %d bytes %s, want %d bytes %s", tt.offset, tt.length, len(got), short(got), len(tt.want), short(tt.want))
			}
		})
	}
}

func (s *suite) testLoadFnError(t *testing.T) {
	be := s.open(t)
	h, _ := saveRandom(t, be, newRand(11), backend.Index, 100)
	sentinel := errors.New("callback gives up")
	err := be.Load(context.Background(), h, 0, 0, func(io.Reader) error { return sentinel })
	if !errors.Is(err, sentinel) {
		t.Fatalf("load with failing callback: got %v, want the callback's error", err)
	}
}

func (s *suite) testMissing(t *testing.T) {
	be := s.open(t)
	ctx := context.Background()
	for i, typ := range backend.AllTypes {
		h := handleFor(typ, randomBytes(newRand(uint64(20+i)), 10))
		called := false
		err := be.Load(ctx, h, 0, 0, func(io.Reader) error { called = true; return nil })
		if !errors.Is(err, backend.ErrNotFound) || called {
			t.Errorf("load missing %v: got %v (fn called: %v), want ErrNotFound", h, err, called)
		}
		if _, err := be.Stat(ctx, h); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("stat missing %v: got %v, want ErrNotFound", h, err)
		}
		if err := be.Remove(ctx, h); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("remove missing %v: got %v, want ErrNotFound", h, err)
		}
	}
}

func (s *suite) testStat(t *testing.T) {
	be := s.open(t)
	rng := newRand(12)
	for _, size := range []int{0, 7, 4096, 70_000} {
		h, _ := saveRandom(t, be, rng, backend.Keys, size)
		fi, err := be.Stat(context.Background(), h)
		if err != nil {
			t.Fatalf("stat %v: %v", h, err)
		}
		if fi.Handle != h || fi.Size != int64(size) {
			t.Errorf("stat: got %v size %d, want %v size %d", fi.Handle, fi.Size, h, size)
		}
	}
}

func (s *suite) testListEmpty(t *testing.T) {
	checkEmpty(t, s.open(t))
}

// testList stores a few files of every type and checks each type lists
// exactly its own, with their sizes.
func (s *suite) testList(t *testing.T) {
	be := s.open(t)
	rng := newRand(13)
	want := make(map[backend.FileType]map[backend.Handle]int64)
	for _, typ := range backend.AllTypes {
		want[typ] = make(map[backend.Handle]int64)
		n := 3
		if typ == backend.Config {
			n = 1
		}
		for range n {
			size := rng.IntN(3000)
			h, _ := saveRandom(t, be, rng, typ, size)
			want[typ][h] = int64(size)
		}
	}
	for _, typ := range backend.AllTypes {
		checkListed(t, list(t, be, typ), want[typ])
	}
}

func checkListed(t *testing.T, got map[backend.Handle]backend.FileInfo, want map[backend.Handle]int64) {
	t.Helper()
	for h, size := range want {
		fi, ok := got[h]
		if !ok {
			t.Errorf("list: %v missing", h)
		} else if fi.Size != size {
			t.Errorf("list: %v has size %d, want %d", h, fi.Size, size)
		}
	}
	for h := range got {
		if _, ok := want[h]; !ok {
			t.Errorf("list: unexpected %v", h)
		}
	}
}

// testListManyData stores enough packs to land in most of the 256 shards a
// sharding backend uses.
func (s *suite) testListManyData(t *testing.T) {
	be := s.open(t)
	rng := newRand(14)
	want := make(map[backend.Handle]int64)
	shards := make(map[string]bool)
	for range 300 {
		size := 1 + rng.IntN(100)
		h, _ := saveRandom(t, be, rng, backend.Data, size)
		want[h] = int64(size)
		shards[h.Name[:2]] = true
	}
	if len(shards) < 100 {
		t.Fatalf("test data covers only %d shards", len(shards))
	}
	checkListed(t, list(t, be, backend.Data), want)
	if t.Failed() {
		return
	}
	for h := range want {
		if _, err := be.Stat(context.Background(), h); err != nil {
			t.Fatalf("stat listed %v: %v", h, err)
		}
	}
}

func (s *suite) testListStopsOnError(t *testing.T) {
	be := s.open(t)
	rng := newRand(15)
	for range 5 {
		saveRandom(t, be, rng, backend.Data, 10)
	}
	sentinel := errors.New("enough")
	calls := 0
	err := be.List(context.Background(), backend.Data, func(backend.FileInfo) error {
		calls++
		return sentinel
	})
	if !errors.Is(err, sentinel) {
		t.Fatalf("list with failing callback: got %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Fatalf("callback called %d times after failing, want 1", calls)
	}
}

// testListRemoveInCallback removes each file as it is listed, as prune
// does; List must neither deadlock nor fail.
func (s *suite) testListRemoveInCallback(t *testing.T) {
	be := s.open(t)
	rng := newRand(16)
	for range 40 {
		saveRandom(t, be, rng, backend.Data, 10)
	}
	removed := 0
	err := be.List(context.Background(), backend.Data, func(fi backend.FileInfo) error {
		removed++
		if err := be.Remove(context.Background(), fi.Handle); err != nil {
			return fmt.Errorf("remove %v: %w", fi.Handle, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if removed != 40 {
		t.Fatalf("removed %d files, want 40", removed)
	}
	checkEmpty(t, be)
}

func (s *suite) testRemove(t *testing.T) {
	for i, typ := range []backend.FileType{backend.Config, backend.Data, backend.Locks, backend.Plans} {
		t.Run(string(typ), func(t *testing.T) {
			be := s.open(t)
			ctx := context.Background()
			rng := newRand(uint64(30 + i))
			h, data := saveRandom(t, be, rng, typ, 500)
			var keep backend.Handle
			var keepData []byte
			if typ != backend.Config {
				keep, keepData = saveRandom(t, be, rng, typ, 600)
			}
			if err := be.Remove(ctx, h); err != nil {
				t.Fatalf("remove %v: %v", h, err)
			}
			checkAbsent(t, be, h)
			if _, err := backend.LoadAll(ctx, be, h); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("load removed %v: got %v, want ErrNotFound", h, err)
			}
			if err := be.Remove(ctx, h); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("second remove %v: got %v, want ErrNotFound", h, err)
			}
			if _, ok := list(t, be, typ)[h]; ok {
				t.Fatalf("list: removed %v still listed", h)
			}
			if keepData != nil {
				checkContent(t, be, keep, keepData)
			}
			// A removed file may be saved again, e.g. re-uploaded after prune.
			save(t, be, h, data)
			checkContent(t, be, h, data)
		})
	}
}
