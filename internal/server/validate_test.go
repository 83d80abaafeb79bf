package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/pack"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

var fastKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

// cairnClient creates a server-mode cairn repository /bob/<name> through
// the REST backend, as `cairn init` does after the fingerprint check.
func (ts *testServer) cairnClient(name string) (*repository.Repository, backend.Backend) {
	t := ts.t
	t.Helper()
	ctx := context.Background()
	u, _ := url.Parse(ts.url + "/bob/" + name + "/")
	u.User = url.UserPassword("bob", pwBob)
	pub, err := FetchIdentity(ctx, nil, u)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := ts.data.Identity.Fingerprint()
	if pub.Fingerprint() != fp {
		t.Fatalf("published fingerprint %s, server's %s", pub.Fingerprint(), fp)
	}
	be, err := rest.Create(ctx, rest.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	repo, _, err := repository.InitServerMode(ctx, be, []byte("pw"), pub, repository.Options{KDF: &fastKDF, CacheDir: t.TempDir(), Now: ts.nowFn})
	if err != nil {
		t.Fatal(err)
	}
	return repo, be
}

func (ts *testServer) nowFn() time.Time { ts.mu.Lock(); defer ts.mu.Unlock(); return ts.now }

// commit makes a snapshot of one data blob through the server.
func commit(t *testing.T, repo *repository.Repository, content string) *repository.Snapshot {
	t.Helper()
	ctx := context.Background()
	s, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := s.SaveBlob(ctx, blob.Data, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Commit(ctx, repository.CommitInput{Root: id, Refs: []snapshot.Ref{{Type: blob.Data, ID: id}}, Time: repo.Now()})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return snap
}

func count(t *testing.T, be backend.Backend, typ backend.FileType) int {
	n := 0
	if err := be.List(context.Background(), typ, func(backend.FileInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// put uploads body under its hash; it returns status, error code, body.
func (ts *testServer) put(repo string, typ backend.FileType, body []byte) (int, string, string) {
	return ts.do("bob", pwBob, "POST", "/bob/"+repo+"/"+string(typ)+"/"+backend.NameOf(body), body)
}

// TestUploadValidation is one hostile client per refusal (R15): each is
// refused with a clear 4xx, logged, and nothing is stored.
func TestUploadValidation(t *testing.T) {
	ts := startTest(t, Options{MaxUpload: 1 << 20})
	repo, be := ts.cairnClient("v")
	first := commit(t, repo, "first")
	srvKeys, err := repository.ServerKeys(repo.Config(), ts.data.Identity.MetaIdentity, ts.data.Identity.SignSeed)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	var packID blob.ID
	be.List(context.Background(), backend.Data, func(fi backend.FileInfo) error { packID, _ = blob.ParseID(fi.Name); return nil })

	otherPack := func() []byte {
		w := pack.NewWriter(0)
		w.Add(blob.Data, blob.ID{1}, []byte("sealed-bytes"), w.AddSlot(pack.Slot{Kind: pack.SlotOwner, Wrap: crypto.WrapHybrid, Data: []byte("slot")}))
		buf, _, err := w.Finish(other.Recipient())
		if err != nil {
			t.Fatal(err)
		}
		return buf
	}
	ownHeaderPack := func() []byte {
		w := pack.NewWriter(0)
		w.Add(blob.Data, blob.ID{2}, []byte("sealed-bytes"), w.AddSlot(pack.Slot{Kind: pack.SlotOwner, Wrap: crypto.WrapHybrid, Data: []byte("slot")}))
		buf, _, _ := w.Finish(srvKeys.MetaRecipient)
		return buf
	}
	seal := func(plain []byte, r age.Recipient) []byte {
		b, err := crypto.Seal(plain, r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	wrongPack := ownHeaderPack()
	_, wrongHdr, err := packHeader(wrongPack, srvKeys)
	if err != nil {
		t.Fatal(err)
	}

	// Snapshot variants, re-signed from the first one.
	raw, _ := backend.LoadAll(context.Background(), be, backend.Handle{Type: backend.Snapshots, Name: first.ID.String()})
	variant := func(edit func(f *snapshot.File), key ed25519.PrivateKey) []byte {
		f, err := snapshot.ParseFile(raw)
		if err != nil {
			t.Fatal(err)
		}
		edit(f)
		f.Sign(key)
		return f.Marshal()
	}
	owner := repo.Keys().Sign
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	next := func(f *snapshot.File) { f.Statement.Seq = 2; f.Statement.Prev = first.File.Statement.Hash() }
	misSigned := variant(next, owner)
	misSigned[len(misSigned)-len(variant(next, owner))+8+snapshot.StatementSize+3] ^= 1

	cases := []struct {
		name   string
		typ    backend.FileType
		body   []byte
		status int
		code   string
		say    string
	}{
		{"pack garbage", backend.Data, []byte(strings.Repeat("x", 100)), 400, codeInvalid, "bad trailer"},
		{"pack sealed elsewhere", backend.Data, otherPack(), 400, codeInvalid, "sealed to this server"},
		{"index sealed elsewhere", backend.Index, seal(pack.MarshalIndex(nil), other.Recipient()), 400, codeInvalid, "index fragment"},
		{"index garbage", backend.Index, seal([]byte("junk"), srvKeys.MetaRecipient), 400, codeInvalid, "index fragment"},
		{"index of a missing pack", backend.Index, seal(pack.MarshalIndex([]pack.IndexPack{{Pack: blob.ID{9}, Header: wrongHdr}}), srvKeys.MetaRecipient), 409, codeMissing, "not stored"},
		{"index header differs", backend.Index, seal(pack.MarshalIndex([]pack.IndexPack{{Pack: packID, Header: wrongHdr}}), srvKeys.MetaRecipient), 400, codeInvalid, "differs"},
		{"snapshot garbage", backend.Snapshots, []byte("CRS1junk"), 400, codeInvalid, "snapshot"},
		{"snapshot mis-signed", backend.Snapshots, misSigned, 400, codeSigner, "signature"},
		{"snapshot by a stranger", backend.Snapshots, variant(next, stranger), 403, codeSigner, "roster"},
		{"snapshot out of sequence", backend.Snapshots, variant(func(f *snapshot.File) { f.Statement.Seq = 5 }, owner), 409, codeSequence, "want seq 2"},
		{"snapshot with a broken chain", backend.Snapshots, variant(func(f *snapshot.File) { f.Statement.Seq = 2 }, owner), 409, codeSequence, "does not follow"},
		{"snapshot of another repository", backend.Snapshots, variant(func(f *snapshot.File) { next(f); f.Statement.RepoID[0] ^= 1 }, owner), 400, codeInvalid, "another repository"},
		{"snapshot with unindexed pages", backend.Snapshots, variant(func(f *snapshot.File) {
			next(f)
			pages := []blob.ID{{7, 7}}
			mb, _ := snapshot.MarshalJSONHeader(&snapshot.MetaHeader{Pages: pages})
			f.MetaSealed = seal(mb, srvKeys.MetaRecipient)
			f.Statement.ManifestRoot = snapshot.ManifestRoot(pages)
		}, owner), 409, codeMissing, "not indexed"},
		{"receipt from a client", backend.Receipts, []byte("forged receipt"), 403, codeInvalid, "written by the server"},
	}
	ts.advance(2 * time.Hour)
	for _, c := range cases {
		before := count(t, be, c.typ)
		status, code, msg := ts.put("v", c.typ, c.body)
		if status != c.status || code != c.code || !strings.Contains(msg, c.say) {
			t.Errorf("%s: got %d %s %q, want %d %s %q", c.name, status, code, strings.TrimSpace(msg), c.status, c.code, c.say)
		}
		if count(t, be, c.typ) != before {
			t.Errorf("%s: something was stored", c.name)
		}
		if !strings.Contains(ts.logs.String(), c.code) {
			t.Errorf("%s: refusal not logged", c.name)
		}
	}

	// R22: the same statement again succeeds and stores nothing new.
	if status, _, msg := ts.put("v", backend.Snapshots, raw); status != 200 {
		t.Fatalf("retried commit: %d %s", status, msg)
	}
	if n := count(t, be, backend.Snapshots); n != 1 {
		t.Fatalf("%d snapshots after a retried commit", n)
	}
	// A good next snapshot still goes through.
	commit(t, repo, "second")
	if n := count(t, be, backend.Snapshots); n != 2 {
		t.Fatalf("%d snapshots after the second commit", n)
	}

	// R14: a server-signed receipt per accepted snapshot, on the
	// server's clock; the owner verifies it and ages snapshots by it.
	snaps, errs, err := repo.Snapshots(context.Background())
	if err != nil || len(errs) > 0 {
		t.Fatal(err, errs)
	}
	bad, err := repo.ApplyReceipts(context.Background(), snaps)
	if err != nil || len(bad) > 0 {
		t.Fatal(err, bad)
	}
	for _, sn := range snaps {
		if sn.ModTime.IsZero() || sn.ModTime.After(ts.nowFn()) {
			t.Errorf("snapshot %s: receipt time %v", sn.ID.Short(), sn.ModTime)
		}
	}
	if n := count(t, be, backend.Receipts); n != 2 {
		t.Fatalf("%d receipts for 2 snapshots", n)
	}
}
