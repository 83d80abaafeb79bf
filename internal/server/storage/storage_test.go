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
