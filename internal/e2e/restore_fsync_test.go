//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreFsync: a restore flushes the target's file system once at
// its end (syncfs, seen with strace); --no-fsync does not, and restores
// the same content.
func TestRestoreFsync(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("no strace")
	}
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	const dirs, files = 3, 10
	for d := range dirs {
		for f := range files {
			p := filepath.Join(src, fmt.Sprintf("d%d", d), fmt.Sprintf("f%d", f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			writeRandom(t, p, 500+f*100)
		}
	}
	e.ok("init")
	e.ok("backup", src)
	want := contentHashes(t, src)

	fsyncs := func(extra ...string) int {
		t.Helper()
		target := filepath.Join(t.TempDir(), "target")
		cmd := e.command(nil, append([]string{"restore", "latest", "--target", target}, extra...)...)
		trace := filepath.Join(t.TempDir(), "trace")
		st := exec.Command("strace", append([]string{"-f", "-qq", "-e", "trace=fsync,syncfs", "-o", trace}, cmd.Args...)...)
		st.Env = cmd.Env
		if out, err := st.CombinedOutput(); err != nil {
			if strings.Contains(string(out), "ptrace") {
				t.Skipf("strace cannot trace here: %s", out)
			}
			t.Fatalf("restore %v: %v\n%s", extra, err, out)
		}
		got := contentHashes(t, filepath.Join(target, src))
		if len(got) != len(want) {
			t.Fatalf("restore %v: %d files, want %d", extra, len(got), len(want))
		}
		for p, h := range want {
			if got[p] != h {
				t.Fatalf("restore %v: %s differs", extra, p)
			}
		}
		b, err := os.ReadFile(trace)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), "syncfs(")
	}
	if with, without := fsyncs(), fsyncs("--no-fsync"); with != 1 || without != 0 {
		t.Fatalf("%d syncfs calls with, %d without --no-fsync: want 1 and 0", with, without)
	}
}
