//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// serverEnv is a real `cairn server run` process on loopback.
type serverEnv struct {
	*env
	data, addr, metrics string
	ui                  string       // the status page's address, with --ui-listen
	pprof               string       // the profiles' address, with --pprof-listen
	pid                 int          // of the server process start ran last
	killed              map[int]bool // server processes a test SIGKILLed on purpose
}

func startCairnServer(t *testing.T) *serverEnv {
	t.Helper()
	return runCairnServer(t)
}

// runCairnServer runs `cairn server init` with initArgs, adds clients
// alice and bob, and starts `cairn server run` with its API and metrics on
// loopback; it stops the server at the end of the test.
func runCairnServer(t *testing.T, initArgs ...string) *serverEnv {
	t.Helper()
	e := newEnv(t)
	s := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = s.data
	e.ok(append([]string{"server", "init"}, initArgs...)...)
	for _, c := range []string{"alice", "bob"} {
		pw := filepath.Join(e.dir, c+".pass")
		os.WriteFile(pw, []byte(c+"-secret-pw\n"), 0o600)
		e.ok("server", "client", "add", c, "--password-file", pw)
	}
	s.start(t)
	return s
}

// start runs `cairn server run` on loopback with extra flags, waits until
// it reports its addresses, and stops it (SIGINT, at most a minute) at
// the end of the test. It returns the server's process ID.
func (s *serverEnv) start(t *testing.T, runArgs ...string) int {
	t.Helper()
	args := append([]string{"server", "run", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, runArgs...)
	cmd := s.command(nil, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(s.dir, "server.log"))
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && !s.killed[cmd.Process.Pid] {
				t.Errorf("server exit: %v", err)
			}
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Errorf("server did not stop within a minute of SIGINT")
			<-done
		}
		logf.Close()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if a, ok := strings.CutPrefix(line, "cairn server listening on http://"); ok {
			s.addr = a
		}
		if a, ok := strings.CutPrefix(line, "cairn server listening on https://"); ok {
			s.addr = a
		}
		if a, ok := strings.CutPrefix(line, "status page on http://"); ok {
			s.ui = strings.TrimSuffix(a, "/ui/")
		}
		if a, ok := strings.CutPrefix(line, "profiles on http://"); ok {
			s.pprof = strings.TrimSuffix(a, "/debug/pprof/")
		}
		if a, ok := strings.CutPrefix(line, "metrics on http://"); ok {
			s.metrics = strings.TrimSuffix(a, "/metrics")
		}
		if strings.HasPrefix(line, "server fingerprint:") {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if s.addr == "" || s.metrics == "" {
		t.Fatalf("server did not report its addresses; log:\n%s", s.log())
	}
	s.pid = cmd.Process.Pid
	return s.pid
}

func (s *serverEnv) url(client, repo string) string {
	return "rest:http://" + client + ":" + client + "-secret-pw@" + s.addr + "/" + client + "/" + repo
}

func (s *serverEnv) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

// restic runs the restic binary bin (a path, or a name on PATH).
func restic(t *testing.T, ctx context.Context, bin, dir, repo string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-r", repo, "--no-cache"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD=restic-pw", "HOME="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// resticBins is $CAIRN_TEST_RESTIC split at colons and commas: the restic
// binaries TestServerWithRestic runs, by default just "restic" from PATH.
func resticBins() []string {
	bins := strings.FieldsFunc(os.Getenv("CAIRN_TEST_RESTIC"), func(r rune) bool { return r == ':' || r == ',' })
	if len(bins) == 0 {
		return []string{"restic"}
	}
	return bins
}

// missingTool skips t for a tool that is not installed, or fails it when
// $CI is "true" (.ci/run sets it): there every tool is installed, and a
// skip would pass a test that never ran.
func missingTool(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestServerWithRestic runs once per restic binary, as a subtest named
// after its version ("0.14.0"); a binary that is not there is skipped.
func TestServerWithRestic(t *testing.T) {
	for _, bin := range resticBins() {
		path, err := exec.LookPath(bin)
		if err != nil {
			t.Run(filepath.Base(bin), func(t *testing.T) {
				missingTool(t, fmt.Sprintf("restic %q is not installed (.ci/run installs Debian's): %v", bin, err))
			})
			continue
		}
		out, err := exec.Command(path, "version").Output()
		f := strings.Fields(string(out)) // restic 0.14.0 compiled with go1.19.8 on linux/amd64
		if err != nil || len(f) < 2 {
			t.Fatalf("%s version: %v\n%s", path, err, out)
		}
		t.Run(f[1], func(t *testing.T) { testServerWithRestic(t, path) })
	}
}

func testServerWithRestic(t *testing.T, bin string) {
	s := startCairnServer(t)
	ctx := context.Background()
	src := map[string]string{}
	for _, c := range []string{"alice", "bob"} {
		dir := filepath.Join(s.dir, "src-"+c)
		os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
		writeRandom(t, filepath.Join(dir, "big"), 5<<20)
		writeRandom(t, filepath.Join(dir, "sub", "small"), 1000)
		src[c] = dir
		if out, err := restic(t, ctx, bin, s.dir, s.url(c, "restic"), "init"); err != nil {
			t.Fatalf("restic init %s: %v\n%s", c, err, out)
		}
	}
	// Two tenants back up at the same time.
	var wg sync.WaitGroup
	for _, c := range []string{"alice", "bob"} {
		wg.Go(func() {
			if out, err := restic(t, ctx, bin, s.dir, s.url(c, "restic"), "backup", src[c]); err != nil {
				t.Errorf("restic backup %s: %v\n%s", c, err, out)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, c := range []string{"alice", "bob"} {
		out, err := restic(t, ctx, bin, s.dir, s.url(c, "restic"), "snapshots", "--json")
		if err != nil || strings.Count(out, `"id"`) != 1 {
			t.Fatalf("restic snapshots %s: %v\n%s", c, err, out)
		}
		if out, err := restic(t, ctx, bin, s.dir, s.url(c, "restic"), "check", "--read-data"); err != nil || !strings.Contains(out, "no errors were found") {
			t.Fatalf("restic check %s: %v\n%s", c, err, out)
		}
		target := filepath.Join(s.dir, "restore-"+c)
		if out, err := restic(t, ctx, bin, s.dir, s.url(c, "restic"), "restore", "latest", "--target", target); err != nil {
			t.Fatalf("restic restore %s: %v\n%s", c, err, out)
		}
		want, got := contentHashes(t, src[c]), contentHashes(t, filepath.Join(target, src[c]))
		if len(want) != 2 || len(got) != len(want) {
			t.Fatalf("restored %d files, want %d", len(got), len(want))
		}
		for p, h := range want {
			if got[p] != h {
				t.Fatalf("%s: %s differs after restore", c, p)
			}
		}
	}
	// bob cannot read alice's repository.
	if out, err := restic(t, ctx, bin, s.dir, strings.Replace(s.url("bob", "restic"), "/bob/restic", "/alice/restic", 1), "snapshots"); err == nil {
		t.Fatalf("bob listed alice's snapshots:\n%s", out)
	}
	// forget is refused in append-only mode (restic 0.14 retries the 403,
	// so give it a deadline); the snapshot survives.
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	out, err := restic(t, fctx, bin, s.dir, s.url("alice", "restic"), "forget", "latest")
	cancel()
	if err == nil {
		t.Fatalf("forget in append-only mode succeeded:\n%s", out)
	}
	restic(t, ctx, bin, s.dir, s.url("alice", "restic"), "unlock")
	if out, err := restic(t, ctx, bin, s.dir, s.url("alice", "restic"), "snapshots", "--json"); err != nil || strings.Count(out, `"id"`) != 1 {
		t.Fatalf("after refused forget: %v\n%s", err, out)
	}
	if !strings.Contains(s.log(), "code=append-only") {
		t.Fatal("the refused delete was not logged")
	}
	// Each client's last backup shows in the CLI and in /metrics.
	show := s.ok("server", "client", "show", "alice").stdout
	if !strings.Contains(show, "last backup:") || strings.Contains(show, "never") {
		t.Fatalf("client show:\n%s", show)
	}
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range []string{"alice", "bob"} {
		if !strings.Contains(string(body), `cairn_server_client_last_snapshot_timestamp_seconds{client="`+c+`"} 1.`) {
			t.Fatalf("metrics lack %s's last snapshot:\n%s", c, body)
		}
	}
}

func TestServerWithCairnClient(t *testing.T) {
	s := startCairnServer(t)
	src := filepath.Join(s.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "f"), 3<<20)
	repo := s.url("bob", "laptop")
	s.vars["XDG_CONFIG_HOME"] = filepath.Join(s.dir, "config")
	s.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t))
	s.ok("-r", repo, "backup", src)
	s.ok("-r", repo, "check", "--read-data")
	target := filepath.Join(s.dir, "restore")
	s.ok("-r", repo, "restore", "latest", "--target", target)
	if fileHash(t, filepath.Join(target, src, "f")) != fileHash(t, filepath.Join(src, "f")) {
		t.Fatal("restored file differs")
	}
	// Plain http to a remote host is refused without --insecure (R21).
	r := s.run("-r", "rest:http://bob:x@192.0.2.1:1/bob/laptop", "snapshots")
	if r.code == 0 || !strings.Contains(r.stderr, "--insecure") {
		t.Fatalf("remote http accepted: %d %s", r.code, r.stderr)
	}
	if !strings.Contains(s.ok("server", "client", "list").stdout, "bob") {
		t.Fatal("client list")
	}
}
