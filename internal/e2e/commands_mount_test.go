//go:build linux

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fuseAvailable skips the test, saying why, when this machine cannot
// mount FUSE file systems.
func fuseAvailable(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("FUSE is not available here (%v); mount is not tested", err)
	}
	f.Close()
	if _, err := exec.LookPath("fusermount"); err != nil {
		if _, err3 := exec.LookPath("fusermount3"); err3 != nil {
			t.Skipf("no fusermount on PATH (%v); mount is not tested", err)
		}
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// TestMountCommand: the FUSE view lists snapshots by time, host, tag and
// ID, serves content byte for byte with the snapshot's sizes, modes,
// times, symlinks and xattrs, and unmounts on SIGINT with exit 0.
func TestMountCommand(t *testing.T) {
	fuseAvailable(t)
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	writeRandom(t, filepath.Join(src, "sub", "big"), 5<<20+12345)
	os.WriteFile(filepath.Join(src, "small"), []byte("small file\n"), 0o640)
	mtime := time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "small"), mtime, mtime)
	os.Symlink("sub/big", filepath.Join(src, "link"))
	xattr := unix.Setxattr(filepath.Join(src, "small"), "user.cairn", []byte("xattr value"), 0) == nil
	e.ok("init")
	e.ok("backup", src, "--host", "h1", "--tag", "t1")
	e.ok("backup", src, "--host", "h2")
	snaps := e.snapshots()

	mnt := filepath.Join(e.dir, "mnt")
	os.MkdirAll(mnt, 0o755)
	cmd := e.command(nil, "mount", "--json", mnt)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // nothing if it has exited
		<-exited
	})
	waitFor(t, 30*time.Second, "mount", func() bool {
		select {
		case <-exited:
			t.Fatalf("mount exited: %v\n%s%s", waitErr, out.String(), errb.String())
		default:
		}
		_, err := os.Stat(filepath.Join(mnt, "snapshots"))
		return err == nil
	})

	if got := names(t, mnt); !slices.Equal(got, []string{"hosts", "ids", "snapshots", "tags"}) {
		t.Errorf("root: %v", got)
	}
	if got := names(t, filepath.Join(mnt, "hosts")); !slices.Equal(got, []string{"h1", "h2"}) {
		t.Errorf("hosts: %v", got)
	}
	if got := names(t, filepath.Join(mnt, "tags")); !slices.Equal(got, []string{"t1"}) {
		t.Errorf("tags: %v", got)
	}
	if got := names(t, filepath.Join(mnt, "tags", "t1")); len(got) != 2 || !slices.Contains(got, "latest") {
		t.Errorf("tags/t1: %v", got)
	}
	ids := names(t, filepath.Join(mnt, "ids"))
	if len(ids) != 2 || !slices.Contains(ids, snaps[0].ShortID) || !slices.Contains(ids, snaps[1].ShortID) {
		t.Errorf("ids: %v, snapshots %s %s", ids, snaps[0].ShortID, snaps[1].ShortID)
	}
	if got := names(t, filepath.Join(mnt, "snapshots")); len(got) != 3 || got[2] != "latest" {
		t.Errorf("snapshots: %v", got)
	}
	latest, err := os.Readlink(filepath.Join(mnt, "snapshots", "latest"))
	if err != nil || latest != names(t, filepath.Join(mnt, "snapshots"))[1] {
		t.Errorf("snapshots/latest -> %q (%v)", latest, err)
	}

	for _, root := range []string{filepath.Join(mnt, "snapshots", "latest"), filepath.Join(mnt, "ids", snaps[0].ShortID), filepath.Join(mnt, "hosts", "h1", "latest")} {
		in := filepath.Join(root, src)
		for _, f := range []string{"sub/big", "small"} {
			if fileHash(t, filepath.Join(in, f)) != fileHash(t, filepath.Join(src, f)) {
				t.Errorf("%s: content differs through the mount", filepath.Join(in, f))
			}
		}
		// A read in the middle, past chunks not read yet.
		fd, err := os.Open(filepath.Join(in, "sub", "big"))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1000)
		n, _ := fd.ReadAt(buf, 5<<20)
		fd.Close()
		whole, _ := os.ReadFile(filepath.Join(src, "sub", "big"))
		if !bytes.Equal(buf[:n], whole[5<<20:5<<20+n]) || n != 1000 {
			t.Errorf("ReadAt through the mount differs (%d bytes)", n)
		}
		var st, want unix.Stat_t
		unix.Lstat(filepath.Join(in, "small"), &st)
		unix.Lstat(filepath.Join(src, "small"), &want)
		if st.Size != want.Size || st.Mode != want.Mode || st.Mtim != want.Mtim || st.Uid != want.Uid {
			t.Errorf("stat through the mount: size %d mode %o mtime %v uid %d; want %d %o %v %d", st.Size, st.Mode, st.Mtim, st.Uid, want.Size, want.Mode, want.Mtim, want.Uid)
		}
		if l, err := os.Readlink(filepath.Join(in, "link")); err != nil || l != "sub/big" {
			t.Errorf("readlink: %q %v", l, err)
		}
		if xattr {
			buf := make([]byte, 64)
			n, err := unix.Getxattr(filepath.Join(in, "small"), "user.cairn", buf)
			if err != nil || string(buf[:n]) != "xattr value" {
				t.Errorf("xattr through the mount: %q %v", buf[:n], err)
			}
		}
		if err := os.WriteFile(filepath.Join(in, "small"), []byte("x"), 0o644); err == nil {
			t.Errorf("a write through the read-only mount succeeded")
		}
	}

	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("mount after SIGINT: %v\n%s%s", waitErr, out.String(), errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mount did not exit within 30s of SIGINT")
	}
	if got := names(t, mnt); len(got) != 0 {
		t.Errorf("still mounted after SIGINT: %v", got)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"message_type":"mounted"`) || !strings.Contains(lines[1], `"message_type":"unmounted"`) {
		t.Errorf("mount --json output: %q", out.String())
	}
}
