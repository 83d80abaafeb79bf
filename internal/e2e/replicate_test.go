//go:build linux

package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/replicate"
)

// TestReplicaIsACompleteRepository copies a repository the real binary
// made with the replication engine and proves the copy stands alone:
// check --read-data is clean and every snapshot restores byte-identically
// from the copy; a corrupt pack on the primary is refused, not copied, and
// holds the newer snapshot back; a forget and prune on the primary is not
// mirrored.
func TestReplicaIsACompleteRepository(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.ok("init")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(src, "a"), 3<<20)
	writeRandom(t, filepath.Join(src, "sub", "b"), 200<<10)
	e.ok("backup", "--tag", "one", src)
	first := contentHashes(t, src)
	writeRandom(t, filepath.Join(src, "sub", "c"), 1<<20)
	e.ok("backup", "--tag", "two", src)
	second := contentHashes(t, src)

	replicaDir := filepath.Join(t.TempDir(), "replica")
	primary, err := local.Open(e.repo)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := local.Create(ctx, replicaDir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := replicate.Sync(ctx, primary, replica, replicate.Options{SpoolDir: t.TempDir()})
	if err != nil || st.Snapshots != 2 {
		t.Fatalf("sync: %+v %v", st, err)
	}
	// Read the replica as a machine with nothing but the replica and the
	// password would: its own cache and home. (From the machine that backs
	// up, a replica that lags behind is indistinguishable from a rollback,
	// and check says so.)
	elsewhere := t.TempDir()
	onReplica := map[string]string{"CAIRN_REPOSITORY": replicaDir, "HOME": elsewhere, "XDG_CACHE_HOME": filepath.Join(elsewhere, "cache")}
	if r := e.runWith(onReplica, "check", "--read-data"); r.code != 0 {
		t.Fatalf("check of the replica: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for tag, want := range map[string]map[string][32]byte{"one": first, "two": second} {
		target := filepath.Join(t.TempDir(), tag)
		if r := e.runWith(onReplica, "restore", "latest", "--tag", tag, "--target", target); r.code != 0 {
			t.Fatalf("restore %s from the replica: exit %d\n%s", tag, r.code, r.stderr)
		}
		got := contentHashes(t, filepath.Join(target, src))
		if len(got) != len(want) {
			t.Fatalf("restore %s: %d files, want %d", tag, len(got), len(want))
		}
		for p, h := range want {
			if got[p] != h {
				t.Fatalf("restore %s: %s differs", tag, p)
			}
		}
	}

	// A third backup whose new pack rots on the primary before it is
	// copied: the copy refuses it and keeps the snapshot back.
	writeRandom(t, filepath.Join(src, "d"), 2<<20)
	e.ok("backup", "--tag", "three", src)
	var newest backend.FileInfo
	_ = primary.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		if _, err := replica.Stat(ctx, fi.Handle); errors.Is(err, backend.ErrNotFound) && fi.Size > newest.Size {
			newest = fi
		}
		return nil
	})
	if newest.Name == "" {
		t.Fatal("the third backup stored no new pack")
	}
	packPath := filepath.Join(e.repo, "data", newest.Name[:2], newest.Name)
	b, err := os.ReadFile(packPath)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(packPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err = replicate.Sync(ctx, primary, replica, replicate.Options{SpoolDir: t.TempDir()})
	if !errors.Is(err, replicate.ErrCorruptSource) || st.Snapshots != 0 {
		t.Fatalf("sync with a rotten pack: %+v %v", st, err)
	}
	if r := e.runWith(onReplica, "check", "--read-data"); r.code != 0 {
		t.Fatalf("the replica is not a clean repository after a refused pack: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The primary forgets and prunes; the replica keeps what it has.
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(packPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := replicate.Sync(ctx, primary, replica, replicate.Options{SpoolDir: t.TempDir()}); err != nil {
		t.Fatalf("sync after healing: %v", err)
	}
	e.ok("forget", "--keep-last", "1", "--prune", "--grace", "0s")
	if _, err := replicate.Sync(ctx, primary, replica, replicate.Options{SpoolDir: t.TempDir()}); err != nil {
		t.Fatalf("sync after the primary's prune: %v", err)
	}
	target := filepath.Join(t.TempDir(), "one-again")
	if r := e.runWith(onReplica, "restore", "latest", "--tag", "one", "--target", target); r.code != 0 {
		t.Fatalf("the replica lost a snapshot the primary forgot: exit %d\n%s", r.code, r.stderr)
	}
}
