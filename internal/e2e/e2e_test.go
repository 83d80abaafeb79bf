//go:build linux

package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRoundTrip: init, backup every kind of file, restore, compare, check.
func TestRoundTrip(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	target := filepath.Join(e.dir, "restore")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	xattrs := makeTree(t, src)

	out := e.ok("init").stdout
	if !strings.Contains(out, "created cairn repository") || !strings.Contains(out, filepath.Join(e.repo, "keys")) {
		t.Errorf("init output %q: want the repository ID and where the key is", out)
	}
	out = e.ok("backup", src, "--tag", "e2e").stdout
	for _, want := range []string{"Files:", "Dirs:", "Added:", "Took:", "saved"} {
		if !strings.Contains(out, want) {
			t.Errorf("backup summary %q lacks %q", out, want)
		}
	}
	snaps := e.snapshots()
	if len(snaps) != 1 || snaps[0].Paths[0] != src || snaps[0].Tags[0] != "e2e" || snaps[0].Seq != 1 {
		t.Fatalf("snapshots --json: %+v", snaps)
	}
	if _, err := time.Parse(time.RFC3339, snaps[0].Time); err != nil {
		t.Errorf("time %q is not RFC 3339", snaps[0].Time)
	}

	e.ok("restore", "latest", "--target", target, "--verify")
	compareTrees(t, src, filepath.Join(target, src), xattrs)

	// A shortened ID works wherever an ID does.
	got := e.ok("dump", snaps[0].ID[:6], filepath.Join(src, "public", "large.bin")).stdout
	if want, _ := os.ReadFile(filepath.Join(src, "public", "large.bin")); !bytes.Equal([]byte(got), want) {
		t.Errorf("dump: %d bytes differ from the %d-byte source", len(got), len(want))
	}
	r := e.run("dump", "latest", filepath.Join(src, "public"))
	expectExit(t, r, 1, "not a file")

	ls := e.ok("ls", "--long", "latest", src).stdout
	if !strings.Contains(ls, "hello.txt") || !strings.Contains(ls, "link -> hello.txt") {
		t.Errorf("ls --long: %s", ls)
	}
	if f := e.ok("find", "*.bin").stdout; !strings.Contains(f, "large.bin") {
		t.Errorf("find: %q", f)
	}
	e.ok("stats")

	out = e.ok("check", "--read-data").stdout
	if !strings.Contains(out, "no problems found") {
		t.Errorf("check: %s", out)
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	writeRandom(t, filepath.Join(src, "f"), 1000)

	r := e.run("snapshots")
	expectExit(t, r, 10, "no repository")

	e.ok("init")
	e.ok("backup", src)
	before := listing(t, e.repo)
	wrong := filepath.Join(e.dir, "wrong")
	os.WriteFile(wrong, []byte("wrong\n"), 0o600)
	for _, args := range [][]string{{"backup", src}, {"snapshots"}, {"key", "add", "--role", "writer"}} {
		r = e.runWith(map[string]string{"CAIRN_PASSWORD_FILE": wrong}, args...)
		expectExit(t, r, 12, "wrong password")
	}
	if after := listing(t, e.repo); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("a wrong password changed the repository:\nbefore %v\nafter %v", before, after)
	}

	// restic's s3:host/bucket form lacks the scheme: say what to write.
	r = e.run("-r", "s3:bucket/x", "snapshots")
	expectExit(t, r, 1, `s3 location "s3:bucket/x" has no server address: write s3:https://HOST[:PORT]/bucket/x`)
	r = e.run("restore", "ffffffff", "--target", filepath.Join(e.dir, "t"))
	expectExit(t, r, 1, "no snapshot ffffffff")
}

func TestSecondBackupAddsNoData(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	for _, n := range []string{"a", "b", "c"} {
		writeRandom(t, filepath.Join(src, n), 3<<20)
	}
	e.ok("init")
	type summary struct {
		FilesNew, FilesChanged, FilesUnmodified uint64
		BlobsNew, BytesAdded, BytesRead         uint64
	}
	parse := func(out string) summary {
		var m map[string]any
		lastJSON(t, out, &m)
		if m["message_type"] != "summary" {
			t.Fatalf("last line is not the summary: %v", m)
		}
		n := func(k string) uint64 { return uint64(m[k].(float64)) }
		return summary{n("files_new"), n("files_changed"), n("files_unmodified"), n("blobs_new"), n("bytes_added"), n("bytes_read")}
	}
	first := parse(e.ok("backup", "--json", src).stdout)
	if first.FilesNew != 3 || first.BlobsNew == 0 {
		t.Fatalf("first backup: %+v", first)
	}
	packs := func() int {
		n := 0
		filepath.Walk(filepath.Join(e.repo, "data"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				n++
			}
			return nil
		})
		return n
	}
	before := packs()
	second := parse(e.ok("backup", "--json", src).stdout)
	// No file is read or stored again. Trees of the source's ancestors
	// (whose mtimes other processes move, e.g. /tmp) may be new: at most
	// one small pack of trees and one of the manifest pages naming them
	// (trees have packs of their own, docs/format.md §10).
	// (bytes_read is not checked: the archiver counts unchanged files'
	// sizes in it; see the report.)
	if second.FilesNew != 0 || second.FilesChanged != 0 || second.FilesUnmodified != 3 || second.BlobsNew > 8 {
		t.Errorf("second backup re-read files: %+v", second)
	}
	if second.BytesAdded > 64<<10 || packs() > before+2 {
		t.Errorf("second backup stored %d bytes, %d new packs", second.BytesAdded, packs()-before)
	}
	s := e.snapshots()
	if len(s) != 2 {
		t.Fatalf("%d snapshots", len(s))
	}
	if s[0].Tree == s[1].Tree {
		t.Log("identical root trees")
	}
}

func TestStdinFromCommand(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	e.ok("backup", "--stdin-from-command", "--stdin-filename", "hi.txt", "--", "sh", "-c", "echo hi")
	if got := e.ok("dump", "latest", "/hi.txt").stdout; got != "hi\n" {
		t.Errorf("dump of the command's output: %q", got)
	}
	r := e.run("backup", "--stdin-from-command", "--", "sh", "-c", "echo partial; exit 3")
	expectExit(t, r, 1, "exit status 3")
	if n := len(e.snapshots()); n != 1 {
		t.Errorf("a failed command made a snapshot: %d snapshots", n)
	}
}

func TestWriterKey(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	writeRandom(t, filepath.Join(src, "f"), 100000)
	e.ok("init")
	wpw := filepath.Join(e.dir, "writer-password")
	os.WriteFile(wpw, []byte("writer secret\n"), 0o600)
	key := filepath.Join(e.dir, "w.key")
	e.ok("key", "add", "--role", "writer", "--export", key, "--new-password-file", wpw)
	if _, err := os.Stat(key); err != nil {
		t.Fatal(err)
	}
	keys, _ := os.ReadDir(filepath.Join(e.repo, "keys"))
	if len(keys) != 1 {
		t.Errorf("an exported writer key left %d key files in keys/", len(keys))
	}
	// The writer is another machine: its own cache.
	w := map[string]string{"CAIRN_PASSWORD_FILE": wpw, "XDG_CACHE_HOME": filepath.Join(e.dir, "writer-cache")}
	r := e.runWith(w, "--key-file", key, "backup", src)
	if r.code != 0 {
		t.Fatalf("writer backup: exit %d: %s", r.code, r.stderr)
	}
	r = e.runWith(w, "--key-file", key, "snapshots")
	if r.code != 0 || !strings.Contains(r.stdout, "sealed") {
		t.Errorf("writer snapshots: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	r = e.runWith(w, "--key-file", key, "restore", "latest", "--target", filepath.Join(e.dir, "t"))
	expectExit(t, r, 11, "restoring needs the owner key; this is a writer key")
	r = e.runWith(w, "--key-file", key, "ls", "latest")
	expectExit(t, r, 11, "owner key")
	r = e.runWith(w, "--key-file", key, "backup", src)
	if r.code != 0 {
		t.Fatalf("second writer backup: exit %d: %s", r.code, r.stderr)
	}
	// The owner sees and restores the writer's snapshots.
	if n := len(e.snapshots()); n != 2 {
		t.Errorf("owner sees %d snapshots, want 2", n)
	}
	target := filepath.Join(e.dir, "owner-restore")
	e.ok("restore", "latest", "--target", target)
	if fileHash(t, filepath.Join(src, "f")) != fileHash(t, filepath.Join(target, src, "f")) {
		t.Error("owner restore of a writer snapshot differs")
	}
	e.ok("check", "--read-data")
}
