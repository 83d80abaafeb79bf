package repository

import (
	"context"
	"crypto/ed25519"
	"testing"

	"filippo.io/age"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/pack"
)

// TestServerModeMetadataOpensForBoth: in server mode metadata is sealed
// to the owner's and the server's metadata identities, the owner key is
// not in the repository (R4), and the server's coordinator is enrolled.
func TestServerModeMetadataOpensForBoth(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	srvID, _ := age.GenerateX25519Identity()
	seed := make([]byte, 32)
	seed[0] = 7
	coord := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	pub := ServerPublic{MetaRecipient: srvID.Recipient().String(), CoordPub: coord}
	repo, keyFile, err := InitServerMode(ctx, be, []byte("pw"), pub, testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	be.List(ctx, backend.Keys, func(backend.FileInfo) error { n++; return nil })
	if n != 0 || len(keyFile) == 0 {
		t.Fatalf("%d key files in the repository", n)
	}
	if !repo.Roster().IsCoordinator(coord) {
		t.Fatal("server coordinator not enrolled")
	}
	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SaveBlob(ctx, blob.Data, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var idx []byte
	be.List(ctx, backend.Index, func(fi backend.FileInfo) error {
		idx, _ = backend.LoadAll(ctx, be, fi.Handle)
		return nil
	})
	for name, id := range map[string]age.Identity{"owner": repo.Keys().MetaIdentity, "server": srvID} {
		plain, err := crypto.Open(idx, id, crypto.ErrNeedsMetadata)
		if err != nil {
			t.Fatalf("%s cannot open the index: %v", name, err)
		}
		if _, err := pack.ParseIndex(plain); err != nil {
			t.Fatal(err)
		}
	}
	// The server's keys, built from the config, seal to both as well.
	sk, err := ServerKeys(repo.Config(), srvID.String(), seed)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := crypto.Seal([]byte("x"), sk.MetaRecipient)
	if _, err := crypto.Open(ct, repo.Keys().MetaIdentity, crypto.ErrNeedsMetadata); err != nil {
		t.Fatalf("owner cannot open what the server seals: %v", err)
	}
	other, _ := age.GenerateX25519Identity()
	if _, err := ServerKeys(repo.Config(), other.String(), seed); err == nil {
		t.Fatal("a server the repository is not sealed to got keys")
	}
	// The owner key file opens the repository from outside it.
	cfg, _ := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if c, err := PeekConfig(cfg); err != nil || string(c.RepoID) != string(repo.Config().RepoID) {
		t.Fatalf("peek config: %v", err)
	}
}
