package fsmeta

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFileSystemKinds(t *testing.T) {
	for _, tc := range []struct {
		path string
		kind FSKind
		name string
	}{{"/proc", FSVirtual, "proc"}, {"/sys", FSVirtual, "sysfs"}, {"/proc/self", FSVirtual, "proc"}} {
		kind, name, err := FileSystem(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if kind != tc.kind || name != tc.name {
			t.Errorf("FileSystem(%s) = %v %q, want %v %q", tc.path, kind, name, tc.kind, tc.name)
		}
	}
	dir := t.TempDir()
	if kind, name, err := FileSystem(dir); err != nil || kind != FSLocal {
		t.Errorf("FileSystem(TempDir) = %v %q %v, want local", kind, name, err)
	}
}

func TestSkipDir(t *testing.T) {
	c := NewCapturer(CaptureOptions{})
	proc := lstat(t, c, "/proc")
	root := lstat(t, c, "/")
	if proc.Device == root.Device {
		t.Skip("/proc is on the root device here")
	}
	for _, tc := range []struct {
		opts FilterOptions
		want string
	}{
		{FilterOptions{}, "proc file system"},
		{FilterOptions{OneFileSystem: true}, "other file system"},
		{FilterOptions{IncludeVirtual: true}, ""},
	} {
		f, err := NewFilter(tc.opts, []string{"/"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.SkipDir("/proc", proc)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got, tc.want) || (tc.want == "" && got != "") {
			t.Errorf("%+v: SkipDir(/proc) = %q, want %q...", tc.opts, got, tc.want)
		}
		// The root file system itself is always descended.
		if got, err := f.SkipDir("/", root); err != nil || got != "" {
			t.Errorf("%+v: SkipDir(/) = %q, %v", tc.opts, got, err)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	line := `36 35 98:0 /mnt1 /mnt/with\040space rw,noatime master:1 - fuse.sshfs u@h:/ rw,errors=continue`
	mp, fstype, ok := parseMountinfo(line)
	if !ok || mp != "/mnt/with space" || fstype != "fuse.sshfs" {
		t.Errorf("parseMountinfo = %q %q %v", mp, fstype, ok)
	}
	if _, _, ok := parseMountinfo("garbage"); ok {
		t.Error("garbage parsed")
	}
	if got := unescapeOctal(`a\134b\011`); got != "a\\b\t" {
		t.Errorf("unescapeOctal = %q", got)
	}
	if !pathHasPrefix("/mnt/x/y", "/mnt/x") || pathHasPrefix("/mnt/xy", "/mnt/x") || !pathHasPrefix("/a", "/") {
		t.Error("pathHasPrefix")
	}
}

type walked struct {
	path, skip string
}

func walkAll(t *testing.T, roots []string, opts FilterOptions, base string) []walked {
	t.Helper()
	f, err := NewFilter(opts, roots)
	if err != nil {
		t.Fatal(err)
	}
	var out []walked
	err = Walk(context.Background(), roots, NewCapturer(CaptureOptions{}), f, func(e Entry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, walked{rel(t, base, e.Path), e.Skip})
		if e.Node.Name == "stop" {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWalkOrderAndExcludes(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"b", "a", "a/cache", "stop", "B"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a/z.o", "a/y", "a/cache/x", "b/\xff", "b/a", "stop/hidden", "B/k.log", "B/keep.log"} {
		mustWrite(t, filepath.Join(dir, f), "", 0o644)
	}
	got := walkAll(t, []string{dir}, FilterOptions{Excludes: []string{"*.o", "cache/", "*.log", "!keep.log"}}, dir)
	want := []walked{{".", ""}, {"B", ""}, {"B/keep.log", ""}, {"a", ""}, {"a/y", ""}, {"b", ""}, {"b/a", ""}, {"b/\xff", ""}, {"stop", ""}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("walk = %q\nwant   %q", got, want)
	}
}

// TestWalkOneFileSystem mounts a tmpfs inside the tree; it needs
// CAP_SYS_ADMIN.
func TestWalkOneFileSystem(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "f"), "", 0o644)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	mustWrite(t, filepath.Join(mnt, "inner"), "", 0o644)

	got := walkAll(t, []string{dir}, FilterOptions{OneFileSystem: true, IncludeVirtual: true}, dir)
	if len(got) != 3 || got[2].path != "mnt" || !strings.HasPrefix(got[2].skip, "other file system") {
		t.Errorf("one file system: %q", got)
	}
	got = walkAll(t, []string{dir}, FilterOptions{}, dir)
	if len(got) != 3 || got[2].skip != "tmpfs file system" {
		t.Errorf("default: %q", got)
	}
	got = walkAll(t, []string{dir}, FilterOptions{IncludeVirtual: true}, dir)
	if len(got) != 4 || got[3].path != "mnt/inner" {
		t.Errorf("include virtual: %q", got)
	}
}

func TestWalkReportsErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	var seen error
	err := Walk(context.Background(), []string{missing}, NewCapturer(CaptureOptions{}), nil, func(e Entry, err error) error {
		seen = err
		return nil
	})
	if err != nil || !errors.Is(seen, fs.ErrNotExist) {
		t.Errorf("Walk = %v, callback saw %v", err, seen)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Walk(ctx, []string{"/"}, NewCapturer(CaptureOptions{}), nil, func(Entry, error) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Walk = %v", err)
	}
}
