package fsmeta

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

func TestDataExtentsSparse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sparse")
	makeSparse(t, p)
	if a := allocated(t, p); a >= 1<<20 {
		t.Skipf("file system did not keep holes (%d bytes allocated)", a)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(7, 0); err != nil {
		t.Fatal(err)
	}
	ext, err := DataExtents(f, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(ext) != 2 {
		t.Fatalf("extents = %+v, want two runs", ext)
	}
	// Runs are block-granular; they must cover the data and be small.
	covers := func(e snapshot.Extent, off, n int64) bool {
		return e.Offset <= off && off+n <= e.Offset+e.Length && e.Length <= 64<<10
	}
	if !covers(ext[0], 0, 4096) || !covers(ext[1], 1<<20, 4096) {
		t.Errorf("extents = %+v", ext)
	}
	if pos, _ := f.Seek(0, 1); pos != 7 {
		t.Errorf("file offset moved to %d", pos)
	}
}

func TestDataExtentsDenseAndEmpty(t *testing.T) {
	dir := t.TempDir()
	dense := filepath.Join(dir, "dense")
	mustWrite(t, dense, string(make([]byte, 100_000)), 0o644)
	hole := filepath.Join(dir, "hole")
	if err := os.WriteFile(hole, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(hole, 1<<20); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		size  int64
		isNil bool
	}{{dense, 100_000, true}, {hole, 1 << 20, false}, {hole, 0, true}} {
		f, err := os.Open(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		ext, err := DataExtents(f, tc.size)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if (ext == nil) != tc.isNil || len(ext) != 0 {
			t.Errorf("%s size %d: extents %#v, want nil=%v and empty", filepath.Base(tc.path), tc.size, ext, tc.isNil)
		}
	}
}
