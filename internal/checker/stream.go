package checker

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// verifyPack reads pack id (size bytes by its listing) as one stream from
// the backend, hashing every byte with SHA-256 as it arrives, and opens the
// blobs of entries that canOpen as they pass by; it holds one blob in
// memory at a time, never the pack. The hash is computed here, from the
// bytes, never taken from the storage: an S3 ETag of a multipart upload is
// not a SHA-256 of the object. It reports problems and returns whether the
// pack verified; a pack whose stream was cut by ctx does not.
func (c *checker) verifyPack(ctx context.Context, id blob.ID, size int64, entries []index.Entry, canOpen func(blob.Type) bool) bool {
	h := backend.Handle{Type: backend.Data, Name: id.String()}
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b index.Entry) int { return cmp.Compare(a.Offset, b.Offset) })
	// A pack listed by two fragments (a resumed session, an interrupted
	// rewrite) has each blob twice; the same blob at the same place is no
	// overlap (docs/format.md §19: duplicate entries are harmless).
	entries = slices.CompactFunc(entries, func(a, b index.Entry) bool {
		return a.Offset == b.Offset && a.Length == b.Length && a.ID == b.ID && a.Type == b.Type
	})
	ok := true
	blobProblem := func(e index.Entry, msg string) {
		ok = false
		// A blob that does not open or re-hash in a pack whose bytes are
		// intact was stored false (a hostile upload under the blob's ID,
		// R23) or damaged before the pack was written: the pack is bad,
		// and `cairn repair` drops it, which leaves the good copies.
		c.mu.Lock()
		c.badPacks[id] = true
		c.mu.Unlock()
		c.problem(Problem{File: h.String(), Blob: fmt.Sprintf("%s %s", e.Type, e.ID.Short()),
			Snapshots: c.snapsOfBlob(snapshot.Ref{Type: e.Type, ID: e.ID}), Message: msg})
	}
	sum := sha256.New()
	var read int64
	err := c.be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		src := &countReader{r: io.TeeReader(rd, sum), n: &read}
		var buf []byte
		var pos int64
		for _, e := range entries {
			if !canOpen(e.Type) {
				continue
			}
			off, n := int64(e.Offset), int64(e.Length)
			if off+n > size {
				blobProblem(e, "blob lies beyond the end of the pack")
				continue
			}
			if off < pos {
				blobProblem(e, "blob overlaps the one before it in the pack")
				continue
			}
			if _, err := io.CopyN(io.Discard, src, off-pos); err != nil {
				return err
			}
			if int64(cap(buf)) < n {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			if _, err := io.ReadFull(src, buf); err != nil {
				return err
			}
			pos = off + n
			if _, err := c.repo.OpenBlob(e, buf); err != nil {
				msg := err.Error()
				if errors.Is(err, crypto.ErrDecrypt) {
					msg = "blob does not decrypt (corrupted or forged)"
				}
				blobProblem(e, msg)
			}
		}
		_, err := io.Copy(io.Discard, src)
		return err
	})
	c.mu.Lock()
	c.rep.BytesRead += uint64(read)
	c.mu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		c.packProblem(id, fmt.Sprintf("cannot be read: %v", err))
		return false
	}
	if got := sum.Sum(nil); [32]byte(got) != id {
		c.packProblem(id, fmt.Sprintf("pack content (%s of %s) hashes to %x, not its name (corrupted)", humanSize(read), humanSize(size), got[:6]))
	}
	return ok
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n *int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}
