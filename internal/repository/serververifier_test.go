package repository

import (
	"context"
	"crypto/ed25519"
	"testing"

	"filippo.io/age"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
)

// TestServerVerifier: a server-mode repository's stored config gives the
// server a verifier; one for another server does not; the repository's
// own roster and config pass, tampered ones and foreign ones do not, and
// key files are judged by their header.
func TestServerVerifier(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	srvID, _ := age.GenerateX25519Identity()
	seed := make([]byte, 32)
	seed[0] = 9
	pub := ServerPublic{MetaRecipient: srvID.Recipient().String(), CoordPub: ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)}
	repo, keyFile, err := InitServerMode(ctx, be, []byte("pw"), pub, testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	if _, err := NewServerVerifier(raw, other.String(), seed); err == nil {
		t.Fatal("a server the repository does not seal to got a verifier")
	}
	if err := CheckServerConfig(raw, other.String(), seed); err == nil {
		t.Fatal("a config not sealed to this server passed")
	}
	if err := CheckServerConfig(raw, srvID.String(), seed); err != nil {
		t.Fatal(err)
	}
	v, err := NewServerVerifier(raw, srvID.String(), seed)
	if err != nil {
		t.Fatal(err)
	}
	if id := v.RepoID(); string(id[:]) != string(repo.Config().RepoID) || !v.KeptOnServer() {
		t.Fatalf("verifier: repository ID %x, kept on server %v", id, v.KeptOnServer())
	}
	if seq, err := v.ConfigSeq(raw); err != nil || seq != repo.Config().Seq {
		t.Fatalf("config seq %d, %v", seq, err)
	}
	if err := v.SealsToServer(raw); err != nil {
		t.Fatal(err)
	}
	var roster []byte
	be.List(ctx, backend.Rosters, func(fi backend.FileInfo) error {
		roster, _ = backend.LoadAll(ctx, be, fi.Handle)
		return nil
	})
	if seq, err := v.RosterSeq(roster); err != nil || seq != repo.Roster().Seq {
		t.Fatalf("roster seq %d, %v", seq, err)
	}
	bad := append([]byte(nil), roster...)
	bad[len(bad)-1] ^= 1
	if _, err := v.RosterSeq(bad); err == nil {
		t.Fatal("a tampered roster passed")
	}
	// Another repository's config (another owner, another ID) is refused.
	be2 := mem.New()
	if _, _, err := InitServerMode(ctx, be2, []byte("pw"), pub, testOpts(t)); err != nil {
		t.Fatal(err)
	}
	raw2, _ := backend.LoadAll(ctx, be2, backend.Handle{Type: backend.Config, Name: "config"})
	if _, err := v.ConfigSeq(raw2); err == nil {
		t.Fatal("another repository's config passed")
	}
	if err := CheckStoredKeyFile(keyFile); err != nil {
		t.Fatalf("a key file: %v", err)
	}
	if err := CheckStoredKeyFile([]byte("not a key file")); err == nil {
		t.Fatal("garbage passed as a key file")
	}
}
