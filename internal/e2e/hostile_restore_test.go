//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// The hostile-writer suite for restore (issue 11): a compromised machine
// holds a writer key and commits trees of its own making; the owner's
// restore, ls, find, diff, stats and check meet them with the real
// binary.

// writerRepo is a local repository with an owner (the binary) and the
// path and password of an exported writer key.
type writerRepo struct {
	*env
	key string
	pw  []byte
}

func newWriterRepo(t *testing.T) *writerRepo {
	t.Helper()
	e := newEnv(t)
	e.ok("init")
	w := &writerRepo{env: e, key: filepath.Join(e.dir, "writer.key"), pw: []byte("writer secret")}
	pw := filepath.Join(e.dir, "writer.pass")
	if err := os.WriteFile(pw, append(w.pw, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("key", "add", "--role", "writer", "--export", w.key, "--new-password-file", pw)
	return w
}

// another enrols a second writer on w's repository, labelled label.
func (w *writerRepo) another(t *testing.T, label string) *writerRepo {
	t.Helper()
	o := &writerRepo{env: w.env, key: filepath.Join(w.dir, label+".key"), pw: []byte(label + " secret")}
	pw := filepath.Join(w.dir, label+".pass")
	if err := os.WriteFile(pw, append(o.pw, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	w.ok("key", "add", "--role", "writer", "--export", o.key, "--new-password-file", pw, "--label", label)
	return o
}

// open opens the repository with the writer's key.
func (w *writerRepo) open(t *testing.T) *repository.Repository {
	t.Helper()
	ctx := context.Background()
	be, err := location.Open(ctx, w.repo, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	repo, err := repository.OpenKeyFile(ctx, be, w.key, w.pw, repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// craft commits, as the writer, a snapshot whose root tree build makes
// from the session; it returns the snapshot's ID.
func (w *writerRepo) craft(t *testing.T, owner snapshot.OwnerHeader, build func(save func(blob.Type, []byte) blob.ID) blob.ID) string {
	t.Helper()
	ctx := context.Background()
	repo := w.open(t)
	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var refs []snapshot.Ref
	save := func(typ blob.Type, plain []byte) blob.ID {
		id, _, err := s.SaveBlob(ctx, typ, plain)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, snapshot.Ref{Type: typ, ID: id})
		return id
	}
	root := build(save)
	owner.Paths, owner.Hostname, owner.Time = []string{"/"}, "writer-host", time.Now()
	snap, err := s.Commit(ctx, repository.CommitInput{Root: root, Refs: snapshot.SortRefs(refs),
		Meta: snapshot.MetaHeader{HostLabel: repo.HostLabel("")}, Owner: owner, Time: time.Now()})
	if err != nil {
		t.Fatalf("the writer's commit: %v", err)
	}
	return snap.ID.String()
}

func tree(t *testing.T, nodes ...snapshot.Node) []byte {
	t.Helper()
	b, err := (&snapshot.Tree{Nodes: nodes}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dirNode(name string, sub blob.ID) snapshot.Node {
	return snapshot.Node{Name: name, Type: snapshot.TypeDir, Mode: 0o755, Subtree: &sub, MTime: time.Unix(1_700_000_000, 0)}
}

func fileNode(name string, mode uint32, content []byte, id blob.ID) snapshot.Node {
	return snapshot.Node{Name: name, Type: snapshot.TypeFile, Mode: mode, Size: uint64(len(content)),
		Content: []blob.ID{id}, MTime: time.Unix(1_700_000_000, 0)}
}

// TestHostileRestoreDAGBomb (issue 11 item 3): 41 trees, each level two
// entries naming the same subtree, expand to 2^40 files. Every command
// that walks a snapshot refuses it before walking, restore creates
// nothing, and check reports it.
func TestHostileRestoreDAGBomb(t *testing.T) {
	w := newWriterRepo(t)
	src := filepath.Join(w.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "f"), 1000)
	w.ok("backup", src)
	good := w.snapshots()[0].ID
	bomb := w.craft(t, snapshot.OwnerHeader{}, func(save func(blob.Type, []byte) blob.ID) blob.ID {
		id := save(blob.Tree, tree(t, snapshot.Node{Name: "f", Type: snapshot.TypeFile, Mode: 0o644}))
		for range 40 {
			id = save(blob.Tree, tree(t, dirNode("a", id), dirNode("b", id)))
		}
		return id
	})
	target := filepath.Join(w.dir, "target")
	for _, args := range [][]string{
		{"restore", bomb, "--target", target},
		{"ls", bomb},
		{"ls", "--long", bomb, "/a/a"},
		{"find", "--snapshot", bomb, "*"},
		{"diff", good, bomb},
		{"stats", bomb},
	} {
		r := w.run(args...)
		expectExit(t, r, 1, "expands too far")
		if !strings.Contains(r.stderr, "is refused") || r.stdout != "" {
			t.Errorf("cairn %s: stdout %q, stderr %q: want only the refusal", strings.Join(args, " "), r.stdout, r.stderr)
		}
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("the refused restore created its target (%v)", err)
	}
	r := w.run("check")
	if r.code != 1 || !strings.Contains(r.stderr, "refused by restore, ls and find") || !strings.Contains(r.stderr, bomb[:8]) {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The owner's own snapshot is untouched by the refusal.
	w.ok("restore", good, "--target", target)
}

// TestHostileRestoreSummaryMismatch: a snapshot whose trees hold more
// files than its signed summary declares is refused too.
func TestHostileRestoreSummaryMismatch(t *testing.T) {
	w := newWriterRepo(t)
	snap := w.craft(t, snapshot.OwnerHeader{Summary: snapshot.Summary{FilesNew: 1, DirsNew: 1}}, func(save func(blob.Type, []byte) blob.ID) blob.ID {
		leaf := save(blob.Tree, tree(t, snapshot.Node{Name: "f", Type: snapshot.TypeFile, Mode: 0o644}))
		return save(blob.Tree, tree(t, dirNode("a", leaf), dirNode("b", leaf)))
	})
	expectExit(t, w.run("ls", snap), 1, "more than the 1 files in 1 directories its signed summary declares")
}

// privileged builds a writer's snapshot of privileged objects: a
// setuid-root shell, a file with cap_setuid, a block device 8,0 mode 0666,
// a FIFO and a file with an xattr no kernel accepts (an unknown
// namespace), all in /x.
func privileged(t *testing.T, w *writerRepo) string {
	capability := []byte{0x01, 0x00, 0x00, 0x02, 0x80, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	return w.craft(t, snapshot.OwnerHeader{}, func(save func(blob.Type, []byte) blob.ID) blob.ID {
		sh := []byte("#!/bin/sh\necho root\n")
		id := save(blob.Data, sh)
		shell := fileNode("sh", 0o4755, sh, id)
		capped := fileNode("cap", 0o755, sh, id)
		capped.Xattrs = []snapshot.Xattr{{Name: "security.capability", Value: capability}}
		odd := fileNode("odd", 0o644, sh, id)
		odd.Xattrs = []snapshot.Xattr{{Name: "bogus.attr", Value: []byte("v")}}
		dev := snapshot.Node{Name: "sda", Type: snapshot.TypeBlkDev, Mode: 0o666, Rdev: unix.Mkdev(8, 0)}
		fifo := snapshot.Node{Name: "fifo", Type: snapshot.TypeFIFO, Mode: 0o666}
		x := save(blob.Tree, tree(t, capped, fifo, odd, dev, shell))
		return save(blob.Tree, tree(t, dirNode("x", x)))
	})
}

// TestHostileRestorePrivilegedObjects (issue 11 items 2 and 6): without
// the flags, root recreates the writer's privileged objects but is told
// whose snapshot it is; with them, none is recreated. An xattr the kernel
// refuses is a warning and exit 3, never silent.
func TestHostileRestorePrivilegedObjects(t *testing.T) {
	w := newWriterRepo(t)
	snap := privileged(t, w)
	root := os.Geteuid() == 0

	plain := filepath.Join(w.dir, "plain")
	r := w.run("restore", snap, "--target", plain)
	expectExit(t, r, 3, `xattr "bogus.attr" not restored`)
	if got := strings.Contains(r.stderr, "signed by writer"); got != root {
		t.Errorf("root=%v, writer warning shown=%v:\n%s", root, got, r.stderr)
	}
	if root {
		for _, flag := range []string{"--no-setid", "--no-special-files", "--no-xattrs", "--no-owner"} {
			if !strings.Contains(r.stderr, flag) {
				t.Errorf("the writer warning does not name %s:\n%s", flag, r.stderr)
			}
		}
		if st := lstatT(t, filepath.Join(plain, "x/sh")); st.Mode&unix.S_ISUID == 0 || st.Uid != 0 {
			t.Errorf("without flags the stored setuid-root file is mode %#o uid %d", st.Mode&0o7777, st.Uid)
		}
		if st := lstatT(t, filepath.Join(plain, "x/sda")); st.Mode&unix.S_IFMT != unix.S_IFBLK {
			t.Errorf("without flags the device is not restored: mode %#o", st.Mode)
		}
	}

	safe := filepath.Join(w.dir, "safe")
	r = w.run("restore", snap, "--target", safe, "--no-setid", "--no-special-files", "--no-xattrs", "--no-owner")
	if r.code != 0 || strings.Contains(r.stderr, "signed by writer") || strings.Contains(r.stderr, "warning") {
		t.Fatalf("restore with every flag: exit %d\n%s", r.code, r.stderr)
	}
	for _, n := range []string{"sda", "fifo"} {
		if _, err := os.Lstat(filepath.Join(safe, "x", n)); !os.IsNotExist(err) {
			t.Errorf("--no-special-files restored x/%s (%v)", n, err)
		}
		if !strings.Contains(r.stderr, "x/"+n+": ") {
			t.Errorf("the skipped x/%s is not noted:\n%s", n, r.stderr)
		}
	}
	for _, n := range []string{"sh", "cap"} {
		p := filepath.Join(safe, "x", n)
		if st := lstatT(t, p); st.Mode&0o7777 != 0o755 || (root && st.Uid != 0) {
			t.Errorf("x/%s: mode %#o uid %d, want 0755 owned by the restoring user", n, st.Mode&0o7777, st.Uid)
		}
		if _, err := unix.Lgetxattr(p, "security.capability", make([]byte, 64)); err == nil {
			t.Errorf("x/%s: a file capability was restored", n)
		}
	}
	// --no-setid alone keeps the restore going and drops the bits.
	r = w.run("restore", snap, "--target", filepath.Join(w.dir, "nosetid"), "--no-setid")
	expectExit(t, r, 3, `xattr "bogus.attr" not restored`)
	if st := lstatT(t, filepath.Join(w.dir, "nosetid/x/sh")); st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		t.Errorf("--no-setid: x/sh is mode %#o", st.Mode&0o7777)
	}
}

func lstatT(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestHostileRestoreTerminalEscapes (issue 11 item 5): names, a user and
// group, a link target and the messages that quote them never reach the
// terminal raw from ls -l, find, diff or restore; --json keeps them exact.
func TestHostileRestoreTerminalEscapes(t *testing.T) {
	w := newWriterRepo(t)
	const esc = "\x1b]0;owned\x07\x1b[2J"
	const csi = "\u009b2J"
	evil := "clear" + esc + csi + "\xff"
	snap := w.craft(t, snapshot.OwnerHeader{}, func(save func(blob.Type, []byte) blob.ID) blob.ID {
		body := []byte("hello")
		id := save(blob.Data, body)
		f := fileNode(evil, 0o644, body, id)
		f.User, f.Group = "root"+esc, "wheel"+csi
		f.Xattrs = []snapshot.Xattr{{Name: "bogus." + "x", Value: []byte("v")}} // a warning that names the file
		link := snapshot.Node{Name: "link" + csi, Type: snapshot.TypeSymlink, Mode: 0o777, LinkTarget: "/tmp/" + esc}
		return save(blob.Tree, tree(t, f, snapshot.Node{Name: "link", Type: snapshot.TypeSymlink, Mode: 0o777, LinkTarget: "x"}, link))
	})
	empty := w.craft(t, snapshot.OwnerHeader{}, func(save func(blob.Type, []byte) blob.ID) blob.ID {
		return save(blob.Tree, tree(t))
	})
	raw := func(args []string, r result) {
		t.Helper()
		for _, out := range []string{r.stdout, r.stderr} {
			if strings.ContainsAny(out, "\x1b\x07\u009b") || strings.Contains(out, "\xff") {
				t.Errorf("cairn %s printed a raw control sequence: %q", strings.Join(args, " "), out)
			}
		}
	}
	for _, args := range [][]string{
		{"ls", snap},
		{"ls", "--long", snap},
		{"find", "--snapshot", snap, "*"},
		{"diff", empty, snap},
		{"restore", snap, "--target", filepath.Join(w.dir, "t")},
		{"dump", snap, "/link" + csi},
	} {
		r := w.run(args...)
		raw(args, r)
		if args[0] == "ls" && !strings.Contains(r.stdout, `clear\x1b]0;owned\a\x1b[2J\u009b2J\xff`) {
			t.Errorf("ls does not show the escaped name:\n%s", r.stdout)
		}
	}
	// --json strings are exact.
	var nodes []struct {
		Name       string `json:"name"`
		User       string `json:"user"`
		LinkTarget string `json:"link_target"`
	}
	out := w.ok("ls", "--json", snap).stdout
	if err := json.Unmarshal([]byte(out), &nodes); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, n := range nodes {
		names[n.Name+"|"+n.User+"|"+n.LinkTarget] = true
	}
	if !names[strings.ToValidUTF8(evil, "\ufffd")+"|root"+esc+"|"] && !names[evil+"|root"+esc+"|"] {
		t.Errorf("ls --json does not keep the name exact: %q", out)
	}
	if !bytes.Contains([]byte(out), []byte(`"link_target":"/tmp/\u001b]0;owned\u0007\u001b[2J"`)) {
		t.Errorf("ls --json link target: %s", out)
	}
}

// TestHostileDiffStatsScoped (R23): a writer's snapshot names a directory
// tree it never stored, but that another writer did. ls, like restore,
// reads a snapshot only from its signer's copies and the owner's, so the
// directory is lost; diff and stats must read it the same way, and not
// show or count the other writer's data as part of the snapshot, not
// even when they walked the other writer's snapshot first.
func TestHostileDiffStatsScoped(t *testing.T) {
	w := newWriterRepo(t)
	victim := w.another(t, "victim")

	var secret blob.ID
	theirs := victim.craft(t, snapshot.OwnerHeader{}, func(save func(blob.Type, []byte) blob.ID) blob.ID {
		data := []byte("the victim's data")
		f := fileNode("f", 0o644, data, save(blob.Data, data))
		secret = save(blob.Tree, tree(t, f))
		return save(blob.Tree, tree(t, dirNode("secret", secret)))
	})
	mine := w.craft(t, snapshot.OwnerHeader{}, func(save func(blob.Type, []byte) blob.ID) blob.ID {
		return save(blob.Tree, tree(t, dirNode("x", secret)))
	})

	expectExit(t, w.run("ls", mine), 3, "/x: directory lost")
	r := w.run("diff", theirs, mine)
	expectExit(t, r, 3, "/x: directory lost")
	if strings.Contains(r.stdout, "/x/f") || !strings.Contains(r.stdout, "/x") {
		t.Errorf("diff shows the other writer's data in the snapshot:\n%s", r.stdout)
	}
	for _, c := range []struct {
		args  []string
		files uint64 // the victim's f when its snapshot is listed
	}{{[]string{"stats", mine}, 0}, {[]string{"stats"}, 1}} {
		r = w.run(append(c.args, "--json")...)
		var st struct {
			Files uint64 `json:"files"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 3 || !strings.Contains(r.stderr, "/x: directory lost") {
			t.Fatalf("cairn %s: exit %d, %v\n%s%s", strings.Join(c.args, " "), r.code, err, r.stdout, r.stderr)
		}
		if st.Files != c.files {
			t.Errorf("cairn %s counts %d files, want %d", strings.Join(c.args, " "), st.Files, c.files)
		}
	}
}

// TestHostileBombAcrossSigners (R23): two colluding writers. The first
// commits a snapshot naming a bomb's root it never stored, so for its
// reads the root does not load and counts as empty; the second stores the
// bomb and commits a snapshot of it. Checked after the first in one run,
// the bomb must still be measured with the second writer's reads, and
// refused.
func TestHostileBombAcrossSigners(t *testing.T) {
	w := newWriterRepo(t)
	accomplice := w.another(t, "accomplice")
	wr := w.open(t)
	levels := [][]byte{tree(t, snapshot.Node{Name: "f", Type: snapshot.TypeFile, Mode: 0o644})}
	root := wr.BlobID(blob.Tree, levels[0])
	for range 40 {
		levels = append(levels, tree(t, dirNode("a", root), dirNode("b", root)))
		root = wr.BlobID(blob.Tree, levels[len(levels)-1])
	}
	hollow := w.craft(t, snapshot.OwnerHeader{}, func(save func(blob.Type, []byte) blob.ID) blob.ID {
		return save(blob.Tree, tree(t, dirNode("x", root)))
	})
	bomb := accomplice.craft(t, snapshot.OwnerHeader{}, func(save func(blob.Type, []byte) blob.ID) blob.ID {
		var id blob.ID
		for _, l := range levels {
			id = save(blob.Tree, l)
		}
		if id != root {
			t.Fatal("the writers' tree IDs differ")
		}
		return save(blob.Tree, tree(t, dirNode("x", id)))
	})
	if snaps := w.snapshots(); len(snaps) != 2 || snaps[0].ID != hollow || snaps[1].ID != bomb {
		t.Fatalf("snapshots %+v, want the hollow one first", snaps)
	}
	r := w.run("stats")
	expectExit(t, r, 1, "expands too far")
	if !strings.Contains(r.stderr, bomb[:8]) {
		t.Fatalf("the refusal does not name the bomb %s:\n%s", bomb[:8], r.stderr)
	}
}
