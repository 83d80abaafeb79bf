package server

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

	"github.com/dustin/go-humanize"
	"golang.org/x/sync/semaphore"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// tmpDir is where uploads are spooled, beside repos/.
const tmpDir = "tmp"

// prepareSpool empties and creates the data directory's tmp/.
func prepareSpool(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, tmpDir)
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("clean spool directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create spool directory: %w", err)
	}
	return dir, nil
}

// upload is a request body spooled to disk: what validation and the
// backend read instead of the body.
type upload struct {
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

// newUpload spools exactly size bytes of rd to an unlinked file in dir,
// hashing them. The file is never visible to anything else.
func newUpload(ctx context.Context, dir string, rd io.Reader, size int64, mem *semaphore.Weighted, memMax int64) (*upload, error) {
	f, err := os.CreateTemp(dir, "upload-")
	if err != nil {
		return nil, fmt.Errorf("spool upload: %w", err)
	}
	os.Remove(f.Name())
	hash := sha256.New()
	buf := make([]byte, 64<<10)
	n, err := io.CopyBuffer(io.MultiWriter(f, hash), io.LimitReader(rd, size), buf)
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &upload{f: f, size: size, name: hex.EncodeToString(hash.Sum(nil)), ctx: ctx, mem: mem, max: memMax}, nil
}

// newMemUpload is an upload of bytes already in memory (tests).
func newMemUpload(b []byte) *upload {
	return &upload{size: int64(len(b)), name: backend.NameOf(b), body: b, ctx: context.Background()}
}

// Size is the upload's length in bytes.
func (u *upload) Size() int64 { return u.size }

// Name is the hex SHA-256 of the upload, what a content-named file must be
// called.
func (u *upload) Name() string { return u.name }

// ReadAt reads from the spooled upload.
func (u *upload) ReadAt(p []byte, off int64) (int, error) {
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

// charge takes n bytes of the server's memory budget for this upload,
// waiting for other uploads to give some back; it fails if n could never
// fit.
func (u *upload) charge(n int64) error {
	if u.mem == nil || n == 0 {
		return nil
	}
	if n > u.max {
		return refusef(http.StatusRequestEntityTooLarge, restapi.CodeTooLarge,
			"validating this upload needs %s of memory, more than the server's budget of %s", humanize.IBytes(uint64(n)), humanize.IBytes(uint64(u.max)))
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
func (u *upload) ReadRange(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off+n > u.size {
		return nil, fmt.Errorf("read %d bytes at %d of a %d-byte upload", n, off, u.size)
	}
	if err := u.charge(n); err != nil {
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
func (u *upload) Bytes(max int64) ([]byte, error) {
	u.mu.Lock()
	body := u.body
	u.mu.Unlock()
	if body != nil {
		return body, nil
	}
	if u.size > max {
		return nil, refusef(http.StatusRequestEntityTooLarge, restapi.CodeTooLarge,
			"this file is %s, larger than the server takes for its type (%s)", humanize.IBytes(uint64(u.size)), humanize.IBytes(uint64(max)))
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
func (u *upload) Reader() backend.RewindReader {
	return &uploadReader{SectionReader: io.NewSectionReader(u, 0, u.size)}
}

type uploadReader struct{ *io.SectionReader }

func (r *uploadReader) Length() int64 { return r.Size() }
func (r *uploadReader) Rewind() error {
	_, err := r.Seek(0, io.SeekStart)
	return err
}

// Close gives back the memory the upload holds and its spool file.
func (u *upload) Close() {
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

// maxInMemory is the largest upload of type t validation reads whole into
// memory, 0 for types it never does (packs: only their header is read).
func (s *Server) maxInMemory(t backend.FileType) int64 {
	switch t {
	case backend.Data, backend.Locks:
		return 0
	}
	return s.opts.MaxMetaUpload
}

// spool reads the request's body to an upload; on failure it has answered
// the request.
func (s *Server) spool(q *request, size int64) (*upload, bool) {
	u, err := newUpload(q.r.Context(), s.spoolDir, q.r.Body, size, s.uploadMem, s.opts.MaxUploadMemory)
	switch {
	case err == nil:
		return u, true
	case errors.Is(err, errSlowBody):
		q.w.Header().Set("Connection", "close")
		q.refuse(http.StatusRequestTimeout, codeSlowBody, "read upload: %v (at least %s/s after %v, and no pause longer than %v)",
			err, humanize.IBytes(uint64(s.opts.BodyMinRate)), s.opts.BodyGrace, s.opts.BodyIdle)
	default:
		q.refuse(http.StatusBadRequest, restapi.CodeBadRequest, "read upload: %v", err)
	}
	return nil, false
}
