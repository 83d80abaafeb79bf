package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/minioserver"
)

// fill creates each repository and stores one data file in it.
func fill(t *testing.T, st Storage, repos ...string) {
	t.Helper()
	ctx := context.Background()
	for _, r := range repos {
		be, err := st.Create(ctx, r)
		if err != nil {
			t.Fatalf("create %s: %v", r, err)
		}
		buf := bytes.Repeat([]byte{1}, 100)
		sum := sha256.Sum256(buf)
		h := backend.Handle{Type: backend.Data, Name: hex.EncodeToString(sum[:])}
		if err := be.Save(ctx, h, backend.NewByteReader(buf)); err != nil {
			t.Fatalf("save in %s: %v", r, err)
		}
	}
}

// testPurge deletes one client's repositories and nothing of the clients
// whose names it is a prefix of, or of anyone else.
func testPurge(t *testing.T, st Storage) {
	ctx := context.Background()
	fill(t, st, "alice/home", "alice/db/main", "alicex/home", "bob/home")
	if err := st.Purge(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for client, want := range map[string][]string{
		"alice":  nil,
		"alicex": {"alicex/home"},
		"bob":    {"bob/home"},
	} {
		got, err := st.Repos(ctx, client)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("after purging alice, %s has %q, want %q", client, got, want)
		}
	}
	if n, err := st.Used(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("alice still stores %d bytes (%v)", n, err)
	}
	if n, err := st.Used(ctx, "bob"); err != nil || n == 0 {
		t.Errorf("bob stores %d bytes after alice's purge (%v)", n, err)
	}
	for _, bad := range []string{"", "..", "../bob", "a/b", ".hidden", "leases"} {
		if err := st.Purge(ctx, bad); err == nil {
			t.Errorf("purge of %q accepted", bad)
		}
	}
	if n, err := st.Used(ctx, "bob"); err != nil || n == 0 {
		t.Errorf("bob stores %d bytes after refused purges (%v)", n, err)
	}
	if w := st.ClientWhere("bob"); !strings.Contains(w, "bob") {
		t.Errorf("ClientWhere(bob) = %q", w)
	}
}

func TestPurgeLocal(t *testing.T) {
	st, err := Connect(context.Background(), t.TempDir(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	testPurge(t, st)
}

func TestPurgeS3(t *testing.T) {
	srv := minioserver.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", minioserver.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", minioserver.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	st, err := Connect(context.Background(), "", "s3:"+srv.Endpoint()+"/purge/servers", true)
	if err != nil {
		t.Fatal(err)
	}
	testPurge(t, st)
}

// testLostConfig: Open refuses a repository that holds data and no config
// (it lost its config), saying so, and OpenForAudit opens it; a
// repository created and not yet filled, or holding its config, opens.
func testLostConfig(t *testing.T, st Storage) {
	ctx := context.Background()
	if _, err := st.Create(ctx, "alice/new"); err != nil {
		t.Fatal(err)
	}
	whole, err := st.Create(ctx, "alice/whole")
	if err != nil {
		t.Fatal(err)
	}
	if err := whole.Save(ctx, backend.Handle{Type: backend.Config, Name: "config"}, backend.NewByteReader([]byte("a config"))); err != nil {
		t.Fatal(err)
	}
	fill(t, st, "alice/lost")
	pack := []byte("a pack")
	sum := sha256.Sum256(pack)
	if err := whole.Save(ctx, backend.Handle{Type: backend.Data, Name: hex.EncodeToString(sum[:])}, backend.NewByteReader(pack)); err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"alice/new", "alice/whole"} {
		if _, err := st.Open(ctx, repo); err != nil {
			t.Errorf("open %s: %v", repo, err)
		}
		if _, err := st.OpenForAudit(ctx, repo); err != nil {
			t.Errorf("open %s for the audit: %v", repo, err)
		}
	}
	if be, err := st.Open(ctx, "alice/lost"); err == nil || !strings.Contains(err.Error(), "holds files and no config") {
		t.Errorf("open of a repository that holds data and no config: %v, %v", be, err)
	}
	be, err := st.OpenForAudit(ctx, "alice/lost")
	if err != nil {
		t.Fatalf("open for the audit: %v", err)
	}
	if h, ok, err := HoldsData(ctx, be); err != nil || !ok || h.Type != backend.Data {
		t.Errorf("HoldsData: %v %v %v", h, ok, err)
	}
}

func TestLostConfigLocal(t *testing.T) {
	st, err := Connect(context.Background(), t.TempDir(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	testLostConfig(t, st)
}

func TestLostConfigS3(t *testing.T) {
	srv := minioserver.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", minioserver.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", minioserver.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	st, err := Connect(context.Background(), "", "s3:"+srv.Endpoint()+"/lost/servers", true)
	if err != nil {
		t.Fatal(err)
	}
	testLostConfig(t, st)
	// On S3 an init partway through another server (keys/, rosters/,
	// configs/ stored, no config yet) opens.
	ctx := context.Background()
	be, err := st.Create(ctx, "alice/init")
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("a key file")
	sum := sha256.Sum256(key)
	if err := be.Save(ctx, backend.Handle{Type: backend.Keys, Name: hex.EncodeToString(sum[:])}, backend.NewByteReader(key)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Open(ctx, "alice/init"); err != nil {
		t.Fatalf("open of a repository partway through its init: %v", err)
	}
}

// HoldsData looks under data/, index/ and snapshots/ only.
func TestHoldsData(t *testing.T) {
	ctx := context.Background()
	st, err := Connect(ctx, t.TempDir(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	be, err := st.Create(ctx, "alice/r")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []backend.FileType{backend.Keys, backend.Rosters, backend.Configs, backend.Locks, backend.Snapshots} {
		body := []byte("a file of " + string(typ))
		sum := sha256.Sum256(body)
		h := backend.Handle{Type: typ, Name: hex.EncodeToString(sum[:])}
		if err := be.Save(ctx, h, backend.NewByteReader(body)); err != nil {
			t.Fatal(err)
		}
		found, ok, err := HoldsData(ctx, be)
		if err != nil || ok != (typ == backend.Snapshots) || (ok && found != h) {
			t.Errorf("after storing %s: %v %v %v", typ, found, ok, err)
		}
	}
}
