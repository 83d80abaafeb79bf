package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestBackupFilesFrom(t *testing.T) {
	c := newCLI(t)
	src := filepath.Join(c.dir, "src")
	tree(t, src, map[string]string{"a/1.log": "1", "a/2.log": "2", "b/keep.txt": "k", "c/other": "o", "odd\nname": "n"})
	c.ok("init")
	list := filepath.Join(c.dir, "list")
	os.WriteFile(list, []byte("# what to back up\n"+src+"/a/*.log\n\n  "+src+"/b  \n"), 0o600)
	c.ok("backup", "--files-from", list)
	got := c.lsPaths("latest")
	for _, want := range []string{src + "/a/1.log", src + "/a/2.log", src + "/b/keep.txt"} {
		if !slices.Contains(got, want) {
			t.Errorf("ls after --files-from lacks %s: %q", want, got)
		}
	}
	if slices.Contains(got, src+"/c/other") {
		t.Errorf("--files-from backed up an unlisted path: %q", got)
	}

	// NUL-separated, from standard input: a name with a newline survives.
	r := c.runIn(strings.NewReader(src+"/odd\nname\x00"+src+"/c\x00"), "backup", "--files-from-raw", "-", "--json")
	if r.code != 0 {
		t.Fatalf("--files-from-raw -: exit %d: %s", r.code, r.stderr)
	}
	got = c.lsPaths("latest")
	if !slices.Contains(got, src+`/odd\nname`) || !slices.Contains(got, src+"/c/other") || slices.Contains(got, src+"/b") {
		t.Errorf("ls after --files-from-raw: %q", got)
	}

	empty := filepath.Join(c.dir, "empty")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	c.fails(1, "name no path", "backup", "--files-from", empty)
	c.fails(1, "check the file name", "backup", "--files-from", filepath.Join(c.dir, "missing"))
}

func TestBackupStdin(t *testing.T) {
	c := newCLI(t)
	c.ok("init")
	r := c.runIn(strings.NewReader("dump of the database\n"), "backup", "--stdin", "--stdin-filename", "db.sql", "--json", "-v")
	if r.code != 0 {
		t.Fatalf("--stdin: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, `{"message_type":"verbose_status","action":"new","item":"/db.sql","data_size":21}`) {
		t.Errorf("--json -v lacks the stored file's verbose_status line:\n%s", r.stdout)
	}
	if got := c.ok("dump", "latest", "/db.sql").stdout; got != "dump of the database\n" {
		t.Errorf("dump of --stdin's file: %q", got)
	}
	if s := c.snapshots(); len(s) != 1 || !slices.Equal(s[0].Paths, []string{"/db.sql"}) {
		t.Errorf("snapshot of --stdin: %+v", s)
	}
	c.fails(1, "give no PATH", "backup", "--stdin", c.dir)
	c.fails(1, "plain file name", "backup", "--stdin", "--stdin-filename", "a/b")
}

func TestBackupExcludes(t *testing.T) {
	c := newCLI(t)
	src := filepath.Join(c.dir, "src")
	tree(t, src, map[string]string{
		"Photo.JPG": "x", "notes.txt": "n", "big.bin": strings.Repeat("b", 3000),
		"cache/CACHEDIR.TAG": "Signature: 8a477f597d28d172789f06886806bc55", "cache/blob": "c",
		"private/.nobackup": "", "private/secret": "s", "kept/file": "k",
	})
	c.ok("init")
	c.ok("backup", src, "--iexclude", "*.jpg", "--exclude-caches", "--exclude-if-present", ".nobackup", "--exclude-larger-than", "2KiB")
	got := c.lsPaths("latest")
	for _, gone := range []string{"/Photo.JPG", "/cache", "/private", "/big.bin"} {
		if slices.Contains(got, src+gone) {
			t.Errorf("%s is in the snapshot: %q", gone, got)
		}
	}
	for _, kept := range []string{"/notes.txt", "/kept/file"} {
		if !slices.Contains(got, src+kept) {
			t.Errorf("%s is not in the snapshot: %q", kept, got)
		}
	}
	c.fails(1, "--exclude-larger-than \"lots\"", "backup", src, "--exclude-larger-than", "lots")
}

func TestBackupDryRunAndVerbose(t *testing.T) {
	c := newCLI(t)
	src := filepath.Join(c.dir, "src")
	tree(t, src, map[string]string{"a": "aaa", "d/b": "bbb", "e/f": "same", "e/g/h": "deep"})
	c.ok("init")
	before := listRepo(t, c.repo)
	out := c.ok("backup", "-n", "-vv", src).stdout
	for _, want := range []string{"new        " + src + "/a\n", "new        " + src + "/d/\n", "Dry run: nothing stored"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if after := listRepo(t, c.repo); !slices.Equal(before, after) {
		t.Errorf("--dry-run wrote to the repository:\n%q\n%q", before, after)
	}
	if s := c.snapshots(); len(s) != 0 {
		t.Fatalf("--dry-run made a snapshot: %+v", s)
	}

	// A first backup: every directory is new, none unmodified.
	out = c.ok("backup", src).stdout
	// (The snapshot holds src's ancestors too: 5 + 3 or more.)
	if !regexp.MustCompile(`Dirs: +([89]|\d\d) new, 0 changed, 0 unmodified`).MatchString(out) {
		t.Errorf("first backup summary:\n%s", out)
	}
	// Tiny files store more than they read: no "0.0x smaller"; a run
	// under a second is not "0:00".
	if strings.Contains(out, "x smaller") || strings.Contains(out, "Took:   0:00") || strings.Contains(out, "(0 B/s)") {
		t.Errorf("first backup summary wording:\n%s", out)
	}
	os.WriteFile(filepath.Join(src, "d/b"), []byte("changed"), 0o644)
	os.WriteFile(filepath.Join(src, "new"), []byte("new file"), 0o644)
	out = c.ok("backup", "-v", src).stdout
	for _, want := range []string{"modified   " + src + "/d/b\n", "new        " + src + "/new\n", "modified   " + src + "/d/\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("-v output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "unchanged") {
		t.Errorf("-v lists unchanged files (that is -vv):\n%s", out)
	}
	if !strings.Contains(out, "Files:       1 new, 1 changed, 3 unmodified") || !regexp.MustCompile(`Dirs: +0 new, ([6-9]|\d\d) changed, 2 unmodified`).MatchString(out) {
		t.Errorf("second backup summary:\n%s", out)
	}
	out = c.ok("backup", "-vv", src).stdout
	if !strings.Contains(out, "unchanged  "+src+"/e/g/h\n") {
		t.Errorf("-vv does not list unchanged files:\n%s", out)
	}
}

func TestBackupParent(t *testing.T) {
	c := newCLI(t)
	src := filepath.Join(c.dir, "src")
	tree(t, src, map[string]string{"a": "aaa", "b": "bbb"})
	c.ok("init")
	c.ok("backup", src)
	first := c.snapshots()[0].ID
	os.WriteFile(filepath.Join(src, "a"), []byte("changed"), 0o644)
	c.ok("backup", src)
	// Against the first snapshot, a is changed again; against the
	// cache (the second backup), nothing is.
	var sum struct {
		Changed   int `json:"files_changed"`
		Unchanged int `json:"files_unmodified"`
	}
	jsonOf(t, c.ok("backup", "--json", "--parent", first[:8], src).stdout, &sum)
	if sum.Changed != 1 || sum.Unchanged != 1 {
		t.Errorf("--parent %s: %+v, want 1 changed, 1 unmodified", first[:8], sum)
	}
	jsonOf(t, c.ok("backup", "--json", src).stdout, &sum)
	if sum.Changed != 0 || sum.Unchanged != 2 {
		t.Errorf("after --parent: %+v, want 2 unmodified", sum)
	}
	c.fails(1, "no snapshot", "backup", "--parent", "abcdef12", src)
}

func TestBackupTimeInFuture(t *testing.T) {
	c := newCLI(t)
	c.ok("init")
	c.fails(1, "in the future", "backup", c.dir, "--time", "2999-01-01 00:00:00")
	c.ok("backup", c.dir+"/repo/config", "--time", "2001-02-03 04:05:06")
}

// listRepo lists every file below dir with its size.
func listRepo(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out = append(out, p+" "+fi.ModTime().String()+" "+strings.Repeat("x", int(fi.Size()%7)))
		return nil
	})
	return out
}

// TestBackupStdinWithPasswordCommand: the password command does not eat
// the data --stdin backs up.
func TestBackupStdinWithPasswordCommand(t *testing.T) {
	c := newCLI(t)
	c.ok("init")
	r := c.runIn(strings.NewReader("the data\n"), "--password-command", "cat >/dev/null; echo correct horse", "backup", "--stdin")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := c.ok("dump", "latest", "/stdin").stdout; got != "the data\n" {
		t.Errorf("dump: %q", got)
	}
}
