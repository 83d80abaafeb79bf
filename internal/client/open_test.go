package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/repository"
)

// localRepo makes a repository with password "pw" in a new directory.
func localRepo(t *testing.T) (dir string, keyID string) {
	t.Helper()
	ctx := context.Background()
	dir = filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(ctx, be, []byte("pw"), repository.Options{KDF: &testKDF, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return dir, repo.KeyID()
}

func password(pw string, asked *int) func() ([]byte, error) {
	return func() ([]byte, error) { *asked++; return []byte(pw), nil }
}

// TestOpen: the right password opens, with or without a cache; a wrong
// one is ErrNoKey with what to do; a missing repository is
// ErrNoRepository, and nobody is asked for a password for it; a key file
// given unlocks with that file only.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	// No kept owner keys from the machine running the test.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir, keyID := localRepo(t)
	asked := 0
	for _, cache := range []string{"", t.TempDir()} {
		repo, err := Open(ctx, Options{Location: dir, Password: password("pw", &asked), CacheDir: cache})
		if err != nil {
			t.Fatalf("open (cache %q): %v", cache, err)
		}
		if !repo.CanReadContent() {
			t.Errorf("the owner's password opened a %s key", repo.Keys().Role)
		}
	}
	_, err := Open(ctx, Options{Location: dir, Password: password("wrong", &asked)})
	if !errors.Is(err, repository.ErrNoKey) || !strings.Contains(err.Error(), "wrong password for repository") || ExitCode(ctx, err) != ExitWrongPassword {
		t.Errorf("wrong password: %v", err)
	}
	asked = 0
	_, err = Open(ctx, Options{Location: filepath.Join(dir, "nothing"), Password: password("pw", &asked)})
	if !errors.Is(err, repository.ErrNoRepository) || ExitCode(ctx, err) != ExitNoRepository || asked != 0 {
		t.Errorf("missing repository: %v (password asked %d times)", err, asked)
	}
	keyFile := filepath.Join(dir, "keys", keyID)
	if _, err := Open(ctx, Options{Location: dir, Password: password("pw", &asked), KeyFile: keyFile}); err != nil {
		t.Errorf("with the key file: %v", err)
	}
	_, err = Open(ctx, Options{Location: dir, Password: password("wrong", &asked), KeyFile: keyFile})
	if !errors.Is(err, repository.ErrNoKey) || !strings.Contains(err.Error(), "wrong password for key file") {
		t.Errorf("key file, wrong password: %v", err)
	}
}

// TestOpenNamesResticRepository: a location whose keys/ holds restic key
// files is named as one (exit 10), not reported as a wrong password.
func TestOpenNamesResticRepository(t *testing.T) {
	ctx := context.Background()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	for _, d := range []string{"keys", "data", "index", "snapshots", "locks"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte("not a cairn config"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := `{"kdf":"scrypt","N":32768,"r":8,"p":1,"salt":"c2FsdA==","data":"ZGF0YQ=="}`
	if err := os.WriteFile(filepath.Join(dir, "keys", strings.Repeat("ab", 32)), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	asked := 0
	_, err := Open(ctx, Options{Location: dir, Password: password("pw", &asked)})
	if ExitCode(ctx, err) != ExitNoRepository || !strings.Contains(fmtErr(err), "it is a restic repository") {
		t.Errorf("restic repository: %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestDiskFree: a directory's disk has free space; a missing one is an
// error naming it.
func TestDiskFree(t *testing.T) {
	dir := t.TempDir()
	if n, err := DiskFree("local:" + dir); err != nil || n == 0 {
		t.Errorf("free space of %s: %d, %v", dir, n, err)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := DiskFree(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("free space of a missing directory: %v", err)
	}
}
