// Package minioserver starts a real MinIO server on loopback for tests, with
// its data in a temporary directory, so S3 code is tested against the
// server it will meet rather than a mock.
//
// The binary is $MINIO_BIN, else `minio` on PATH, else $HOME/go/bin/minio
// (where .ci/run installs a pinned version). When none exists the test is
// skipped locally but fails when CI=true: a required suite must not pass by
// skipping.
package minioserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Test credentials of the server's root user.
const (
	AccessKey = "cairntestroot"
	SecretKey = "cairntestsecret-0123"
)

// Server is one MinIO process; it can be stopped and started again on the
// same address and data, to simulate an outage.
type Server struct {
	t       testing.TB
	bin     string
	dataDir string
	addr    string // host:port of the S3 API
	// certsDir holds public.crt and private.key when the server speaks TLS.
	certsDir string

	mu     sync.Mutex
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
}

// Binary finds the MinIO server binary, or returns "".
func Binary() string {
	if b := os.Getenv("MINIO_BIN"); b != "" {
		return b
	}
	if b, err := exec.LookPath("minio"); err == nil {
		return b
	}
	if home, err := os.UserHomeDir(); err == nil {
		b := filepath.Join(home, "go", "bin", "minio")
		if _, err := os.Stat(b); err == nil {
			return b
		}
	}
	return ""
}

// Start starts a server for t and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "no MinIO server: set MINIO_BIN, put minio on PATH, or run .ci/run to install it in $HOME/go/bin"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{t: t, bin: bin, dataDir: t.TempDir(), addr: freeAddr(t)}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Addr is the host:port of the S3 API.
func (s *Server) Addr() string { return s.addr }

// Endpoint is the server's URL, http[s]://127.0.0.1:PORT.
func (s *Server) Endpoint() string {
	if s.certsDir != "" {
		return "https://" + s.addr
	}
	return "http://" + s.addr
}

// Start starts the server if it is stopped and waits until it serves.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	console := freeAddr(s.t)
	args := []string{"server", "--quiet", "--address", s.addr, "--console-address", console}
	if s.certsDir != "" {
		args = append(args, "--certs-dir", s.certsDir)
	}
	cmd := exec.Command(s.bin, append(args, s.dataDir)...)
	cmd.SysProcAttr = procAttr()
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	s.out = new(syncBuffer)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start minio: %v", err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s.ready() {
			// Keep the reaper: Stop waits on it.
			go func() { err := <-exited; exited <- err }()
			s.exited = exited
			return
		}
		select {
		case err := <-exited:
			s.cmd = nil
			s.t.Fatalf("minio exited during startup: %v\n%s", err, s.out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("minio did not become ready in 60s:\n%s", s.out)
		}
	}
}

// ready reports whether the server answers a signed request and knows
// which access keys it does not have. The health endpoint says ready before
// the object layer is initialized, and the root user is served before the
// IAM subsystem is: until then an unknown key gets "IAM sub-system not
// initialized yet" (XMinioServerNotInitialized) instead of
// InvalidAccessKeyId, which tests of wrong credentials would see.
func (s *Server) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	client := func(key, secret string) (*minio.Client, error) {
		return minio.New(s.addr, &minio.Options{
			Creds:      credentials.NewStaticV4(key, secret, ""),
			Secure:     s.certsDir != "",
			Region:     "us-east-1",
			MaxRetries: 1,
			Transport:  s.transport(),
		})
	}
	root, err := client(AccessKey, SecretKey)
	if err != nil {
		return false
	}
	if _, err := root.ListBuckets(ctx); err != nil {
		return false
	}
	stranger, err := client("cairn-readiness-probe", "not-a-secret-of-this-server")
	if err != nil {
		return false
	}
	_, err = stranger.ListBuckets(ctx)
	return minio.ToErrorResponse(err).Code == "InvalidAccessKeyId"
}

// Stop kills the server (SIGKILL: an outage, not a shutdown) and waits for
// it to exit. The data directory stays for a later Start.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Port is the API port as a string.
func (s *Server) Port() string {
	_, p, _ := net.SplitHostPort(s.addr)
	if _, err := strconv.Atoi(p); err != nil {
		return ""
	}
	return p
}

// Log returns what the current or last server process printed.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// syncBuffer is written by the process's output copier while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Env returns the environment variables that give a client the root
// credentials, for processes such as the cairn binary or restic.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey}
}

func (s *Server) String() string { return fmt.Sprintf("minio at %s", s.addr) }
