package archiver

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"github.com/cairnbackup/cairn/internal/blob"
)

// TestAsyncHasher: the hash of a stream written in pieces of every size,
// larger and smaller than a block, is SHA-256 of the stream; an empty
// stream hashes like nothing; stop without sum ends the goroutine.
func TestAsyncHasher(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3*asyncBlock+12345)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, piece := range []int{999, 4096, asyncBlock - 1, asyncBlock, asyncBlock + 1, len(data)} {
		a := newAsyncHasher()
		for p := data; len(p) > 0; {
			k := min(piece, len(p))
			if n, err := a.Write(p[:k]); n != k || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			p = p[k:]
		}
		if got, want := a.sum(), blob.ID(sha256.Sum256(data)); got != want {
			t.Errorf("pieces of %d: hash %x, want %x", piece, got, want)
		}
	}
	if got, want := newAsyncHasher().sum(), blob.ID(sha256.Sum256(nil)); got != want {
		t.Errorf("empty stream: %x, want %x", got, want)
	}
	a := newAsyncHasher()
	a.Write(data)
	a.stop()
}
