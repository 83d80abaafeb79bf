package minioserver

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that records how Start gave up.
type recorder struct {
	testing.TB
	how string
}

type stop struct{}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.how = "fatal: " + fmt.Sprint(args...)
	panic(stop{})
}
func (r *recorder) Skip(args ...any) {
	r.how = "skip: " + fmt.Sprint(args...)
	panic(stop{})
}

func startWithout(t *testing.T, ci string) string {
	t.Setenv("MINIO_BIN", "")
	t.Setenv("PATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CI", ci)
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != (stop{}) {
				panic(p)
			}
		}()
		Start(r)
	}()
	return r.how
}

// TestMissingBinary: without MinIO a test skips locally and fails in CI.
func TestMissingBinary(t *testing.T) {
	if how := startWithout(t, ""); len(how) < 5 || how[:5] != "skip:" {
		t.Errorf("locally: got %q, want a skip", how)
	}
	if how := startWithout(t, "true"); len(how) < 6 || how[:6] != "fatal:" {
		t.Errorf("with CI=true: got %q, want a failure", how)
	}
}

func TestStartStop(t *testing.T) {
	s := Start(t)
	if !s.ready() {
		t.Fatal("not ready after Start")
	}
	s.Stop()
	if s.ready() {
		t.Fatal("ready after Stop")
	}
	s.Start()
	if !s.ready() {
		t.Fatal("not ready after a restart")
	}
}
