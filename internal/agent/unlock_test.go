package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/crypto"
)

func writeKeyFile(t *testing.T, path, pw string) {
	t.Helper()
	buf, err := crypto.SealKeyFile([]byte(pw), crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}, crypto.RoleWriter, 1, "test", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKeyHolderUnlocksOnce: the holder asks for the password and derives
// the key once; later calls hand over the same key without the password,
// until the key file on disk changes. A wrong password is an error that
// names the key file.
func TestKeyHolderUnlocksOnce(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "writer.key")
	writeKeyFile(t, key, "pw")
	asked := 0
	pw := "pw"
	var logged []string
	logf := func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }
	k := &KeyHolder{KeyFile: key, Password: func() ([]byte, error) { asked++; return []byte(pw), nil }}
	h1, err := k.Unlock(logf)
	if err != nil {
		t.Fatal(err)
	}
	buf, _ := os.ReadFile(key)
	if _, _, err := crypto.OpenKeyFileWith(buf, h1.Key); err != nil || !h1.Matches(buf) {
		t.Fatalf("the key handed over does not open the key file: %v", err)
	}
	h2, err := k.Unlock(logf)
	if err != nil || h2 != h1 || asked != 1 || len(logged) != 1 {
		t.Fatalf("second unlock: %v, same key %v, password asked %d times, %d log lines", err, h2 == h1, asked, len(logged))
	}
	writeKeyFile(t, key, "pw")
	h3, err := k.Unlock(logf)
	if err != nil || h3 == h1 || asked != 2 || !strings.Contains(logged[1], "again") {
		t.Fatalf("after the key file changed: %v, password asked %d times, log %q", err, asked, logged)
	}
	writeKeyFile(t, key, "pw")
	pw = "wrong"
	if _, err := k.Unlock(logf); !errors.Is(err, crypto.ErrWrongPassword) || !strings.Contains(err.Error(), key) {
		t.Fatalf("wrong password: %v", err)
	}
	os.Remove(key)
	if _, err := k.Unlock(logf); err == nil || !strings.Contains(err.Error(), "key_file") {
		t.Fatalf("missing key file: %v", err)
	}
}

// TestExecBackuperHandsKey: with a key handed over the child gets
// --key-fd (after the commit gate's descriptor when there is one) and no
// password file.
func TestExecBackuperHandsKey(t *testing.T) {
	c := &Config{Repository: "/r", KeyFile: "/k", PasswordFile: "/p"}
	args, env, err := (&ExecBackuper{HandKey: true}).Args(c, Backup{Paths: []string{"/x"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(args, " "); got != "backup --key-fd 3 -- /x" {
		t.Errorf("args %s", got)
	}
	if got := strings.Join(env, " "); got != "CAIRN_REPOSITORY=/r CAIRN_KEY_FILE=/k" {
		t.Errorf("env %s", got)
	}
	gate := func(context.Context) error { return nil }
	args, _, _ = (&ExecBackuper{HandKey: true}).Args(c, Backup{Paths: []string{"/x"}, Gate: gate})
	if got := strings.Join(args, " "); got != "backup --commit-gate 3 --key-fd 4 -- /x" {
		t.Errorf("gated args %s", got)
	}
	_, env, _ = (&ExecBackuper{}).Args(c, Backup{Paths: []string{"/x"}})
	if got := strings.Join(env, " "); got != "CAIRN_REPOSITORY=/r CAIRN_KEY_FILE=/k CAIRN_PASSWORD_FILE=/p" {
		t.Errorf("env without a key handed over: %s", got)
	}
}

// TestRunUnlocksBeforeHooks: a key that cannot be unlocked fails the
// attempt before any hook or backup runs.
func TestRunUnlocksBeforeHooks(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "hook-ran")
	c := testConfig(t, "retries: {attempts: 1}\nhooks:\n  before:\n    - run: touch "+marker+"\n")
	fb := &fakeBackuper{clock: &VirtualClock{}}
	r := &Runner{Config: c, Backuper: fb, Clock: &VirtualClock{},
		Key: &KeyHolder{KeyFile: filepath.Join(dir, "missing.key"), Password: func() ([]byte, error) { return []byte("pw"), nil }}}
	if err := r.RunOnce(context.Background()); err == nil || !strings.Contains(err.Error(), "read key_file") {
		t.Fatalf("RunOnce: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the before hook ran")
	}
	if len(fb.calls) != 0 {
		t.Errorf("%d backups ran", len(fb.calls))
	}
}
