package restorer

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/fsmeta"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// errVerify is a restored file whose content does not match the content
// identity recorded at backup (snapshot.ContentDigest).
var errVerify = errors.New("restored content does not match the content recorded at backup (verify failed)")

var readBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// contentMatches reports whether the file open as f (at least n.Size
// bytes long) holds exactly n's content: its logical content (the data of
// n's extents, in order, for a sparse file) matches n's content identity
// (snapshot.ContentDigest: its one blob's keyed ID, or its content hash),
// and for a sparse file every byte outside the extents is zero. Holes are
// skipped with SEEK_DATA rather than read.
func (r *restore) contentMatches(f *fsmeta.File, n *snapshot.Node) (bool, error) {
	d, err := snapshot.NewContentDigest(n, r.repo.Keys().Dedup)
	if err != nil {
		return false, err
	}
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	hash := func(off, length int64) error {
		_, err := io.CopyBuffer(d, io.NewSectionReader(f, off, length), buf)
		return err
	}
	size := int64(n.Size)
	if n.Extents == nil {
		if err := hash(0, size); err != nil {
			return false, err
		}
		return d.Matches(), nil
	}
	var end int64
	for _, e := range n.Extents {
		if ok, err := zeros(f, buf, end, e.Offset); err != nil || !ok {
			return false, err
		}
		if err := hash(e.Offset, e.Length); err != nil {
			return false, err
		}
		end = e.Offset + e.Length
	}
	if ok, err := zeros(f, buf, end, size); err != nil || !ok {
		return false, err
	}
	return d.Matches(), nil
}

// zeros reports whether f holds only zeros in [off, end), reading only its
// data (SEEK_DATA/SEEK_HOLE), or all of it where the file system cannot
// say.
func zeros(f *fsmeta.File, buf []byte, off, end int64) (bool, error) {
	for off < end {
		data, err := unix.Seek(f.Fd(), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return true, nil // only a hole up to the end of the file
		}
		hole := end
		if err == nil {
			if data >= end {
				return true, nil
			}
			off = data
			if h, err := unix.Seek(f.Fd(), data, unix.SEEK_HOLE); err == nil {
				hole = min(h, end)
			}
		}
		for off < hole {
			k := min(int64(len(buf)), hole-off)
			if _, err := f.ReadAt(buf[:k], off); err != nil {
				return false, err
			}
			if !allZero(buf[:k]) {
				return false, nil
			}
			off += k
		}
	}
	return true, nil
}

// contentWriter writes a file's logical content, blob after blob: for a
// dense file at the same offsets, for a sparse one into its extents. A
// dense file is created at its full size, so a blob of zeros is not
// written at all: the range stays a hole.
type contentWriter struct {
	f      *fsmeta.File
	ext    []snapshot.Extent
	pos    int64 // logical position
	extIdx int
	extOff int64
}

// logicalSize is the length of n's logical content.
func logicalSize(n *snapshot.Node) int64 {
	if n.Extents == nil {
		return int64(n.Size)
	}
	var s int64
	for _, e := range n.Extents {
		s += e.Length
	}
	return s
}

// seek moves the writer to logical position pos.
func (w *contentWriter) seek(pos int64) {
	w.pos = pos
	w.extIdx, w.extOff = 0, pos
	for w.extIdx < len(w.ext) && w.extOff >= w.ext[w.extIdx].Length {
		w.extOff -= w.ext[w.extIdx].Length
		w.extIdx++
	}
}

func (w *contentWriter) write(plain []byte) error {
	if w.ext == nil {
		if !allZero(plain) {
			if _, err := w.f.WriteAt(plain, w.pos); err != nil {
				return err
			}
		}
		w.pos += int64(len(plain))
		return nil
	}
	for len(plain) > 0 {
		if w.extIdx >= len(w.ext) {
			return errors.New("content longer than its extents")
		}
		e := w.ext[w.extIdx]
		k := min(int64(len(plain)), e.Length-w.extOff)
		if _, err := w.f.WriteAt(plain[:k], e.Offset+w.extOff); err != nil {
			return err
		}
		plain = plain[k:]
		w.pos += k
		w.extOff += k
		if w.extOff == e.Length {
			w.extIdx++
			w.extOff = 0
		}
	}
	return nil
}

// blobLoss is a blob of a file's content that could not be read.
type blobLoss struct {
	id  blob.ID
	err error
}

// lossError describes the content of a file restore could not read: the
// logical range [from, to) was left as zeros.
type lossError struct {
	from, to int64
	blobs    []blobLoss
}

func (e *lossError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "content lost: %d bytes from offset %d are zeros (", e.to-e.from, e.from)
	for i, l := range e.blobs {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "blob %s: %v", l.id.Short(), l.err)
	}
	b.WriteString(")")
	return b.String()
}
