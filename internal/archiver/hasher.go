package archiver

import (
	"crypto/sha256"
	"hash"
	"sync"

	"github.com/cairnbackup/cairn/internal/blob"
)

// asyncHasher computes a stream's SHA-256 (a file's content hash) on a
// goroutine of its own: Write hands it a copy of each block read. On a
// large file the reading goroutine chunks and the sealers hash chunk IDs
// and compress in parallel, so the whole-file hash, done inline, was the
// longest serial step (2.8 CPU-s of a 4 GiB file's 9.6). Copying a block
// costs a tenth of hashing it. At most asyncDepth+2 blocks of at most
// asyncBlock bytes are held per stream.
type asyncHasher struct {
	blocks chan *[]byte
	done   chan struct{}
	h      hash.Hash
}

const (
	asyncDepth = 4
	asyncBlock = 256 << 10
)

var asyncBlocks = sync.Pool{New: func() any { b := make([]byte, 0, asyncBlock); return &b }}

func newAsyncHasher() *asyncHasher {
	a := &asyncHasher{blocks: make(chan *[]byte, asyncDepth), done: make(chan struct{}), h: sha256.New()}
	go func() {
		defer close(a.done)
		for b := range a.blocks {
			a.h.Write(*b)
			asyncBlocks.Put(b)
		}
	}()
	return a
}

// Write queues a copy of p for hashing; it never fails.
func (a *asyncHasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		b := asyncBlocks.Get().(*[]byte)
		k := min(len(p), cap(*b))
		*b = append((*b)[:0], p[:k]...)
		a.blocks <- b
		p = p[k:]
	}
	return n, nil
}

// sum waits for everything written to be hashed and returns the hash. The
// hasher is finished afterwards: call sum (or stop) exactly once.
func (a *asyncHasher) sum() blob.ID {
	a.stop()
	var id blob.ID
	a.h.Sum(id[:0])
	return id
}

// stop ends the hashing goroutine and waits for it.
func (a *asyncHasher) stop() {
	close(a.blocks)
	<-a.done
}
