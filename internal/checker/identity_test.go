package checker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
)

// TestCheckFlagsImpostor: a writer bound to "web-1" stores one snapshot
// under its own label and one under the owner's "laptop" (direct mode:
// nothing refuses it). check names the impostor and its signer, and only
// it (R25).
func TestCheckFlagsImpostor(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	opts := repository.Options{KDF: &cheapKDF, CacheDir: t.TempDir()}
	owner, err := repository.Init(ctx, be, []byte("pw"), opts)
	must(t, err)
	wm, err := owner.NewKeyMaterial(crypto.RoleWriter)
	must(t, err)
	must(t, owner.AddWriter(ctx, wm, "web", "web-1"))
	wk, err := wm.Parse()
	must(t, err)
	cfg, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	must(t, err)
	w, err := repository.OpenWithKeys(ctx, be, wk, "", cfg, repository.Options{CacheDir: t.TempDir()})
	must(t, err)

	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("content"), 0o644))
	_, err = archiver.Backup(ctx, owner, []string{src}, archiver.Options{Host: "laptop"})
	must(t, err)
	_, err = archiver.Backup(ctx, w, []string{src}, archiver.Options{Host: "web-1"})
	must(t, err)
	evil, err := archiver.Backup(ctx, w, []string{src}, archiver.Options{Host: "laptop"})
	must(t, err)

	rep, err := checker.Check(ctx, owner, checker.Options{})
	must(t, err)
	if len(rep.Problems) != 1 {
		t.Fatalf("problems %v, want exactly the impostor", rep.Problems)
	}
	p := rep.Problems[0]
	if len(p.Snapshots) != 1 || p.Snapshots[0] != evil.Snapshot.ID.Short() ||
		!strings.Contains(p.Message, `impostor snapshot: host label "laptop" is not bound to its signer web`) ||
		!strings.Contains(p.Message, "only web-1") {
		t.Fatalf("problem %+v does not name the impostor and its signer", p)
	}
}
