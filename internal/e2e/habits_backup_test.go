//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHabitsBackupSources: what a restic user pipes into `cairn backup`
// works with the real binary: --stdin from a shell pipe, a NUL-separated
// list from `find -print0`, a --files-from file, and --dry-run storing
// nothing.
func TestHabitsBackupSources(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(filepath.Join(src, "logs"), 0o755)
	os.WriteFile(filepath.Join(src, "logs", "a.log"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(src, "logs", "b.txt"), []byte("b"), 0o644)
	os.WriteFile(filepath.Join(src, "skip me"), []byte("s"), 0o644)

	// --stdin from a real pipe.
	sh := e.command(nil) // cairn's environment, for a shell running it
	sh.Path, sh.Args = "/bin/sh", []string{"sh", "-c", `printf 'dump of mydb\n' | "$0" backup --stdin --stdin-filename db.sql`, cairnBin}
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("pipe into backup --stdin: %v\n%s", err, out)
	}
	if got := e.ok("dump", "latest", "/db.sql").stdout; got != "dump of mydb\n" {
		t.Errorf("dump of the piped file: %q", got)
	}

	// find -print0 | cairn backup --files-from-raw -
	find := exec.Command("find", filepath.Join(src, "logs"), "-name", "*.log", "-print0")
	list, err := find.Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := e.command(nil, "backup", "--files-from-raw", "-", "-vv")
	cmd.Stdin = strings.NewReader(string(list))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("backup --files-from-raw -: %v", err)
	}
	if !strings.Contains(string(out), "new        "+filepath.Join(src, "logs", "a.log")) {
		t.Errorf("-vv does not list the new file:\n%s", out)
	}
	ls := e.ok("ls", "latest").stdout
	if !strings.Contains(ls, "a.log") || strings.Contains(ls, "b.txt") {
		t.Errorf("ls after --files-from-raw:\n%s", ls)
	}

	// --files-from with a glob, and --dry-run leaves the repository alone.
	lf := filepath.Join(e.dir, "paths")
	os.WriteFile(lf, []byte("# comment\n"+src+"/logs/*\n"), 0o600)
	before := listing(t, e.repo)
	out2 := e.ok("backup", "--files-from", lf, "--dry-run").stdout
	if !strings.Contains(out2, "Dry run: nothing stored") {
		t.Errorf("dry run output:\n%s", out2)
	}
	if after := listing(t, e.repo); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("--dry-run changed the repository")
	}
	e.ok("backup", "--files-from", lf)
	ls = e.ok("ls", "latest").stdout
	if !strings.Contains(ls, "b.txt") || strings.Contains(ls, "skip me") {
		t.Errorf("ls after --files-from:\n%s", ls)
	}
}

// TestHabitsPasswordAndVersion: -p, --password-command and
// CAIRN_PASSWORD_COMMAND unlock the repository; both a file and a command
// is a usage error; `cairn version` and --version print the version.
func TestHabitsPasswordAndVersion(t *testing.T) {
	e := newEnv(t)
	pw := e.vars["CAIRN_PASSWORD_FILE"]
	delete(e.vars, "CAIRN_PASSWORD_FILE")
	e.ok("-p", pw, "init")
	e.ok("--password-command", "cat "+pw, "snapshots")
	if r := e.runWith(map[string]string{"CAIRN_PASSWORD_COMMAND": "echo correct horse"}, "snapshots"); r.code != 0 {
		t.Fatalf("CAIRN_PASSWORD_COMMAND: exit %d: %s", r.code, r.stderr)
	}
	r := e.run("--password-command", "echo wrong", "snapshots")
	expectExit(t, r, 12, "wrong password")
	r = e.run("--password-command", "exit 4", "snapshots")
	expectExit(t, r, 1, "password command")
	r = e.run("-p", pw, "--password-command", "cat "+pw, "snapshots")
	expectExit(t, r, 1, "pass one")

	for _, args := range [][]string{{"version"}, {"--version"}} {
		out := e.ok(args...).stdout
		if !strings.HasPrefix(out, "cairn ") || !strings.Contains(out, "linux/") {
			t.Errorf("cairn %v: %q", args, out)
		}
	}
}
