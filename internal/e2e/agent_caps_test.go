//go:build linux

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// capDACReadSearch is CAP_DAC_READ_SEARCH (linux/capability.h).
const capDACReadSearch = 2

// TestAgentUnprivilegedWithCapability: the agent run as an unprivileged
// user with CAP_DAC_READ_SEARCH as an ambient capability (what the
// systemd unit's AmbientCapabilities= gives it) backs up a file only root
// may read; without the capability the same run fails.
func TestAgentUnprivilegedWithCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("granting a capability to another user needs root")
	}
	u := nobody(t)
	secretDir := filepath.Join(t.TempDir(), "root-only")
	os.Mkdir(secretDir, 0o700)
	writeRandom(t, filepath.Join(secretDir, "shadow"), 50000)
	os.Chmod(filepath.Join(secretDir, "shadow"), 0o600)

	e := newEnv(t)
	state := u.dir(t, "state")
	e.repo = filepath.Join(state, "repo")
	e.vars["CAIRN_REPOSITORY"] = e.repo
	cfg := agentForLocalRepo(t, e, "", secretDir)
	// The repository, the writer key, its password and the
	// configuration are the agent user's, so without the capability
	// only the root-only file is out of its reach.
	os.Chmod(e.dir, 0o711)
	own := []string{"-R", "nobody:", e.repo, cfg, filepath.Join(e.dir, "writer.key"), filepath.Join(e.dir, "writer.password")}
	if out, err := exec.Command("chown", own...).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	// The test's binary sits in a directory only root may enter: the
	// agent user gets a copy of its own.
	bin := filepath.Join(u.dir(t, "bin"), "cairn")
	if out, err := exec.Command("cp", cairnBin, bin).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	agent := func(caps ...uintptr) (string, error) {
		cmd := e.command(map[string]string{"XDG_CACHE_HOME": u.dir(t, "cache"), "HOME": state}, "agent", "once", "--config", cfg)
		cmd.Path, cmd.Args[0] = bin, bin
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)},
			AmbientCaps: caps,
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	if out, err := agent(); err == nil || !strings.Contains(out, "root-only: permission denied") {
		t.Fatalf("without the capability: %v\n%s", err, out)
	}
	if out, err := agent(capDACReadSearch); err != nil || !strings.Contains(out, "run succeeded") {
		t.Fatalf("with CAP_DAC_READ_SEARCH: %v\n%s", err, out)
	}
	target := filepath.Join(e.dir, "restore")
	e.ok("restore", "latest", "--target", target)
	if fileHash(t, filepath.Join(secretDir, "shadow")) != fileHash(t, filepath.Join(target, secretDir, "shadow")) {
		t.Fatal("the root-only file restored differs")
	}
}
