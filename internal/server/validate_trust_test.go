package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/trust"
)

// TestTrustUploadValidation (R24): a client holding tenant credentials
// cannot store a roster or config the owner did not sign for this
// repository as a newer version, nor any key file in a server-mode
// repository; the owner's own newer versions go through, and the
// repository stays usable for the owner and a writer.
func TestTrustUploadValidation(t *testing.T) {
	ctx := context.Background()
	ts := startTest(t, Options{MaxUpload: 1 << 20})
	owner, be := ts.cairnClient("t")
	wm, err := owner.NewKeyMaterial(crypto.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.AddWriter(ctx, wm, "web-1"); err != nil {
		t.Fatalf("the owner's own roster refused: %v", err)
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	ownerSign := owner.Keys().OwnerSign

	roster := func(edit func(r *trust.Roster), key ed25519.PrivateKey) []byte {
		r := *owner.Roster()
		edit(&r)
		b, err := trust.MarshalRoster(&r, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	config := func(edit func(c *trust.Config), key ed25519.PrivateKey) []byte {
		c := *owner.Config()
		edit(&c)
		b, err := trust.MarshalConfig(&c, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	newer := func(r *trust.Roster) { r.Seq++; r.Writers = nil }
	older := func(r *trust.Roster) { r.Seq = 1; r.Writers = nil; r.Created = r.Created.Add(time.Second) }
	newerCfg := func(c *trust.Config) { c.Seq++ }
	keyFile, err := repository.ExportKey(wm, []byte("pw"), fastKDF, time.Now(), "web-1")
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		typ    backend.FileType
		body   []byte
		status int
		code   string
		say    string
	}{
		{"roster junk", backend.Rosters, []byte("junk"), 400, codeInvalid, "malformed"},
		{"roster by a stranger", backend.Rosters, roster(newer, stranger), 403, codeSigner, "owner"},
		{"roster of another repository", backend.Rosters, roster(func(r *trust.Roster) { newer(r); r.RepoID = bytes.Repeat([]byte{1}, 32) }, ownerSign), 400, codeInvalid, "another repository"},
		{"roster not newer", backend.Rosters, roster(older, ownerSign), 409, codeSequence, "not newer"},
		{"config version junk", backend.Configs, []byte("CRC1junk"), 400, codeInvalid, "malformed"},
		{"config version by a stranger", backend.Configs, config(newerCfg, stranger), 403, codeSigner, "owner"},
		{"config version not newer", backend.Configs, config(func(c *trust.Config) { c.Created = c.Created.Add(time.Second) }, ownerSign), 409, codeSequence, "not newer"},
		{"config version without this server", backend.Configs, config(func(c *trust.Config) { newerCfg(c); c.MetaRecipientsExtra = nil }, ownerSign), 400, codeInvalid, "not sealed to this server"},
		{"key file", backend.Keys, keyFile, 403, codeInvalid, "stores no key files"},
		{"key file junk", backend.Keys, []byte("junk"), 403, codeInvalid, "stores no key files"},
	}
	for _, c := range cases {
		before := count(t, be, c.typ)
		status, code, msg := ts.put("t", c.typ, c.body)
		if status != c.status || code != c.code || !strings.Contains(msg, c.say) {
			t.Errorf("%s: got %d %s %q, want %d %s %q", c.name, status, code, strings.TrimSpace(msg), c.status, c.code, c.say)
		}
		if count(t, be, c.typ) != before {
			t.Errorf("%s: something was stored", c.name)
		}
	}
	// The config itself is never replaced by a client's junk.
	cfgBefore := configOf(t, be)
	if status, _, _ := ts.do("bob", pwBob, "POST", "/bob/t/config", []byte("CRC1junk")); status < 400 {
		t.Fatalf("junk config replacement: %d", status)
	}
	if !bytes.Equal(configOf(t, be), cfgBefore) {
		t.Fatal("config replaced")
	}
	// validate refuses a config that is not a newer owner-signed one
	// even where the handler would let a replacement through.
	cr, err := ts.srv.verify.Repo(ctx, "bob/t", ts.localBackend(t, "bob/t"))
	if err != nil || cr == nil {
		t.Fatal(cr, err)
	}
	if err := ts.srv.verify.Validate(ctx, cr, ts.localBackend(t, "bob/t"), backend.Handle{Type: backend.Config, Name: "config"}, repohttp.MemUpload(cfgBefore)); err != nil {
		t.Errorf("the stored config again: %v", err)
	}
	oldCfg := config(func(c *trust.Config) { c.Created = c.Created.Add(time.Second) }, ownerSign)
	for _, body := range [][]byte{[]byte("junk"), oldCfg, config(newerCfg, stranger)} {
		if err := ts.srv.verify.Validate(ctx, cr, ts.localBackend(t, "bob/t"), backend.Handle{Type: backend.Config, Name: "config"}, repohttp.MemUpload(body)); err == nil {
			t.Errorf("config replacement %.8q accepted", body)
		}
	}

	// The owner's newer config version is accepted.
	if status, _, msg := ts.put("t", backend.Configs, config(newerCfg, ownerSign)); status != 200 {
		t.Fatalf("owner's config version refused: %d %s", status, msg)
	}
	// Owner and writer still work.
	ts.advance(2 * time.Hour)
	commit(t, owner, "owner")
	ts.advance(2 * time.Hour)
	wk, _ := wm.Parse()
	w, err := repository.OpenWithKeys(ctx, be, wk, "", cfgBefore, repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	commit(t, w, "writer")

	// Revoked: the writer's next snapshot is refused.
	if _, err := owner.RevokeWriter(ctx, ed25519.PublicKey(wk.SignerID())); err != nil {
		t.Fatalf("revoke through the server: %v", err)
	}
	w, err = repository.OpenWithKeys(ctx, be, wk, "", cfgBefore, repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ts.advance(2 * time.Hour)
	// Its pack is refused first: packs name their signer (R23).
	if _, err := commitErr(w, "after revocation"); err == nil || !strings.Contains(err.Error(), "revoked writer") {
		t.Fatalf("revoked writer's commit: %v", err)
	}
}

func configOf(t *testing.T, be backend.Backend) []byte {
	b, err := backend.LoadAll(context.Background(), be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// localBackend is the server's own storage of repository path.
func (ts *testServer) localBackend(t *testing.T, path string) backend.Backend {
	be, err := local.Open(filepath.Join(ts.data.Dir, datadir.ReposDir, filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// commitErr is commit that returns the error.
func commitErr(repo *repository.Repository, content string) (*repository.Snapshot, error) {
	ctx := context.Background()
	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	id, _, err := s.SaveBlob(ctx, blob.Data, []byte(content))
	if err != nil {
		return nil, err
	}
	return s.Commit(ctx, repository.CommitInput{Root: id, Refs: []snapshot.Ref{{Type: blob.Data, ID: id}}, Time: repo.Now()})
}
