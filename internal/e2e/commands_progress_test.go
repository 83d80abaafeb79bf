//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the master the test reads, and the
// terminal side a command writes to.
func openPTY(t *testing.T) (master, term *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	return m, s
}

// onTerminal runs cairn with its standard error on a terminal and
// returns what the terminal received.
func (e *env) onTerminal(args ...string) string {
	e.t.Helper()
	master, term := openPTY(e.t)
	defer master.Close()
	cmd := e.command(nil, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, term
	read := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the terminal side is closed
		read <- b
	}()
	err := cmd.Run()
	term.Close()
	got := <-read
	if err != nil {
		e.t.Fatalf("cairn %v: %v\nterminal: %q\nstdout: %s", args, err, got, out.String())
	}
	return string(got)
}

// TestProgressOnTerminal: restore, check --read-data, prune and copy draw
// a status line that rewrites itself (and is erased at the end) when
// standard error is a terminal, and none when it is not.
func TestProgressOnTerminal(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(src, "a"), 300_000)
	writeRandom(t, filepath.Join(src, "d", "b"), 1000)
	e.ok("init")
	e.ok("backup", src)
	other := filepath.Join(e.dir, "other")
	e.ok("-r", other, "init")
	for _, c := range []struct {
		args []string
		line string
	}{
		{[]string{"restore", "latest", "--target", filepath.Join(e.dir, "r")}, `\[0:\d\d\] 2 of 2 files, 293\.9 KiB of 293\.9 KiB`},
		{[]string{"check", "--read-data"}, `\[0:\d\d\] \d+ of \d+ packs, `},
		{[]string{"-r", other, "copy", "--from-repo", e.repo, "--from-password-file", e.vars["CAIRN_PASSWORD_FILE"]}, `\[0:\d\d\] 2 of 2 files, 293\.9 KiB`},
		{[]string{"prune", "--grace", "0"}, `\[0:\d\d\] 0 of 0 packs`},
	} {
		got := e.onTerminal(c.args...)
		re := regexp.MustCompile(`\r\x1b\[K` + c.line + `[^\r\n]*\r\x1b\[K`)
		if !re.MatchString(got) {
			t.Errorf("cairn %v on a terminal: no status line %q drawn and erased in %q", c.args, c.line, got)
		}
		if r := e.ok(c.args...); bytes.ContainsAny([]byte(r.stderr), "\r\x1b") {
			t.Errorf("cairn %v piped drew a status line: %q", c.args, r.stderr)
		}
	}
}
