//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killServer SIGKILLs the server process pid and returns once it is
// dead (its sockets closed), which the end of the test then reaps.
func (s *serverEnv) killServer(t *testing.T, pid int) {
	t.Helper()
	if s.killed == nil {
		s.killed = map[int]bool{}
	}
	s.killed[pid] = true
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); <-tick.C {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		// The state follows the command name in parentheses.
		if err != nil || strings.HasPrefix(string(st[bytes.LastIndexByte(st, ')')+1:]), " Z") {
			return
		}
	}
	t.Fatalf("server %d still alive a minute after SIGKILL", pid)
}

func dirBytes(t *testing.T, dir string) (n int64, files int) {
	t.Helper()
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
				files++
			}
		}
		return nil
	})
	return n, files
}

// TestAgentResumesAfterServerKilled: the server is SIGKILLed while
// `cairn agent once` uploads; the first attempt fails, the retry (after
// the server is back) resumes: the repository ends up holding the data
// once, not the killed attempt's packs plus a second copy. With the
// server gone for good, the agent gives up after the configured attempts.
func TestAgentResumesAfterServerKilled(t *testing.T) {
	s := startCairnServer(t)
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "small"), 1000)
	cfg, ownerKey := setupClient(t, s, src)
	const files, size = 6, 8 << 20
	for i := range files {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("f%d", i)), size)
	}
	// After the failed attempt, its on_error hook waits until the test
	// has restarted the server: "waiting" says the hook is there, "go"
	// lets it (and the retry) on.
	waiting, goOn := filepath.Join(s.dir, "waiting"), filepath.Join(s.dir, "go")
	for _, f := range []string{waiting, goOn} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	body, _ := os.ReadFile(cfg)
	conf := strings.Replace(string(body), "attempts: 5", "attempts: 3", 1) + fmt.Sprintf(
		"hooks:\n  on_error:\n    - run: 'echo here > %s; cat %s > /dev/null'\n", waiting, goOn)
	os.WriteFile(cfg, []byte(conf), 0o600)

	repoData := filepath.Join(s.data, "repos", "alice", "main", "data")
	baseBytes, _ := dirBytes(t, repoData)
	clock := map[string]string{"CAIRN_AGENT_TEST_CLOCK": "2026-05-01T04:00:00Z"}
	cmd := s.command(clock, "agent", "once", "--config", cfg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(2 * time.Millisecond)
	// Kill the server once the backup has recorded a stored pack in its
	// journal (the cache's journals/*.journal): that is what a retry
	// resumes. A pack still in flight at the kill is sent again.
	journaled := func() bool {
		found := false
		filepath.WalkDir(filepath.Join(s.dir, "cache"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".journal") && filepath.Base(filepath.Dir(p)) == "journals" {
				if fi, err := d.Info(); err == nil && fi.Size() > 0 {
					found = true
				}
			}
			return nil
		})
		return found
	}
	for !journaled() {
		select {
		case err := <-done:
			t.Fatalf("agent once ended (%v) before a pack was stored:\n%s", err, out.String())
		case <-tick.C:
		}
	}
	tick.Stop()
	s.killServer(t, s.pid)
	stored, _ := dirBytes(t, repoData)
	stored -= baseBytes

	// The first attempt fails and waits in its on_error hook.
	hereC := make(chan error, 1)
	go func() { _, err := os.ReadFile(waiting); hereC <- err }()
	select {
	case err := <-done:
		t.Fatalf("agent once ended (%v) without a second attempt:\n%s", err, out.String())
	case <-hereC:
	}
	s.start(t, "--listen", s.addr)
	if err := os.WriteFile(goOn, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("agent once: %v\n%s", err, out.String())
	}
	log := out.String()
	for _, want := range []string{"run failed: cairn backup exited with status 1", "attempt 2 of 3", "run succeeded"} {
		if !strings.Contains(log, want) {
			t.Errorf("agent log lacks %q:\n%s", want, log)
		}
	}
	total, _ := dirBytes(t, repoData)
	total -= baseBytes
	retry := total - stored
	t.Logf("stored before the kill: %d bytes; the retry stored %d bytes more, for %d bytes of data", stored, retry, files*size)
	// Random data does not compress: without resuming, the retry would
	// store all of it again. A journaled pack holds about 16 MiB of it.
	if retry > int64(files*size-size) {
		t.Errorf("the retry stored %d bytes of %d: it uploaded again what was stored", retry, files*size)
	}
	target := filepath.Join(s.dir, "restore")
	if r := ownerRun(s, ownerKey, "restore", "latest", "--target", target); r.code != 0 {
		t.Fatalf("restore: %s", r.stderr)
	}
	for i := range files {
		f := fmt.Sprintf("f%d", i)
		if fileHash(t, filepath.Join(src, f)) != fileHash(t, filepath.Join(target, src, f)) {
			t.Errorf("restored %s differs", f)
		}
	}

	// The server gone for good: three attempts, then the agent gives up.
	os.WriteFile(cfg, []byte(conf[:strings.Index(conf, "hooks:")]), 0o600) // no waiting hook
	s.killServer(t, s.pid)
	r := s.runWith(clock, "agent", "once", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "every attempt failed (3 attempts, 10m0s apart)") || strings.Count(r.stderr, "run failed:") != 3 {
		t.Fatalf("with the server gone: exit %d\n%s", r.code, r.stderr)
	}
}
