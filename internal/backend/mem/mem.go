package mem

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
)

// Operation names passed to the fault hook set with SetFault.
const (
	OpSave   = "save"
	OpLoad   = "load"
	OpStat   = "stat"
	OpList   = "list" // the hook sees Handle{Type: t} with an empty name
	OpRemove = "remove"

	OpReplaceConfig = "replace-config"
)

// Backend is an in-memory backend.Backend.
type Backend struct {
	now func() time.Time

	mu    sync.RWMutex
	files map[backend.Handle]file
	fault func(op string, h backend.Handle) error
}

type file struct {
	data    []byte // never mutated in place; Corrupt swaps in a new slice
	modTime time.Time
}

var _ backend.Backend = (*Backend)(nil)

// New returns an empty Backend whose ModTimes come from time.Now.
func New() *Backend { return NewWithClock(time.Now) }

// NewWithClock returns an empty Backend whose ModTimes come from now.
func NewWithClock(now func() time.Time) *Backend {
	return &Backend{now: now, files: make(map[backend.Handle]file)}
}

// SetFault installs a hook called at the start of every operation, after the
// handle has been validated. If it returns an error the operation fails with
// that error (wrapped) and changes nothing. op is one of the Op constants.
// A nil hook removes the fault.
func (b *Backend) SetFault(fn func(op string, h backend.Handle) error) {
	b.mu.Lock()
	b.fault = fn
	b.mu.Unlock()
}

// Corrupt replaces the bytes stored under h by fn(copy of the bytes), keeping
// the name and ModTime: a test's way to simulate storage damage. It fails
// with backend.ErrNotFound if h is not stored.
func (b *Backend) Corrupt(h backend.Handle, fn func([]byte) []byte) error {
	b.mu.RLock()
	f, ok := b.files[h]
	b.mu.RUnlock()
	if !ok {
		return fmt.Errorf("mem: corrupt %v: %w", h, backend.ErrNotFound)
	}
	damaged := bytes.Clone(fn(bytes.Clone(f.data)))
	if damaged == nil {
		damaged = []byte{}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.files[h]; !ok {
		return fmt.Errorf("mem: corrupt %v: %w", h, backend.ErrNotFound)
	}
	b.files[h] = file{data: damaged, modTime: f.modTime}
	return nil
}

// check validates h, then honours ctx and the fault hook.
func (b *Backend) check(ctx context.Context, op string, h backend.Handle) error {
	if err := backend.ValidName(h); err != nil {
		return fmt.Errorf("mem: %s %v: %w", op, h, err)
	}
	return b.checkCtxFault(ctx, op, h)
}

func (b *Backend) checkCtxFault(ctx context.Context, op string, h backend.Handle) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: %s %v: %w", op, h, err)
	}
	b.mu.RLock()
	fault := b.fault
	b.mu.RUnlock()
	if fault != nil {
		if err := fault(op, h); err != nil {
			return fmt.Errorf("mem: %s %v: %w", op, h, err)
		}
	}
	return nil
}

// Save implements backend.Backend.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd backend.RewindReader) error {
	return b.save(ctx, h, rd, false)
}

// ReplaceConfig replaces the config file, or creates it, as the local
// backend's ReplaceConfig does. The fault hook sees OpReplaceConfig.
func (b *Backend) ReplaceConfig(ctx context.Context, rd backend.RewindReader) error {
	return b.save(ctx, backend.Handle{Type: backend.Config, Name: "config"}, rd, true)
}

func (b *Backend) save(ctx context.Context, h backend.Handle, rd backend.RewindReader, replace bool) error {
	op := OpSave
	if replace {
		op = OpReplaceConfig
	}
	if err := b.check(ctx, op, h); err != nil {
		return err
	}
	want := rd.Length()
	if want < 0 {
		return fmt.Errorf("mem: %s %v: negative length %d", op, h, want)
	}
	// Read one byte more than promised so an over-long reader is caught.
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(rd, want+1))
	if err != nil {
		return fmt.Errorf("mem: %s %v: read: %w", op, h, err)
	}
	if n < want {
		return fmt.Errorf("mem: %s %v: reader gave %d bytes, length says %d: %w", op, h, n, want, io.ErrUnexpectedEOF)
	}
	if n > want {
		return fmt.Errorf("mem: %s %v: reader gave more than its length %d", op, h, want)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: %s %v: %w", op, h, err)
	}
	data := buf.Bytes() // buf is ours alone, so this is already a private copy
	if backend.ContentNamed(h.Type) {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != h.Name {
			return fmt.Errorf("mem: %s %v: bytes hash to %s: %w", op, h, got, backend.ErrHashMismatch)
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.files[h]; ok && !replace {
		return fmt.Errorf("mem: %s %v: %w", op, h, backend.ErrExists)
	}
	b.files[h] = file{data: data, modTime: b.now()}
	return nil
}

// Load implements backend.Backend.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := b.check(ctx, OpLoad, h); err != nil {
		return err
	}
	if length < 0 || offset < 0 {
		return fmt.Errorf("mem: load %v: invalid range length %d offset %d", h, length, offset)
	}
	b.mu.RLock()
	f, ok := b.files[h]
	b.mu.RUnlock()
	if !ok {
		return fmt.Errorf("mem: load %v: %w", h, backend.ErrNotFound)
	}
	size := int64(len(f.data))
	end := size
	if length > 0 {
		end = offset + int64(length)
	}
	if offset > size || end > size {
		return fmt.Errorf("mem: load %v: range %d+%d past size %d: %w", h, offset, length, size, io.ErrUnexpectedEOF)
	}
	// Hand out a copy so no reader (say, a WriteTo into a misbehaving
	// writer) can reach the stored slice.
	return fn(bytes.NewReader(bytes.Clone(f.data[offset:end])))
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := b.check(ctx, OpStat, h); err != nil {
		return backend.FileInfo{}, err
	}
	b.mu.RLock()
	f, ok := b.files[h]
	b.mu.RUnlock()
	if !ok {
		return backend.FileInfo{}, fmt.Errorf("mem: stat %v: %w", h, backend.ErrNotFound)
	}
	return backend.FileInfo{Handle: h, Size: int64(len(f.data)), ModTime: f.modTime}, nil
}

// List implements backend.Backend. fn sees a snapshot taken when List
// starts, so it may save or remove files.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if !backend.ValidType(t) {
		return fmt.Errorf("mem: list %q: %w: unknown type", t, backend.ErrInvalidName)
	}
	if err := b.checkCtxFault(ctx, OpList, backend.Handle{Type: t}); err != nil {
		return err
	}
	var infos []backend.FileInfo
	b.mu.RLock()
	for h, f := range b.files {
		if h.Type == t {
			infos = append(infos, backend.FileInfo{Handle: h, Size: int64(len(f.data)), ModTime: f.modTime})
		}
	}
	b.mu.RUnlock()
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("mem: list %s: %w", t, err)
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Remove implements backend.Backend.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := b.check(ctx, OpRemove, h); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.files[h]; !ok {
		return fmt.Errorf("mem: remove %v: %w", h, backend.ErrNotFound)
	}
	delete(b.files, h)
	return nil
}

// Properties implements backend.Backend.
func (b *Backend) Properties() backend.Properties {
	return backend.Properties{Connections: 8, Location: "mem"}
}

// Close implements backend.Backend; the stored files stay readable.
func (b *Backend) Close() error { return nil }

// ErrFault is a ready-made error for fault hooks to return.
var ErrFault = errors.New("injected fault")
