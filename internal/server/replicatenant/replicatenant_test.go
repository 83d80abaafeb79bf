package replicatenant

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
)

func TestRepoRequest(t *testing.T) {
	for _, c := range []struct {
		method, target string
		ok             bool
	}{
		{"GET", "/r/?identity", true},
		{"POST", "/r/?create=true", true},
		{"POST", "/r/?writer-list", false},
		{"POST", "/r/?session=open", false},
		{"GET", "/r/", false},
	} {
		if got := RepoRequest(httptest.NewRequest(c.method, c.target, nil)); got != c.ok {
			t.Errorf("%s %s: allowed %v, want %v", c.method, c.target, got, c.ok)
		}
	}
	if !Stores(backend.Data) || !Stores(backend.Locks) || Stores(backend.FileType("writers")) {
		t.Error("Stores: data and locks are stored, an unknown type is not")
	}
}

func save(t *testing.T, be backend.Backend, h backend.Handle, b []byte) {
	t.Helper()
	if err := be.Save(context.Background(), h, backend.NewByteReader(b)); err != nil {
		t.Fatal(err)
	}
}

// ReplaceConfig takes the same config again without storing it, a stored
// config version, and refuses any other config.
func TestReplaceConfig(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	cfg := backend.Handle{Type: backend.Config, Name: "config"}
	old, next, other := []byte("config one"), []byte("config two"), []byte("not a version")
	save(t, be, cfg, old)
	save(t, be, backend.Handle{Type: backend.Configs, Name: backend.NameOf(next)}, next)

	if replaced, err := ReplaceConfig(ctx, be, cfg, backend.NameOf(old), backend.NewByteReader(old)); err != nil || replaced {
		t.Fatalf("the same config: replaced %v, %v", replaced, err)
	}
	if _, err := ReplaceConfig(ctx, be, cfg, backend.NameOf(other), backend.NewByteReader(other)); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("a config that is no stored version: %v", err)
	}
	if got, _ := backend.LoadAll(ctx, be, cfg); string(got) != string(old) {
		t.Fatalf("a refused config changed the stored one to %q", got)
	}
	if replaced, err := ReplaceConfig(ctx, be, cfg, backend.NameOf(next), backend.NewByteReader(next)); err != nil || !replaced {
		t.Fatalf("a stored version: replaced %v, %v", replaced, err)
	}
	if got, _ := backend.LoadAll(ctx, be, cfg); string(got) != string(next) {
		t.Fatalf("config after replacing: %q", got)
	}
}

// FirstConfig takes a stored config version, and any config while the
// replica keeps no version (restic's); it refuses a config that is none
// of the versions a replica keeps.
func TestFirstConfig(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	v1, forged := []byte("CRC1 config version 1"), []byte("CRC1 forged")
	if err := FirstConfig(ctx, be, backend.NameOf(forged)); err != nil {
		t.Fatalf("a replica without config versions: %v", err)
	}
	save(t, be, backend.Handle{Type: backend.Configs, Name: backend.NameOf(v1)}, v1)
	if err := FirstConfig(ctx, be, backend.NameOf(forged)); !errors.Is(err, ErrNotVersion) {
		t.Fatalf("a config that is no stored version: %v", err)
	}
	if err := FirstConfig(ctx, be, backend.NameOf(v1)); err != nil {
		t.Fatalf("a stored version: %v", err)
	}
}

// Deletable: locks and damaged files, never a sound file or the config.
func TestDeletable(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	b := []byte("pack bytes")
	sound := backend.Handle{Type: backend.Data, Name: backend.NameOf(b)}
	damaged := backend.Handle{Type: backend.Index, Name: backend.NameOf([]byte("index"))}
	lock := backend.Handle{Type: backend.Locks, Name: backend.NameOf([]byte("lock"))}
	save(t, be, sound, b)
	save(t, be, damaged, []byte("index"))
	if err := be.Corrupt(damaged, func(p []byte) []byte { return append(p, 'x') }); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		h           backend.Handle
		ok, damaged bool
	}{
		{sound, false, false},
		{damaged, true, true},
		{lock, true, false},
		{backend.Handle{Type: backend.Config, Name: "config"}, false, false},
	} {
		ok, dmg, err := Deletable(ctx, be, c.h)
		if err != nil || ok != c.ok || dmg != c.damaged {
			t.Errorf("%v: deletable %v damaged %v (%v), want %v %v", c.h, ok, dmg, err, c.ok, c.damaged)
		}
	}
	if _, _, err := Deletable(ctx, be, backend.Handle{Type: backend.Data, Name: backend.NameOf([]byte("absent"))}); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("an absent file: %v", err)
	}
}
