package restorer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/walker"
)

// newRepo makes a new repository in a local directory, which it returns
// with its backend.
func newRepo(t *testing.T) (*repository.Repository, backend.Backend, string) {
	t.Helper()
	ctx := context.Background()
	repoDir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(ctx, repoDir)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(ctx, be, []byte("pw"), repository.Options{CacheDir: t.TempDir(), KDF: &fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	return repo, be, repoDir
}

// backupDir backs src up into a new repository.
func backupDir(t *testing.T, src string) (*repository.Repository, *repository.Snapshot, string) {
	t.Helper()
	repo, _, repoDir := newRepo(t)
	res, err := archiver.Backup(context.Background(), repo, []string{src}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Partial() {
		t.Fatalf("backup warnings: %v", res.Warnings)
	}
	return repo, res.Snapshot, repoDir
}

func mustWrite(t *testing.T, p string, data []byte, mode os.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRestoreOverwrite restores a snapshot over a target that already
// holds an identical file with other metadata, a file of the same size
// with other content, a file newer than the snapshot's, a directory and a
// symlink where files belong, a file where a directory belongs, and
// temporary files of a killed restore, once per --overwrite policy.
func TestRestoreOverwrite(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	snapTime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	big := make([]byte, 3<<20)
	rand.Read(big)
	files := map[string][]byte{
		"same":      []byte("identical content"),
		"differs":   []byte("snapshot content!"),
		"newer":     []byte("snapshot version"),
		"isdir":     []byte("a file in the snapshot"),
		"islink":    []byte("a file, not a link"),
		"sub/x":     []byte("below a directory"),
		"big":       big,
		"untouched": []byte("nothing in the way"),
	}
	for name, data := range files {
		mustWrite(t, filepath.Join(src, name), data, 0o640, snapTime)
	}
	if err := os.Symlink("same", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	repo, snap, _ := backupDir(t, src)
	sub := src[1:]

	for _, mode := range []restorer.Overwrite{restorer.OverwriteIfChanged, restorer.OverwriteAlways, restorer.OverwriteIfNewer, restorer.OverwriteNever} {
		t.Run(mode.String(), func(t *testing.T) {
			target := t.TempDir()
			outside := filepath.Join(t.TempDir(), "outside")
			mustWrite(t, outside, []byte("not restore's to touch"), 0o600, snapTime)
			old := snapTime.Add(-time.Hour)
			mustWrite(t, filepath.Join(target, "same"), files["same"], 0o600, old)
			mustWrite(t, filepath.Join(target, "differs"), []byte("existing content!"), 0o640, old)
			mustWrite(t, filepath.Join(target, "newer"), []byte("a newer existing"), 0o640, snapTime.Add(time.Hour))
			mustWrite(t, filepath.Join(target, "isdir", "keep"), []byte("in a directory"), 0o640, old)
			mustWrite(t, filepath.Join(target, "sub"), []byte("a file where a directory belongs"), 0o640, old)
			// big has the right size and the wrong content in its last byte.
			wrong := bytes.Clone(big)
			wrong[len(wrong)-1] ^= 1
			mustWrite(t, filepath.Join(target, "big"), wrong, 0o640, old)
			if err := os.Symlink(outside, filepath.Join(target, "islink")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("same", filepath.Join(target, "link")); err != nil {
				t.Fatal(err)
			}
			leftover := filepath.Join(target, ".big.cairn-0badc0de-1f")
			mustWrite(t, leftover, []byte("half a file"), 0o600, old)
			notOurs := filepath.Join(target, ".big.cairn-notatemp")
			mustWrite(t, notOurs, []byte("a user's file"), 0o600, old)
			sameIno := inode(t, filepath.Join(target, "same"))

			res, err := restorer.Restore(ctx, repo, snap, sub, restorer.Options{Target: target, Overwrite: mode, Verify: true})
			if err != nil {
				t.Fatal(err)
			}
			warned := func(path, what string) bool {
				for _, w := range res.Warnings {
					if strings.HasPrefix(w, path+": ") && strings.Contains(w, what) {
						return true
					}
				}
				return false
			}
			got := func(name string) []byte { return readFile(t, filepath.Join(target, name)) }

			// Never written through a symlink, never a directory replaced.
			if !bytes.Equal(readFile(t, outside), []byte("not restore's to touch")) {
				t.Error("a write went through the symlink")
			}
			if fi, err := os.Lstat(filepath.Join(target, "isdir")); err != nil || !fi.IsDir() {
				t.Errorf("the directory in a file's place was replaced: %v", err)
			}
			if mode != restorer.OverwriteNever && !warned("isdir", "is a directory") {
				t.Errorf("no warning for the directory in a file's place: %q", res.Warnings)
			}
			if _, err := os.Stat(leftover); !os.IsNotExist(err) {
				t.Errorf("the temporary file of an earlier run is still there: %v", err)
			}
			if _, err := os.Stat(notOurs); err != nil {
				t.Errorf("a file that only looks like a temporary one was removed: %v", err)
			}
			if res.TempsRemoved != 1 {
				t.Errorf("removed %d temporary files, want 1", res.TempsRemoved)
			}
			if !bytes.Equal(got("untouched"), files["untouched"]) {
				t.Error("untouched: wrong content")
			}
			matches := func(name string) bool { return bytes.Equal(got(name), files[name]) }
			switch mode {
			case restorer.OverwriteNever:
				if matches("differs") || matches("newer") || matches("big") {
					t.Error("never overwrote an existing file")
				}
				if fi, _ := os.Lstat(filepath.Join(target, "islink")); fi.Mode()&os.ModeSymlink == 0 {
					t.Error("never replaced a symlink")
				}
				if fi, _ := os.Stat(filepath.Join(target, "same")); fi.Mode().Perm() != 0o600 {
					t.Error("never changed an existing file's metadata")
				}
				if !warned(filepath.Join("sub"), "not a directory") {
					t.Errorf("no warning for a file in a directory's place: %q", res.Warnings)
				}
				// --verify reports kept files that differ.
				if !warned("differs", "verify failed") || !warned("big", "verify failed") || warned("same", "") {
					t.Errorf("verify of kept files: %q", res.Warnings)
				}
				if res.Kept != 7 { // same, differs, newer, isdir, islink, link, big
					t.Errorf("kept %d, want 7", res.Kept)
				}
				return
			case restorer.OverwriteIfNewer:
				if matches("newer") {
					t.Error("if-newer replaced a newer file")
				}
				if !matches("differs") || !matches("big") || !matches("sub/x") {
					t.Error("if-newer kept an older file")
				}
				// The symlink was made now, after the snapshot's file.
				if fi, _ := os.Lstat(filepath.Join(target, "islink")); fi.Mode()&os.ModeSymlink == 0 {
					t.Error("if-newer replaced a newer symlink")
				}
			default:
				if !matches("newer") || !matches("differs") || !matches("big") {
					t.Errorf("%s kept a file that differs", mode)
				}
			}
			if mode != restorer.OverwriteIfNewer && (!matches("islink") || !matches("sub/x")) {
				t.Error("a symlink or a file in the way was not replaced")
			}
			fi, err := os.Stat(filepath.Join(target, "same"))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(snapTime) {
				t.Errorf("same: mode %v mtime %v, want the snapshot's", fi.Mode(), fi.ModTime())
			}
			reused := inode(t, filepath.Join(target, "same")) == sameIno
			if want := mode == restorer.OverwriteIfChanged; reused != want {
				t.Errorf("identical file reused in place: %v, want %v", reused, want)
			}
			if mode == restorer.OverwriteIfChanged && res.Unchanged != 2 { // same, link
				t.Errorf("%d unchanged, want 2", res.Unchanged)
			}
			if l, err := os.Readlink(filepath.Join(target, "link")); err != nil || l != "same" {
				t.Errorf("link: %q %v", l, err)
			}
			entries, _ := os.ReadDir(target)
			for _, e := range entries {
				if strings.Contains(e.Name(), ".cairn-") && e.Name() != filepath.Base(notOurs) {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

// TestRestoreLostBlob: a blob in the middle of a large file is damaged.
// The restore writes the rest of the file where it belongs, leaves the
// lost range as zeros, reports it and goes on with the other files.
func TestRestoreLostBlob(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	big := make([]byte, 12<<20)
	rand.Read(big)
	mustWrite(t, filepath.Join(src, "big"), big, 0o644, time.Now())
	mustWrite(t, filepath.Join(src, "small"), []byte("fine"), 0o644, time.Now())
	repo, snap, repoDir := backupDir(t, src)
	n, err := walker.FindNode(ctx, repo, snap.File.Statement.Root, src[1:]+"/big")
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Content) < 3 {
		t.Fatalf("%d blobs; the test needs at least 3", len(n.Content))
	}
	// Where each blob lies in the file.
	var offs []int
	off := 0
	for _, id := range n.Content {
		plain, err := repo.LoadBlob(ctx, blob.Data, id)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
		off += len(plain)
	}
	offs = append(offs, off)
	lost := len(n.Content) / 2
	damage(t, ctx, repo, repoDir, n.Content[lost])

	target := t.TempDir()
	res, err := restorer.Restore(ctx, repo, snap, src[1:], restorer.Options{Target: target, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0], "big: content lost") {
		t.Fatalf("warnings %q, want one content loss for big", res.Warnings)
	}
	want := bytes.Clone(big)
	clear(want[offs[lost]:offs[lost+1]])
	if got := readFile(t, filepath.Join(target, "big")); !bytes.Equal(got, want) {
		t.Error("big: the readable blobs are not where they belong")
	}
	if got := readFile(t, filepath.Join(target, "small")); string(got) != "fine" {
		t.Error("small was not restored")
	}
	if res.Files != 2 || res.Verified != 1 {
		t.Errorf("%d files, %d verified; want 2 and 1", res.Files, res.Verified)
	}
}

// damage flips a byte of blob id in its pack file.
func damage(t *testing.T, ctx context.Context, repo *repository.Repository, repoDir string, id blob.ID) {
	t.Helper()
	e, ok := repo.Locate(ctx, blob.Data, id)
	if !ok {
		t.Fatal("blob not in the index")
	}
	name := e.Pack.String()
	p := filepath.Join(repoDir, "data", name[:2], name)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	at := int64(e.Offset) + int64(e.Length)/2
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreIfChangedSparse: a sparse file is compared with the snapshot
// in its data and in its holes: an existing file with the same data but a
// byte where the snapshot has a hole is rewritten; an identical one is not.
func TestRestoreIfChangedSparse(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	mk := func(p string, extra bool) {
		t.Helper()
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(8 << 20); err != nil {
			t.Fatal(err)
		}
		for _, at := range []int64{1 << 20, 6 << 20} {
			if _, err := f.WriteAt(bytes.Repeat([]byte("data"), 1024), at); err != nil {
				t.Fatal(err)
			}
		}
		if extra {
			if _, err := f.WriteAt([]byte{1}, 3<<20); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(filepath.Join(src, "holes"), false)
	mk(filepath.Join(src, "same"), false)
	repo, snap, _ := backupDir(t, src)
	n, err := walker.FindNode(ctx, repo, snap.File.Statement.Root, src[1:]+"/holes")
	if err != nil {
		t.Fatal(err)
	}
	if n.Extents == nil {
		t.Skip("the file system of the test directory does not report holes")
	}
	target := t.TempDir()
	mk(filepath.Join(target, "holes"), true)
	mk(filepath.Join(target, "same"), false)
	res, err := restorer.Restore(ctx, repo, snap, src[1:], restorer.Options{Target: target})
	if err != nil || len(res.Warnings) > 0 {
		t.Fatalf("%v %q", err, res.Warnings)
	}
	if res.Files != 1 || res.Unchanged != 1 {
		t.Errorf("%d files written, %d unchanged; want 1 and 1", res.Files, res.Unchanged)
	}
	if !bytes.Equal(readFile(t, filepath.Join(target, "holes")), readFile(t, filepath.Join(src, "holes"))) {
		t.Error("holes: content differs")
	}
}

// TestRestoreIfChangedLinkedElsewhere: an identical file that has another
// name outside the target is not reused (setting its metadata would change
// the outside name's too): the restore replaces only the name below the
// target.
func TestRestoreIfChangedLinkedElsewhere(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	mtime := time.Date(2022, 1, 2, 3, 4, 5, 0, time.UTC)
	mustWrite(t, filepath.Join(src, "f"), []byte("same content"), 0o644, mtime)
	repo, snap, _ := backupDir(t, src)
	base := t.TempDir()
	target, outside := filepath.Join(base, "target"), filepath.Join(base, "outside")
	mustWrite(t, outside, []byte("same content"), 0o600, mtime.Add(time.Hour))
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(outside, filepath.Join(target, "f")); err != nil {
		t.Fatal(err)
	}
	res, err := restorer.Restore(ctx, repo, snap, src[1:], restorer.Options{Target: target})
	if err != nil || len(res.Warnings) > 0 {
		t.Fatalf("%v %q", err, res.Warnings)
	}
	if res.Files != 1 || res.Unchanged != 0 {
		t.Errorf("%d written, %d unchanged; want 1 and 0", res.Files, res.Unchanged)
	}
	fi, err := os.Stat(outside)
	if err != nil || fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(mtime.Add(time.Hour)) {
		t.Errorf("the outside name's metadata changed: %v %v", fi.Mode(), err)
	}
	if inode(t, outside) == inode(t, filepath.Join(target, "f")) {
		t.Error("the restored name is still linked outside the target")
	}
}

// TestRestoreNewDirs restores below a target that exists in part: the
// directories the restore makes skip looking at what is there (newDirs),
// the existing ones still get an earlier run's temporary files removed and
// their files weighed and replaced; and into a target that did not exist.
func TestRestoreNewDirs(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	snapTime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	files := map[string][]byte{
		"a/f":     []byte("in a new directory"),
		"a/d/e":   []byte("deeper in a new directory"),
		"b/c/g":   []byte("the snapshot's g"),
		"b/new/h": []byte("a new directory in an existing one"),
		"top":     []byte("at the top"),
	}
	for name, data := range files {
		mustWrite(t, filepath.Join(src, name), data, 0o640, snapTime)
	}
	repo, snap, _ := backupDir(t, src)
	sub := src[1:]

	target := t.TempDir()
	old := snapTime.Add(-time.Hour)
	mustWrite(t, filepath.Join(target, "b", "c", "g"), []byte("an older g"), 0o640, old)
	leftover := filepath.Join(target, "b", "c", ".g.cairn-0badc0de-1f")
	mustWrite(t, leftover, []byte("half a file"), 0o600, old)
	fresh := filepath.Join(t.TempDir(), "not", "yet")
	for _, dir := range []string{target, fresh} {
		res, err := restorer.Restore(ctx, repo, snap, sub, restorer.Options{Target: dir})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Warnings) > 0 {
			t.Errorf("%s: warnings %q", dir, res.Warnings)
		}
		for name, data := range files {
			if got := readFile(t, filepath.Join(dir, name)); !bytes.Equal(got, data) {
				t.Errorf("%s: %s is %q, want %q", dir, name, got, data)
			}
		}
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("the temporary file of an earlier run in an existing directory is still there: %v", err)
	}
}
