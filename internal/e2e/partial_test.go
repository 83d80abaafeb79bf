//go:build linux

package e2e

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A file the backup cannot read is reported and skipped; the snapshot is
// still made and the exit code is 3. Root reads everything, so cairn runs
// here as the unprivileged user nobody against a file only root may read.
func TestUnreadableFileExit3(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run cairn as another user")
	}
	const nobody = 65534
	base, err := os.MkdirTemp("", "cairn-e2e-partial-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(base, 0o755))
	bin := filepath.Join(base, "cairn")
	in, err := os.Open(cairnBin)
	must(err)
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	must(err)
	_, err = io.Copy(out, in)
	must(err)
	in.Close()
	must(out.Close())

	src := filepath.Join(base, "src")
	must(os.Mkdir(src, 0o755))
	must(os.WriteFile(filepath.Join(src, "readable"), []byte("everyone may read this"), 0o644))
	must(os.WriteFile(filepath.Join(src, "secret"), []byte("root only"), 0o600))
	home := filepath.Join(base, "home")
	must(os.Mkdir(home, 0o700))
	must(os.Chown(home, nobody, nobody))
	must(os.WriteFile(filepath.Join(home, "pw"), []byte("nobody's password\n"), 0o600))
	must(os.Chown(filepath.Join(home, "pw"), nobody, nobody))

	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"HOME=" + home, "CAIRN_REPOSITORY=" + filepath.Join(home, "repo"),
			"CAIRN_PASSWORD_FILE=" + filepath.Join(home, "pw"), "XDG_CACHE_HOME=" + filepath.Join(home, "cache"), "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		b, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(b), code
	}
	if o, code := run("init"); code != 0 {
		t.Fatalf("init: %d %s", code, o)
	}
	o, code := run("backup", src)
	if code != 3 {
		t.Fatalf("backup with an unreadable file: exit %d, want 3\n%s", code, o)
	}
	if !strings.Contains(o, "secret") {
		t.Errorf("the unreadable file is not named:\n%s", o)
	}
	o, code = run("ls", "latest", strings.TrimPrefix(src, "/"))
	if code != 0 || !strings.Contains(o, "readable") || strings.Contains(o, "secret") {
		t.Fatalf("snapshot should hold the readable file only (exit %d):\n%s", code, o)
	}
}
