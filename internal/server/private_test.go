package server

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/state"
)

// TestStateDBPrivate (issue 11 item 7): state.db holds client password
// hashes; in an existing 0755 data directory under a lax umask it and its
// -wal and -shm files are 0600, and an existing 0644 database is tightened.
func TestStateDBPrivate(t *testing.T) {
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := datadir.Init(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := data.State.AddClient(ctx, state.Client{Name: "bob", Hash: "$2a$10$hash", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	private := func(when string) {
		t.Helper()
		for _, name := range []string{datadir.StateFile, datadir.StateFile + "-wal", datadir.StateFile + "-shm", datadir.IdentityFile} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if os.IsNotExist(err) && name != datadir.StateFile && name != datadir.IdentityFile {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s is mode %#o, want 0600", when, name, fi.Mode().Perm())
			}
		}
	}
	private("after init")
	if _, err := os.Stat(filepath.Join(dir, datadir.StateFile+"-wal")); err != nil {
		t.Errorf("no -wal file to check while the database is open: %v", err)
	}
	data.State.Close()
	// A data directory an earlier version left 0644.
	if err := os.Chmod(filepath.Join(dir, datadir.StateFile), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err = datadir.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer data.State.Close()
	private("after reopening a 0644 database")
}
