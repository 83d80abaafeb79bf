package repohttp

// Uploads are never buffered whole in memory (R26). A body streams to a
// spool file in the data directory's tmp/ (unlinked at once, so nothing
// is left behind by a crash; tmp/ is emptied at start all the same) while
// it is SHA-256 hashed; validation reads only what it needs from the spool
// (a pack's trailer and header, or a small file whole, under a per-type
// cap checked against the declared length first); the backend's Save is
// then fed from the spool file. Whatever validation holds in memory is
// charged to a server-wide budget (Options.MaxUploadMemory), so many
// uploads at once wait for memory instead of exhausting it.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/cairnbackup/cairn/internal/units"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// tmpDir is where uploads are spooled, beside repos/.

const tmpDir = "tmp"

// PrepareSpool empties and creates the data directory's tmp/.
func PrepareSpool(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, tmpDir)
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("clean spool directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create spool directory: %w", err)
	}
	return dir, nil
}

// Upload is a request body spooled to disk: what validation and the
// backend read instead of the body.
type Upload struct {
	f    *os.File
	size int64
	name string // hex SHA-256 of the bytes

	ctx context.Context
	mem *semaphore.Weighted
	max int64 // the budget's size

	mu   sync.Mutex
	held int64  // bytes of the budget this upload holds
	body []byte // the whole upload, once read by Bytes
}

// ErrTooLong is a body without a declared length that ran past the most
// the server takes for it.
var ErrTooLong = errors.New("the upload is longer than the server takes")

// NewUpload spools rd to an unlinked file in dir, hashing it: exactly size
// bytes, or, with size < 0 (a body sent chunked, without Content-Length),
// everything up to its end, failing with ErrTooLong past limit bytes. A
// body that ends early, or whose read fails, is an *InterruptedError. The
// file is never visible to anything else.
func NewUpload(ctx context.Context, dir string, rd io.Reader, size, limit int64, mem *semaphore.Weighted, memMax int64) (*Upload, error) {
	f, err := os.CreateTemp(dir, "upload-")
	if err != nil {
		return nil, fmt.Errorf("spool upload: %w", err)
	}
	os.Remove(f.Name())
	hash := sha256.New()
	buf := make([]byte, 64<<10)
	want := size
	if size < 0 {
		want = limit + 1
	}
	body := &bodyReader{rd: io.LimitReader(rd, want)}
	n, err := io.CopyBuffer(io.MultiWriter(f, hash), body, buf)
	switch {
	case err != nil && body.err == nil:
		err = fmt.Errorf("spool upload: %w", err) // the server's own disk
	case errors.Is(err, ErrSlowBody):
	case err != nil:
		err = &InterruptedError{Got: n, Size: size, Err: err}
	case size >= 0 && n < size:
		err = &InterruptedError{Got: n, Size: size, Err: io.ErrUnexpectedEOF}
	case size < 0 && n > limit:
		err = fmt.Errorf("%w: more than %s", ErrTooLong, units.FormatSize(uint64(limit)))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Upload{f: f, size: n, name: hex.EncodeToString(hash.Sum(nil)), ctx: ctx, mem: mem, max: memMax}, nil
}

// bodyReader keeps the error of reading the body, to tell it from one of
// writing the spool.
type bodyReader struct {
	rd  io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.rd.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// InterruptedError is a body that ended before it was complete: the
// client disconnected, or sent less than it declared.
type InterruptedError struct {
	Got, Size int64 // Size < 0: not declared
	Err       error
}

func (e *InterruptedError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("upload interrupted after %d bytes: %v", e.Got, e.Err)
	}
	return fmt.Sprintf("upload interrupted after %d of %d bytes: %v", e.Got, e.Size, e.Err)
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// MemUpload is an upload of bytes already in memory.
func MemUpload(b []byte) *Upload {
	return &Upload{size: int64(len(b)), name: backend.NameOf(b), body: b, ctx: context.Background()}
}

// Size is the upload's length in bytes.
func (u *Upload) Size() int64 { return u.size }

// Name is the hex SHA-256 of the upload, what a content-named file must be
// called.
func (u *Upload) Name() string { return u.name }

// ReadAt reads from the spooled upload.
func (u *Upload) ReadAt(p []byte, off int64) (int, error) {
	if u.f == nil {
		if off >= int64(len(u.body)) {
			return 0, io.EOF
		}
		n := copy(p, u.body[off:])
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	return u.f.ReadAt(p, off)
}

// Charge takes n bytes of the server's memory budget for this upload,
// waiting for other uploads to give some back; it fails if n could never
// fit.
func (u *Upload) Charge(n int64) error {
	if u.mem == nil || n == 0 {
		return nil
	}
	if n > u.max {
		return Refusef(http.StatusRequestEntityTooLarge, restapi.CodeTooLarge,
			"validating this upload needs %s of memory, more than the server's budget of %s", units.FormatSize(uint64(n)), units.FormatSize(uint64(u.max)))
	}
	if err := u.mem.Acquire(u.ctx, n); err != nil {
		return err
	}
	u.mu.Lock()
	u.held += n
	u.mu.Unlock()
	return nil
}

// ReadRange reads n bytes at off into memory, charged to the budget until
// the upload is closed.
func (u *Upload) ReadRange(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off+n > u.size {
		return nil, fmt.Errorf("read %d bytes at %d of a %d-byte upload", n, off, u.size)
	}
	if err := u.Charge(n); err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := u.ReadAt(buf, off); err != nil && !(err == io.EOF && n == 0) {
		return nil, fmt.Errorf("read spooled upload: %w", err)
	}
	return buf, nil
}

// Bytes returns the whole upload in memory if it is at most max bytes
// (413 beyond), charged to the budget until the upload is closed. Later
// calls return the same slice.
func (u *Upload) Bytes(max int64) ([]byte, error) {
	u.mu.Lock()
	body := u.body
	u.mu.Unlock()
	if body != nil {
		return body, nil
	}
	if u.size > max {
		return nil, Refusef(http.StatusRequestEntityTooLarge, restapi.CodeTooLarge,
			"this file is %s, larger than the server takes for its type (%s)", units.FormatSize(uint64(u.size)), units.FormatSize(uint64(max)))
	}
	b, err := u.ReadRange(0, u.size)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	u.body = b
	u.mu.Unlock()
	return b, nil
}

// Reader is the upload from its first byte, for a backend's Save.
func (u *Upload) Reader() backend.RewindReader {
	return &uploadReader{SectionReader: io.NewSectionReader(u, 0, u.size)}
}

type uploadReader struct{ *io.SectionReader }

func (r *uploadReader) Length() int64 { return r.Size() }
func (r *uploadReader) Rewind() error {
	_, err := r.Seek(0, io.SeekStart)
	return err
}

// Close gives back the memory the upload holds and its spool file.
func (u *Upload) Close() {
	u.mu.Lock()
	held := u.held
	u.held, u.body = 0, nil
	u.mu.Unlock()
	if held > 0 {
		u.mem.Release(held)
	}
	if u.f != nil {
		u.f.Close()
	}
}

// Spool is where uploads are spooled and the memory budget their
// validation shares.
type Spool struct {
	Dir    string // from PrepareSpool
	Mem    *semaphore.Weighted
	MemMax int64
	Rate   BodyRate // for the message when a body is too slow
}

// Receive reads the request's body to an upload: size bytes, or with
// size < 0 (no Content-Length) up to limit bytes. On failure it has
// answered the request: a body that arrives too slowly gets 408, one past
// limit 413, and one the client cut short (it disconnected, or sent
// less than it declared) 400, logged as the client's doing, not the
// server's failure.
func (sp *Spool) Receive(q *Request, size, limit int64) (*Upload, bool) {
	u, err := NewUpload(q.R.Context(), sp.Dir, q.R.Body, size, limit, sp.Mem, sp.MemMax)
	switch {
	case err == nil:
		return u, true
	case errors.Is(err, ErrSlowBody):
		q.W.Header().Set("Connection", "close")
		q.Refuse(http.StatusRequestTimeout, CodeSlowBody, "read upload: %v (at least %s/s after %v, and no pause longer than %v)",
			err, units.FormatSize(uint64(sp.Rate.MinRate)), sp.Rate.Grace, sp.Rate.Idle)
	case errors.Is(err, ErrTooLong):
		q.W.Header().Set("Connection", "close")
		q.Refuse(http.StatusRequestEntityTooLarge, restapi.CodeTooLarge, "read upload: %v", err)
	case errors.As(err, new(*InterruptedError)):
		// The client's doing: a 4xx, logged as a refusal, not an error.
		q.W.Header().Set("Connection", "close")
		q.Refuse(http.StatusBadRequest, restapi.CodeBadRequest, "%v", err)
	default:
		q.Fail("receive upload", err)
	}
	return nil, false
}
