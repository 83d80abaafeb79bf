package local

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
)

// failingReader delivers n bytes of data, then fails with err.
type failingReader struct {
	*backend.ByteReader
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, r.err
	}
	if len(p) > r.n {
		p = p[:r.n]
	}
	n, err := r.ByteReader.Read(p)
	r.n -= n
	return n, err
}

// failingWriter accepts n bytes, then fails like a file on a full disk.
type failingWriter struct {
	w   io.Writer
	n   int
	err error
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n, _ := f.w.Write(p[:f.n])
		f.n = 0
		return n, &fs.PathError{Op: "write", Path: "/repo/data/ab/.tmp-1", Err: f.err}
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func checkNothingVisible(t *testing.T, be *Backend, h backend.Handle) {
	t.Helper()
	if _, err := be.Stat(ctx, h); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("stat %v after failed save: got %v, want ErrNotFound", h, err)
	}
	if tmps := tempFiles(t, be.dir); len(tmps) > 0 {
		t.Fatalf("temporary files left: %q", tmps)
	}
	if _, err := os.Lstat(be.path(h)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s exists after failed save: %v", be.path(h), err)
	}
}

func TestCrashMidWrite(t *testing.T) {
	be := newTestBackend(t)
	data := bytes.Repeat([]byte("pack bytes "), 100_000)
	for _, typ := range []backend.FileType{backend.Data, backend.Config} {
		h := backend.Handle{Type: typ, Name: backend.NameOf(data)}
		if typ == backend.Config {
			h.Name = "config"
		}
		broken := errors.New("connection reset")
		rd := &failingReader{ByteReader: backend.NewByteReader(data), n: len(data) / 2, err: broken}
		err := be.Save(ctx, h, rd)
		if !errors.Is(err, broken) {
			t.Fatalf("save %v: got %v, want the reader's error", h, err)
		}
		checkNothingVisible(t, be, h)
	}
}

func TestDiskFull(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		want  error
	}{
		{syscall.ENOSPC, backend.ErrNoSpace},
		{syscall.EDQUOT, backend.ErrNoSpace},
		{syscall.EACCES, backend.ErrPermission},
		{syscall.EROFS, backend.ErrPermission},
	} {
		t.Run(c.errno.Error(), func(t *testing.T) {
			be := newTestBackend(t)
			be.sys.wrapWriter = func(w io.Writer) io.Writer { return &failingWriter{w: w, n: 200_000, err: c.errno} }
			data := bytes.Repeat([]byte{7}, 1<<20)
			h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}
			err := be.Save(ctx, h, backend.NewByteReader(data))
			if !errors.Is(err, c.want) || !errors.Is(err, c.errno) {
				t.Fatalf("save: got %v, want %v wrapping %v", err, c.want, c.errno)
			}
			if !strings.Contains(err.Error(), "/repo/data/ab/.tmp-1") || !strings.Contains(err.Error(), h.String()) {
				t.Errorf("error %q does not name the path and the handle", err)
			}
			checkNothingVisible(t, be, h)
		})
	}
}

// TestReaderErrorNotMapped: the source running out of space is not the
// repository running out of space.
func TestReaderErrorNotMapped(t *testing.T) {
	be := newTestBackend(t)
	data := []byte("some bytes")
	h := backend.Handle{Type: backend.Index, Name: backend.NameOf(data)}
	srcErr := fmt.Errorf("read spool: %w", syscall.ENOSPC)
	err := be.Save(ctx, h, &failingReader{ByteReader: backend.NewByteReader(data), n: 3, err: srcErr})
	if !errors.Is(err, srcErr) || errors.Is(err, backend.ErrNoSpace) {
		t.Fatalf("save: got %v, want the reader's error, not ErrNoSpace", err)
	}
	checkNothingVisible(t, be, h)
}

// TestFilesOnDisk checks the layout: every file is where its type and name
// say, named by the sha256sum of its bytes, and read-only.
func TestFilesOnDisk(t *testing.T) {
	be := newTestBackend(t)
	want := map[string]bool{}
	for i, typ := range backend.AllTypes {
		data := []byte(fmt.Sprintf("file %d of type %s", i, typ))
		h := saveBytes(t, be, typ, data)
		rel := string(typ) + "/" + h.Name
		switch typ {
		case backend.Config:
			rel = "config"
		case backend.Data:
			rel = "data/" + h.Name[:2] + "/" + h.Name
		}
		want[rel] = true
	}
	err := filepath.WalkDir(be.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(be.dir, path)
		if !want[rel] {
			t.Errorf("unexpected file %s", rel)
		}
		delete(want, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != 0o444 {
			t.Errorf("%s has mode %v, want 0444", rel, info.Mode().Perm())
		}
		buf, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(buf)
		if rel != "config" && hex.EncodeToString(sum[:]) != d.Name() {
			t.Errorf("%s holds bytes with sha256 %x", rel, sum)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel := range want {
		t.Errorf("%s missing", rel)
	}
}

func TestReplaceConfig(t *testing.T) {
	be := newTestBackend(t)
	h := backend.Handle{Type: backend.Config, Name: "config"}
	v1 := bytes.Repeat([]byte("1"), 100_000)
	v2 := bytes.Repeat([]byte("2"), 150_000)
	saveBytes(t, be, backend.Config, v1)
	if err := be.Save(ctx, h, backend.NewByteReader(v2)); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("save over config: got %v, want ErrExists", err)
	}
	checkConfig(t, be, v1)

	broken := errors.New("broken")
	if err := be.ReplaceConfig(ctx, &failingReader{ByteReader: backend.NewByteReader(v2), n: 1000, err: broken}); !errors.Is(err, broken) {
		t.Fatalf("replace through failing reader: got %v", err)
	}
	short := &lyingReader{ByteReader: backend.NewByteReader(v2[:10]), length: int64(len(v2))}
	if err := be.ReplaceConfig(ctx, short); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("replace through short reader: got %v, want io.ErrUnexpectedEOF", err)
	}
	checkConfig(t, be, v1)

	// Readers racing with replacements see one whole version, never a mix
	// or nothing.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := backend.LoadAll(ctx, be, h)
			if err != nil || !bytes.Equal(got, v1) && !bytes.Equal(got, v2) {
				t.Errorf("load during replace: %d bytes, %v", len(got), err)
				return
			}
		}
	})
	for i := range 20 {
		v := v1
		if i%2 == 0 {
			v = v2
		}
		if err := be.ReplaceConfig(ctx, backend.NewByteReader(v)); err != nil {
			t.Error(err)
			break
		}
	}
	close(stop)
	wg.Wait()
	checkConfig(t, be, v1)
}

type lyingReader struct {
	*backend.ByteReader
	length int64
}

func (r *lyingReader) Length() int64 { return r.length }

func checkConfig(t *testing.T, be *Backend, want []byte) {
	t.Helper()
	got, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("config: %d bytes %.10q, %v; want %d bytes %.10q", len(got), got, err, len(want), want)
	}
	if tmps := tempFiles(t, be.dir); len(tmps) > 0 {
		t.Fatalf("temporary files left: %q", tmps)
	}
}

// TestNoHardLinks is a filesystem with neither RENAME_NOREPLACE nor hard
// links: content-named files are still saved write-once, config refused.
func TestNoHardLinks(t *testing.T) {
	be := newTestBackend(t)
	be.sys.renameNoReplace = func(o, n string) error { return &os.LinkError{Op: "renameat2", Old: o, New: n, Err: syscall.EINVAL} }
	be.sys.link = func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.EPERM} }
	data := []byte("pack")
	h := saveBytes(t, be, backend.Data, data)
	if err := be.Save(ctx, h, backend.NewByteReader(data)); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("second save: got %v, want ErrExists", err)
	}
	got, err := backend.LoadAll(ctx, be, h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load: %q, %v", got, err)
	}
	cfg := backend.Handle{Type: backend.Config, Name: "config"}
	err = be.Save(ctx, cfg, backend.NewByteReader([]byte("config")))
	if err == nil || !strings.Contains(err.Error(), "config cannot be saved write-once") {
		t.Fatalf("save config: got %v", err)
	}
	checkNothingVisible(t, be, cfg)
	// ReplaceConfig needs only rename, which every filesystem has.
	if err := be.ReplaceConfig(ctx, backend.NewByteReader([]byte("config"))); err != nil {
		t.Fatalf("replace config: %v", err)
	}
}

// TestMoveErrors: a failing move is mapped and leaves no temporary file.
func TestMoveErrors(t *testing.T) {
	be := newTestBackend(t)
	be.sys.renameNoReplace = func(o, n string) error { return &os.LinkError{Op: "renameat2", Old: o, New: n, Err: syscall.EACCES} }
	data := []byte("pack")
	h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}
	if err := be.Save(ctx, h, backend.NewByteReader(data)); !errors.Is(err, backend.ErrPermission) {
		t.Fatalf("save: got %v, want ErrPermission", err)
	}
	checkNothingVisible(t, be, h)

	be.sys.renameNoReplace = func(o, n string) error { return &os.LinkError{Op: "renameat2", Old: o, New: n, Err: syscall.ENOSYS} }
	be.sys.link = func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.ENOSPC} }
	if err := be.Save(ctx, h, backend.NewByteReader(data)); !errors.Is(err, backend.ErrNoSpace) {
		t.Fatalf("save: got %v, want ErrNoSpace", err)
	}
	checkNothingVisible(t, be, h)
}

// TestExistingUntouched: a writer that loses a race sees ErrExists from the
// no-replace move itself, on both paths, and the winner's file stays as it is.
func TestExistingUntouched(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("link fallback %v", fallback), func(t *testing.T) {
			be := newTestBackend(t)
			if fallback {
				be.sys.renameNoReplace = func(string, string) error { return syscall.ENOSYS }
			}
			data := []byte("pack")
			h := backend.Handle{Type: backend.Data, Name: backend.NameOf(data)}
			winner := []byte("the winner's bytes")
			// The winner's file appears after the early existence check.
			be.sys.wrapWriter = func(w io.Writer) io.Writer {
				if err := os.WriteFile(be.path(h), winner, 0o444); err != nil {
					t.Fatal(err)
				}
				return w
			}
			if err := be.Save(ctx, h, backend.NewByteReader(data)); !errors.Is(err, backend.ErrExists) {
				t.Fatalf("save: got %v, want ErrExists", err)
			}
			if got, err := os.ReadFile(be.path(h)); err != nil || !bytes.Equal(got, winner) {
				t.Fatalf("existing file now holds %q, %v", got, err)
			}
			if tmps := tempFiles(t, be.dir); len(tmps) > 0 {
				t.Fatalf("temporary files left: %q", tmps)
			}
		})
	}
}
