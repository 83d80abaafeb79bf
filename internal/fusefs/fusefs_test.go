package fusefs

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// chunkedFile stores chunks as data blobs and returns a file node over
// them, in a snapshot signed by the owner.
func chunkedFile(t *testing.T, chunks [][]byte, extents []snapshot.Extent, size uint64) *fileNode {
	t.Helper()
	ctx := context.Background()
	be, err := local.Create(ctx, filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(ctx, be, []byte("pw"), repository.Options{CacheDir: t.TempDir(),
		KDF: &crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	sess, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := snapshot.Node{Name: "f", Type: snapshot.TypeFile, Size: size, Extents: extents}
	for _, c := range chunks {
		id, _, err := sess.SaveBlob(ctx, blob.Data, c)
		if err != nil {
			t.Fatal(err)
		}
		n.Content = append(n.Content, id)
	}
	if err := sess.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sess.Close()
	var st snapshot.Statement
	copy(st.Writer[:], repo.Keys().OwnerSignPub)
	snap := &repository.Snapshot{File: &snapshot.File{Statement: &st}}
	fsys := New(repo, nil, func(m string) { t.Log(m) })
	return &fileNode{entry: entry{info: info{fsys: fsys, snap: snap, node: n}}, content: n}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestReadAt: reads anywhere, across chunk boundaries and from the end
// first, return the file's bytes, with holes of a sparse file as zeros.
func TestReadAt(t *testing.T) {
	ctx := context.Background()
	chunks := [][]byte{random(1000), random(3000), random(10), random(2500)}
	dense := bytes.Join(chunks, nil)
	f := chunkedFile(t, chunks, nil, uint64(len(dense)))
	for _, r := range []struct{ off, n int }{{len(dense) - 100, 500}, {0, 10}, {990, 30}, {3995, 20}, {0, len(dense)}, {len(dense), 10}} {
		buf := make([]byte, r.n)
		got, err := f.readAt(ctx, buf, int64(r.off))
		want := dense[min(r.off, len(dense)):min(r.off+r.n, len(dense))]
		if err != nil || !bytes.Equal(buf[:got], want) {
			t.Errorf("readAt(%d, %d): %d bytes, %v", r.off, r.n, got, err)
		}
	}

	// Sparse: 4000 bytes at 5000, 2510 at 20000, size 30000.
	ext := []snapshot.Extent{{Offset: 5000, Length: 4000}, {Offset: 20000, Length: 2510}}
	logical := make([]byte, 30000)
	copy(logical[5000:], dense[:4000])
	copy(logical[20000:], dense[4000:])
	s := chunkedFile(t, chunks, ext, uint64(len(logical)))
	for _, r := range []struct{ off, n int }{{0, 30000}, {4990, 20}, {8990, 11020}, {22500, 1000}, {29999, 5}} {
		buf := make([]byte, r.n)
		for i := range buf {
			buf[i] = 0xff // holes must be written as zeros
		}
		got, err := s.readAt(ctx, buf, int64(r.off))
		want := logical[r.off:min(r.off+r.n, len(logical))]
		if err != nil || !bytes.Equal(buf[:got], want) {
			t.Errorf("sparse readAt(%d, %d): %d bytes, %v", r.off, r.n, got, err)
		}
	}

	// Content shorter than the size the tree claims is an error, not
	// zeros or a hang.
	short := chunkedFile(t, chunks[:1], nil, 5000)
	if _, err := short.readAt(ctx, make([]byte, 100), 4000); err == nil {
		t.Error("a read past the stored content succeeded")
	}
}

func TestLRUBounds(t *testing.T) {
	c := newLRU()
	for i := range 200 {
		c.put(cacheKey{kind: blob.Data, id: blob.ID{byte(i)}}, make([]byte, 1<<20), 1<<20)
	}
	if c.bytes > maxCachedBytes {
		t.Errorf("cache holds %d bytes, bound %d", c.bytes, maxCachedBytes)
	}
	if _, ok := c.get(cacheKey{kind: blob.Data, id: blob.ID{199}}); !ok {
		t.Error("the newest entry was evicted")
	}
	if _, ok := c.get(cacheKey{kind: blob.Data, id: blob.ID{0}}); ok {
		t.Error("the oldest entry was kept")
	}
}
