//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnbackup/cairn/internal/crypto"
)

// handoffFor is what the agent hands its backups for the key file at
// path with password pw: the key file's ID and key, encoded.
func handoffFor(t *testing.T, path, pw string) []byte {
	t.Helper()
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, k, err := crypto.UnlockKeyFile(buf, []byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	h := crypto.NewHandoff(buf, k)
	return h.Encode()
}

// keyFDBackup runs `cairn backup --key-fd 3 ARGS` with a pipe holding
// handoff as descriptor 3 (written and closed before the start, as the
// agent does) and no readable password file. It returns the result and
// the pipe's name in /proc ("pipe:[INODE]").
func keyFDBackup(t *testing.T, e *env, handoff []byte, extra map[string]string, args ...string) (result, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(r.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	w.Write(handoff)
	w.Close()
	vars := map[string]string{"CAIRN_PASSWORD_FILE": filepath.Join(e.dir, "no-such-password-file")}
	for k, v := range extra {
		vars[k] = v
	}
	cmd := e.command(vars, append([]string{"backup", "--key-fd", "3"}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.ExtraFiles = []*os.File{r}
	return exitResult(t, cmd.Run(), out.String(), errb.String()), fmt.Sprintf("pipe:[%d]", st.Ino)
}

// TestBackupKeyFD: backup --key-fd opens the key file with the key read
// from the descriptor, no password: a writer's --key-file and the
// owner's file in keys/. The descriptor is closed before the backup runs
// its command, which neither inherits it nor finds it open in the
// backup. A key that does not open the file, a key for another file, a
// key file of another repository, bytes that are no key and a regular
// file are refused, and nothing is backed up.
func TestBackupKeyFD(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	wpw := filepath.Join(e.dir, "writer.password")
	os.WriteFile(wpw, []byte("writer pw\n"), 0o600)
	key := filepath.Join(e.dir, "writer.key")
	e.ok("key", "add", "--role", "writer", "--export", key, "--new-password-file", wpw, "--host", "h1")
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 200000)
	good := handoffFor(t, key, "writer pw")
	asWriter := map[string]string{"CAIRN_KEY_FILE": key}

	// The command lists its own descriptors and the backup's (its parent).
	r, pipe := keyFDBackup(t, e, good, asWriter, "--host", "h1", "--stdin-from-command", "--stdin-filename", "fds", "--",
		"sh", "-c", `for f in /proc/$$/fd/* /proc/$PPID/fd/*; do echo "$f $(readlink $f)"; done`)
	if r.code != 0 {
		t.Fatalf("backup --key-fd: exit %d\n%s", r.code, r.stderr)
	}
	var snaps []snapJSON
	lastJSON(t, e.ok("snapshots", "--json").stdout, &snaps)
	fds := e.ok("dump", snaps[len(snaps)-1].ID, "/fds").stdout
	if !strings.Contains(fds, "/fd/0 ") || strings.Contains(fds, pipe) {
		t.Fatalf("the key's pipe %s is open in the command or the backup running it:\n%s", pipe, fds)
	}
	for _, l := range strings.Split(fds, "\n") {
		if n := strings.TrimPrefix(l, "/proc/"); strings.Contains(l, "/fd/3 ") && strings.HasPrefix(n, "self") {
			t.Errorf("the command has descriptor 3: %s", l)
		}
	}

	r, _ = keyFDBackup(t, e, good, asWriter, "--host", "h1", src)
	if r.code != 0 {
		t.Fatalf("backup --key-fd: exit %d\n%s", r.code, r.stderr)
	}
	// The owner, unlocking its file in keys/ with no --key-file.
	owners, _ := filepath.Glob(filepath.Join(e.repo, "keys", "*"))
	if len(owners) != 1 {
		t.Fatalf("%d key files in keys/", len(owners))
	}
	r, _ = keyFDBackup(t, e, handoffFor(t, owners[0], "correct horse"), nil, src)
	if r.code != 0 {
		t.Fatalf("owner backup --key-fd: exit %d\n%s", r.code, r.stderr)
	}
	before := len(e.snapshots())

	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 1
	r, _ = keyFDBackup(t, e, bad, asWriter, src)
	expectExit(t, r, 1, "--key-fd 3: the key does not open this key file "+key)

	other := filepath.Join(e.dir, "other.key")
	e.ok("key", "add", "--role", "writer", "--export", other, "--new-password-file", wpw, "--host", "h1")
	r, _ = keyFDBackup(t, e, handoffFor(t, other, "writer pw"), asWriter, src)
	expectExit(t, r, 1, "key file "+key+" is not the one the key handed over was made for")

	e2 := newEnv(t)
	e2.ok("init")
	foreign := filepath.Join(e.dir, "foreign.key")
	e2.ok("key", "add", "--role", "writer", "--export", foreign, "--new-password-file", wpw, "--host", "h1")
	r, _ = keyFDBackup(t, e, handoffFor(t, foreign, "writer pw"), map[string]string{"CAIRN_KEY_FILE": foreign}, src)
	expectExit(t, r, 1, "with key file "+foreign)

	r, _ = keyFDBackup(t, e, good[:40], asWriter, src)
	expectExit(t, r, 1, "--key-fd 3: not a key hand-over: the descriptor gave 40 of 72 bytes")
	r, _ = keyFDBackup(t, e, append([]byte("CAIRNFK9"), good[8:]...), asWriter, src)
	expectExit(t, r, 1, "--key-fd 3: not a key hand-over")

	onDisk := filepath.Join(e.dir, "key.bytes")
	os.WriteFile(onDisk, good, 0o600)
	f, err := os.Open(onDisk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := e.command(asWriter, "backup", "--key-fd", "3", src)
	cmd.ExtraFiles = []*os.File{f}
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "--key-fd 3: not a pipe or socket") {
		t.Errorf("a regular file as --key-fd: %s", out)
	}
	r = e.run("backup", "--key-fd", "1", src)
	expectExit(t, r, 1, "--key-fd 1: give a descriptor above 2")
	r = e.run("backup", "--key-fd", "9", src)
	expectExit(t, r, 1, "--key-fd 9: not an open descriptor")
	if n := len(e.snapshots()); n != before {
		t.Errorf("%d snapshots after the refused backups, want %d", n, before)
	}
}

// TestAgentUnlocksKeyOnce: a daemon agent derives its key file's key
// once, before the first run's hooks, and hands it to every backup of
// every run: its before hook deletes the password file, yet both runs'
// backups (a database dump and the paths) succeed. Neither the hook nor
// the dump command holds a descriptor beyond the standard ones.
func TestAgentUnlocksKeyOnce(t *testing.T) {
	e := newEnv(t)
	bin := filepath.Join(e.dir, "bin")
	os.MkdirAll(bin, 0o755)
	if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte("#!/bin/sh\nls /proc/$$/fd\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "a"), 100000)
	wpw := filepath.Join(e.dir, "writer.password")
	hookFDs := filepath.Join(e.dir, "hook-fds")
	cfg := agentForLocalRepo(t, e, fmt.Sprintf(`schedule: {at: "daily 04:00", time_zone: UTC, jitter: 0s}
hooks:
  before:
    - run: "ls /proc/$$/fd > %s; rm -f %s"
databases:
  - type: postgres
    databases: [app]
`, hookFDs, wpw), src)

	cmd := e.command(map[string]string{"CAIRN_AGENT_TEST_CLOCK": "2026-05-01T12:00:00Z", "PATH": bin + ":" + os.Getenv("PATH")}, "agent", "run", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log []string
	succeeded, unlocked := 0, 0
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		log = append(log, line)
		if strings.Contains(line, "cairn agent: unlocked key_file") {
			unlocked++
		}
		if strings.Contains(line, "run failed") {
			cmd.Process.Signal(syscall.SIGTERM)
		}
		if strings.Contains(line, "run succeeded") {
			if succeeded++; succeeded == 2 {
				cmd.Process.Signal(syscall.SIGTERM)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent run after SIGTERM: %v\n%s", err, strings.Join(log, "\n"))
	}
	if succeeded != 2 || unlocked != 1 {
		t.Fatalf("%d runs succeeded, the key unlocked %d times; want 2 and 1:\n%s", succeeded, unlocked, strings.Join(log, "\n"))
	}
	if _, err := os.Stat(wpw); err == nil {
		t.Fatal("the before hook did not delete the password file")
	}
	var snaps []snapJSON
	lastJSON(t, e.ok("snapshots", "--json", "--tag", "postgres").stdout, &snaps)
	if len(snaps) < 2 {
		t.Fatalf("%d dump snapshots, want one per run", len(snaps))
	}
	if n := len(e.snapshots()) - len(snaps); n < 2 {
		t.Fatalf("%d snapshots of the paths, want one per run", n)
	}
	hook, _ := os.ReadFile(hookFDs)
	dump := e.ok("dump", snaps[len(snaps)-1].ID, "/postgres-app.sql").stdout
	inherited := inheritedFDs(t)
	for what, list := range map[string]string{"the before hook": string(hook), "the dump command": dump} {
		for _, fd := range strings.Fields(list) {
			// 0-2 are the standard ones; sh keeps a script open at 10
			// or above.
			if len(fd) == 1 && fd >= "3" && !inherited[fd] {
				t.Errorf("%s has descriptor %s open: %q", what, fd, list)
			}
		}
	}
}

// inheritedFDs are the descriptors above 2 this test process holds
// without close-on-exec: whatever started the tests left them, and every
// child inherits them.
func inheritedFDs(t *testing.T) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fdinfo")
	if err != nil {
		t.Fatal(err)
	}
	fds := map[string]bool{}
	for _, ent := range ents {
		info, err := os.ReadFile("/proc/self/fdinfo/" + ent.Name())
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(info), "\n") {
			var flags int
			if _, err := fmt.Sscanf(l, "flags:\t%o", &flags); err == nil && flags&syscall.O_CLOEXEC == 0 {
				fds[ent.Name()] = true
			}
		}
	}
	return fds
}
