package repository

import (
	"context"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
)

func TestIsCairnConfig(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want bool
	}{{"CRC1\x00\x00\x00\x00", true}, {"CRC", false}, {"", false}, {`{"version":2}`, false}} {
		if got := IsCairnConfig([]byte(tc.raw)); got != tc.want {
			t.Errorf("IsCairnConfig(%q) = %v", tc.raw, got)
		}
	}
}

// TestReadStatementNotASnapshot: a stored file that is not a signed
// snapshot reads as no statement, not as an error; a missing one is the
// backend's error.
func TestReadStatementNotASnapshot(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	for _, body := range []string{"", "CRS1", "CRS1\xff\xff\xff\xffjunk", "not a snapshot at all"} {
		h := backend.Handle{Type: backend.Snapshots, Name: backend.NameOf([]byte(body))}
		if err := be.Save(ctx, h, backend.NewByteReader([]byte(body))); err != nil {
			t.Fatal(err)
		}
		st, err := ReadStatement(ctx, be, backend.FileInfo{Handle: h, Size: int64(len(body))})
		if st != nil || err != nil {
			t.Errorf("%q: %v, %v", body, st, err)
		}
	}
	h := backend.Handle{Type: backend.Snapshots, Name: backend.NameOf([]byte("gone"))}
	if _, err := ReadStatement(ctx, be, backend.FileInfo{Handle: h, Size: 4}); err == nil {
		t.Error("missing file: no error")
	}
}
