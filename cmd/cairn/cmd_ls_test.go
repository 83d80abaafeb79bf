package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

func TestLsMode(t *testing.T) {
	for _, c := range []struct {
		typ  snapshot.NodeType
		mode uint32
		want string
	}{
		{snapshot.TypeFile, 0o644, "-rw-r--r--"},
		{snapshot.TypeSymlink, 0o777, "lrwxrwxrwx"},
		{snapshot.TypeDir, 0o1777, "drwxrwxrwt"},
		{snapshot.TypeDir, 0o1770, "drwxrwx--T"},
		{snapshot.TypeFile, 0o4755, "-rwsr-xr-x"},
		{snapshot.TypeFile, 0o4644, "-rwSr--r--"},
		{snapshot.TypeFile, 0o2755, "-rwxr-sr-x"},
		{snapshot.TypeCharDev, 0o660, "crw-rw----"},
		{snapshot.TypeBlkDev, 0o660, "brw-rw----"},
		{snapshot.TypeFIFO, 0o600, "prw-------"},
		{snapshot.TypeSocket, 0o755, "srwxr-xr-x"},
	} {
		if got := lsMode(&snapshot.Node{Type: c.typ, Mode: c.mode}); got != c.want {
			t.Errorf("lsMode(%v, %o) = %q, want %q", c.typ, c.mode, got, c.want)
		}
	}
}

// TestLsLong: ls -l lines start with ls's mode string, columns do not
// move with the longest path, and a hard link's second name shows the
// file's size, also in --json.
func TestLsLong(t *testing.T) {
	c := newCLI(t)
	src := filepath.Join(c.dir, "src")
	long := "a-rather-long-directory-name/with-an-even-longer-file-name-inside.txt"
	tree(t, src, map[string]string{"one": "12345", long: "x"})
	os.Link(filepath.Join(src, "one"), filepath.Join(src, "two"))
	os.Symlink("one", filepath.Join(src, "link"))
	os.Mkdir(filepath.Join(src, "tmp"), 0o755)
	syscall.Chmod(filepath.Join(src, "tmp"), 0o1777)
	syscall.Chmod(filepath.Join(src, "one"), 0o4755)
	c.ok("init")
	c.ok("backup", src)
	out := c.ok("ls", "-l", "latest", src).stdout
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		name := f[len(f)-1]
		if strings.Contains(l, " -> ") {
			name = f[len(f)-3]
		}
		lines[strings.TrimPrefix(name, src+"/")] = l
		if strings.HasPrefix(l, " ") {
			t.Errorf("line padded on the left: %q", l)
		}
	}
	for name, want := range map[string]string{"one": "-rwsr-xr-x", "two": "-rwsr-xr-x", "link": "lrwxrwxrwx", "tmp": "drwxrwxrwt"} {
		if !strings.HasPrefix(lines[name], want+" ") {
			t.Errorf("ls -l %s: %q, want mode %s", name, lines[name], want)
		}
	}
	if f := strings.Fields(lines["two"]); len(f) < 4 || f[3] != "5" {
		t.Errorf("ls -l of a hard link's second name: %q, want size 5", lines["two"])
	}
	// The size column ends at the same place on every line.
	at := strings.Index(lines["one"], " 5 ")
	if at < 0 || strings.Index(lines[long], " 1 ") != at {
		t.Errorf("columns not aligned:\n%s", out)
	}
	var nodes []struct {
		Path string `json:"path"`
		Mode string `json:"mode"`
		Size uint64 `json:"size"`
	}
	if err := json.Unmarshal([]byte(c.ok("ls", "--json", "latest", src+"/two").stdout), &nodes); err != nil || len(nodes) != 1 {
		t.Fatalf("ls --json: %v %v", nodes, err)
	}
	if nodes[0].Mode != "-rwsr-xr-x" || nodes[0].Size != 5 {
		t.Errorf("ls --json of a hard link's second name alone: %+v", nodes[0])
	}
}

// TestLostWarningsJSON: under --json the warnings of ls and find about
// a file whose content is lost are warning messages, not text lines.
func TestLostWarningsJSON(t *testing.T) {
	c := newCLI(t)
	src := filepath.Join(c.dir, "src")
	tree(t, src, map[string]string{"a.txt": "alpha", "d/b.txt": "beta"})
	c.ok("init")
	c.ok("backup", src)
	packs, err := filepath.Glob(filepath.Join(c.repo, "data", "*", "*"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no packs: %v", err)
	}
	// Remove the packs one by one until ls reports a loss: the one
	// holding the files' content.
	var r cliResult
	for _, p := range packs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		if r = c.run("ls", "--json", "latest"); r.code == exitPartial {
			break
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r.code != exitPartial {
		t.Fatalf("no pack's loss made ls exit %d: %+v", exitPartial, r)
	}
	j := &jsonChecker{t: t, seen: map[string]bool{}}
	for _, r := range []cliResult{r, c.run("find", "--json", "*.txt")} {
		j.check("ls", r.stderr)
		if strings.Contains(r.stderr, "cairn: warning") || !strings.Contains(r.stderr, `"message_type":"warning"`) {
			t.Errorf("warnings under --json: %s", r.stderr)
		}
	}
	if !j.seen["*/warning"] {
		t.Errorf("no warning message seen")
	}
}
