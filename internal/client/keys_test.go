package client

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
)

// TestExportKey: an exported writer key lands in a new 0600 file, is in
// the roster bound to its label, and unlocks; an existing file is never
// overwritten; a server key is enrolled as a coordinator; when enrolment
// fails (a key that may not enrol) the file is gone again.
func TestExportKey(t *testing.T) {
	ctx := context.Background()
	owner := testRepo(t)
	dir := t.TempDir()
	wm, err := owner.NewKeyMaterial(crypto.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "writer.key")
	hosts, err := ExportKey(ctx, owner, wm, []byte("wpw"), "web-1", nil, path)
	if err != nil || !slices.Equal(hosts, []string{"web-1"}) {
		t.Fatalf("export writer: %v, %v", hosts, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	wk, _ := wm.Parse()
	ro := owner.Roster()
	if len(ro.Writers) != 1 || !bytes.Equal(ro.Writers[0].ID, wk.SignerID()) || ro.Writers[0].Name != "web-1" {
		t.Errorf("roster writers: %+v", ro.Writers)
	}
	w, err := repository.OpenKeyFile(ctx, owner.Backend(), path, []byte("wpw"), repository.Options{CacheDir: t.TempDir()})
	if err != nil || w.Keys().Role != crypto.RoleWriter {
		t.Fatalf("the exported key does not unlock as a writer: %v", err)
	}
	before, _ := os.ReadFile(path)
	other, _ := owner.NewKeyMaterial(crypto.RoleWriter)
	if _, err := ExportKey(ctx, owner, other, []byte("x"), "web-2", []string{"a"}, path); !errors.Is(err, os.ErrExist) {
		t.Errorf("export over an existing file: got %v, want ErrExist", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) || len(owner.Roster().Writers) != 1 {
		t.Error("a refused export changed the file or the roster")
	}

	sm, _ := owner.NewKeyMaterial(crypto.RoleServer)
	if _, err := ExportKey(ctx, owner, sm, []byte("spw"), "srv", nil, filepath.Join(dir, "server.key")); err != nil {
		t.Fatal(err)
	}
	if n := len(owner.Roster().Coordinators); n != 1 {
		t.Errorf("%d coordinators after exporting a server key", n)
	}

	// A writer's repository may not enrol anybody: nothing stays behind.
	cfg, err := backend.LoadAll(ctx, owner.Backend(), backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	asWriter, err := repository.OpenWithKeys(ctx, owner.Backend(), wk, "", cfg, repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	third, _ := owner.NewKeyMaterial(crypto.RoleWriter)
	lost := filepath.Join(dir, "third.key")
	if _, err := ExportKey(ctx, asWriter, third, []byte("x"), "web-3", nil, lost); !errors.Is(err, crypto.ErrNeedsOwner) {
		t.Errorf("enrolling with a writer key: %v", err)
	}
	if _, err := os.Stat(lost); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the key file of a failed enrolment is left: %v", err)
	}
	// Only the two exported keys remain: no temporary files.
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("key directory holds %d entries, want 2", len(ents))
	}
}
