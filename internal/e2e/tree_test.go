//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// makeTree fills root with every kind of file cairn must round-trip. It
// returns whether user xattrs are supported here.
func makeTree(t *testing.T, root string) (xattrs bool) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(root, "private"), 0o700))
	must(os.Mkdir(filepath.Join(root, "public"), 0o755))
	must(os.WriteFile(filepath.Join(root, "public", "hello.txt"), []byte("hello, world\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "private", "empty"), nil, 0o600))
	writeRandom(t, filepath.Join(root, "public", "large.bin"), 12<<20)
	must(os.Symlink("hello.txt", filepath.Join(root, "public", "link")))
	must(os.Symlink("/nonexistent/target", filepath.Join(root, "dangling")))
	must(os.WriteFile(filepath.Join(root, "hard1"), []byte("linked content\n"), 0o640))
	must(os.Link(filepath.Join(root, "hard1"), filepath.Join(root, "private", "hard2")))
	must(syscall.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	must(os.WriteFile(filepath.Join(root, "bad-\xff\xfe-name"), []byte("not utf-8\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "exec.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))

	// Sparse: 64 MiB with two 4 KiB data runs.
	sp, err := os.Create(filepath.Join(root, "sparse"))
	must(err)
	must(sp.Truncate(64 << 20))
	_, err = sp.WriteAt(bytes.Repeat([]byte("S"), 4096), 1<<20)
	must(err)
	_, err = sp.WriteAt(bytes.Repeat([]byte("E"), 4096), 64<<20-4096)
	must(err)
	must(sp.Close())

	xattrs = true
	err = syscall.Setxattr(filepath.Join(root, "public", "hello.txt"), "user.x", []byte("value-x"), 0)
	if errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EPERM) {
		xattrs = false
		t.Logf("user xattrs not supported on this file system: %v", err)
	} else {
		must(err)
	}

	// mtimes last, deepest first, so creating children does not move them.
	old := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 || d.IsDir() {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	must(err)
	for _, d := range []string{"private", "public", "."} {
		must(os.Chtimes(filepath.Join(root, d), old.Add(time.Hour), old.Add(time.Hour)))
	}
	return xattrs
}

// compareTrees checks restored against src attribute for attribute.
func compareTrees(t *testing.T, src, restored string, xattrs bool) {
	t.Helper()
	inodes := map[uint64]string{} // source inode → restored inode's first path
	restoredIno := map[uint64]uint64{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(restored, rel)
		a, err := os.Lstat(p)
		if err != nil {
			return err
		}
		b, err := os.Lstat(q)
		if err != nil {
			t.Errorf("%s: not restored: %v", rel, err)
			return nil
		}
		if a.Mode() != b.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, b.Mode(), a.Mode())
		}
		if a.Mode()&fs.ModeSymlink == 0 && !a.ModTime().Equal(b.ModTime()) {
			t.Errorf("%s: mtime %v, want %v", rel, b.ModTime(), a.ModTime())
		}
		sa, sb := a.Sys().(*syscall.Stat_t), b.Sys().(*syscall.Stat_t)
		switch {
		case a.Mode().IsRegular():
			if a.Size() != b.Size() {
				t.Errorf("%s: size %d, want %d", rel, b.Size(), a.Size())
			} else if fileHash(t, p) != fileHash(t, q) {
				t.Errorf("%s: content differs", rel)
			}
			if sa.Nlink > 1 {
				if want, ok := restoredIno[sa.Ino]; ok && want != sb.Ino {
					t.Errorf("%s: not a hard link of %s", rel, inodes[sa.Ino])
				}
				restoredIno[sa.Ino], inodes[sa.Ino] = sb.Ino, rel
			}
			if sa.Blocks*512 < a.Size()/2 && sb.Blocks > sa.Blocks*4+64 {
				t.Errorf("%s: sparse file restored dense: %d blocks, source %d", rel, sb.Blocks, sa.Blocks)
			}
		case a.Mode()&fs.ModeSymlink != 0:
			la, _ := os.Readlink(p)
			lb, _ := os.Readlink(q)
			if la != lb {
				t.Errorf("%s: link target %q, want %q", rel, lb, la)
			}
		}
		if xattrs && a.Mode()&fs.ModeSymlink == 0 && a.Mode()&fs.ModeNamedPipe == 0 {
			if va, vb := getxattr(p), getxattr(q); !bytes.Equal(va, vb) {
				t.Errorf("%s: xattr user.x %q, want %q", rel, vb, va)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(restoredIno) == 0 {
		t.Error("no hard link was compared")
	}
}

func getxattr(p string) []byte {
	buf := make([]byte, 256)
	n, err := syscall.Getxattr(p, "user.x", buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}
