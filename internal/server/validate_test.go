package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/pack"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/server/datadir"
	"github.com/cairnbackup/cairn/internal/server/repohttp"
	"github.com/cairnbackup/cairn/internal/server/verify"
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
	pub, err := fetchPublic(ctx, u)
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
	// A host label the key is bound to (R25): a writer's roster name.
	meta := snapshot.MetaHeader{HostLabel: repo.HostLabel("test-host")}
	snap, err := s.Commit(ctx, repository.CommitInput{Root: id, Refs: []snapshot.Ref{{Type: blob.Data, ID: id}}, Meta: meta, Time: repo.Now()})
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
	owner := repo.Keys().Sign
	ownerDom := blob.DomainOf(repo.Keys().SignerID())
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	wm, err := repo.NewKeyMaterial(crypto.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.AddWriter(context.Background(), wm, "w1"); err != nil {
		t.Fatal(err)
	}
	writerKeys, err := wm.Parse()
	if err != nil {
		t.Fatal(err)
	}
	writer, writerDom := writerKeys.Sign, blob.DomainOf(writerKeys.SignerID())
	// signedPack is a pack of domain dom whose header signer signed (nil:
	// unsigned).
	signedPack := func(id byte, dom blob.Domain, signer ed25519.PrivateKey) ([]byte, []byte) {
		w := pack.NewWriter(0)
		w.Add(blob.Data, blob.ID{id}, []byte("sealed-bytes"), w.AddSlot(pack.Slot{Kind: pack.SlotOwner, Wrap: crypto.WrapHybrid, Data: []byte("slot")}))
		if signer != nil {
			w.SetSigner(repo.Keys().RepoID, dom, signer)
		}
		buf, h, err := w.Finish(srvKeys.MetaRecipient)
		if err != nil {
			t.Fatal(err)
		}
		return buf, h.Marshal()
	}
	ownHeaderPack := func() []byte {
		buf, _ := signedPack(2, ownerDom, owner)
		return buf
	}
	seal := func(plain []byte, r age.Recipient) []byte {
		b, err := crypto.Seal(plain, r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	_, wrongHdr := signedPack(2, ownerDom, owner)
	unsignedPack, _ := signedPack(3, ownerDom, nil)
	strangerPack, _ := signedPack(4, blob.DomainOf(stranger.Public().(ed25519.PublicKey)), stranger)
	impostorPack, impostorHdr := signedPack(5, ownerDom, writer) // a writer claiming the owner's domain
	writerPack, writerHdr := signedPack(6, writerDom, writer)
	idx := func(key ed25519.PrivateKey, ps ...pack.IndexPack) []byte {
		return seal(pack.SignIndex(ps, repo.Keys().RepoID, key), srvKeys.MetaRecipient)
	}
	_ = ownHeaderPack

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
		{"pack unsigned", backend.Data, unsignedPack, 400, codeInvalid, "unsigned"},
		{"pack by a stranger", backend.Data, strangerPack, 403, codeSigner, "not signed by a key allowed"},
		{"pack of the owner's domain by a writer", backend.Data, impostorPack, 403, codeSigner, "not signed by a key allowed"},
		{"index unsigned", backend.Index, seal(pack.MarshalIndex([]pack.IndexPack{{Pack: packID, Header: wrongHdr}}), srvKeys.MetaRecipient), 400, codeInvalid, "unsigned"},
		{"index by a stranger", backend.Index, idx(stranger, pack.IndexPack{Pack: packID, Header: wrongHdr}), 403, codeSigner, "not signed by a key allowed"},
		{"index by a writer listing the owner's domain", backend.Index, idx(writer, pack.IndexPack{Pack: blob.ID{5}, Header: impostorHdr}), 403, codeSigner, "not signed by a key allowed"},
		{"index of a missing pack", backend.Index, idx(owner, pack.IndexPack{Pack: blob.ID{9}, Header: wrongHdr}), 409, codeMissing, "not stored"},
		{"index header differs", backend.Index, idx(owner, pack.IndexPack{Pack: packID, Header: wrongHdr}), 400, codeInvalid, "differs"},
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

	// A writer's own pack and fragment, in its own domain, are accepted.
	if status, _, msg := ts.put("v", backend.Data, writerPack); status != 200 {
		t.Fatalf("writer's own pack: %d %s", status, msg)
	}
	wid, _ := blob.ParseID(backend.NameOf(writerPack))
	if status, _, msg := ts.put("v", backend.Index, idx(writer, pack.IndexPack{Pack: wid, Header: writerHdr})); status != 200 {
		t.Fatalf("writer's own index fragment: %d %s", status, msg)
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

// benchRepo makes a server over a fresh data directory and, directly on
// its local storage, a server-mode repository bob/bench with n snapshots
// of k new blobs each (one index fragment per snapshot), each snapshot
// reaching every blob so far. It returns the signed next snapshot (seq
// n+1, not stored) to validate.
func benchRepo(b testing.TB, n, k int) (*Server, *verify.Repo, backend.Backend, backend.Handle, []byte) {
	b.Helper()
	ctx := context.Background()
	data, err := datadir.Init(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { data.Close() })
	s, err := New(data, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.CloseStorage)
	rec, err := data.Identity.MetaRecipient()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.repos.Create(ctx, "bob/bench", func(int) error { return nil }); err != nil {
		b.Fatal(err)
	}
	be, err := s.repos.Get(ctx, "bob/bench")
	if err != nil {
		b.Fatal(err)
	}
	repo, _, err := repository.InitServerMode(ctx, be, []byte("pw"), repository.ServerPublic{MetaRecipient: rec, CoordPub: data.Identity.SignPublic()},
		repository.Options{KDF: &fastKDF})
	if err != nil {
		b.Fatal(err)
	}
	var refs []snapshot.Ref
	snap := func() *repository.Snapshot {
		sess, err := repo.NewSession(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		var last blob.ID
		for j := 0; j < k; j++ {
			id, _, err := sess.SaveBlob(ctx, blob.Data, []byte(fmt.Sprintf("blob %d of snapshot %d", j, len(refs))))
			if err != nil {
				b.Fatal(err)
			}
			refs = append(refs, snapshot.Ref{Type: blob.Data, ID: id})
			last = id
		}
		sn, err := sess.Commit(ctx, repository.CommitInput{Root: last, Refs: refs, Time: repo.Now()})
		if err != nil {
			b.Fatal(err)
		}
		sess.Close()
		return sn
	}
	for range n {
		snap()
	}
	next := snap()
	h := backend.Handle{Type: backend.Snapshots, Name: next.ID.String()}
	body, err := backend.LoadAll(ctx, be, h)
	if err != nil {
		b.Fatal(err)
	}
	if err := be.Remove(ctx, h); err != nil {
		b.Fatal(err)
	}
	cr, err := s.verify.Repo(ctx, "bob/bench", be)
	if err != nil || cr == nil {
		b.Fatal(err)
	}
	return s, cr, be, h, body
}

// BenchmarkValidateSnapshot measures the server's checks of one snapshot
// upload (R15) on a repository of 300 snapshots and fragments, 6,000
// blobs: signature, roster, chain, and every manifest ID indexed.
//
//	go test -run '^$' -bench ValidateSnapshot -benchmem ./internal/server/
func BenchmarkValidateSnapshot(b *testing.B) {
	s, cr, be, h, body := benchRepo(b, 300, 20)
	ctx := context.Background()
	if err := s.verify.Validate(ctx, cr, be, h, repohttp.MemUpload(body)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := s.verify.Validate(ctx, cr, be, h, repohttp.MemUpload(body)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateSnapshotCold is the first commit a server process
// checks on that repository: the whole index and every statement read
// once, every manifest page opened.
func BenchmarkValidateSnapshotCold(b *testing.B) {
	s, cr, be, h, body := benchRepo(b, 300, 20)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.verify.DropIndex(cr.Path())
		cr.ForgetSeen()
		if err := s.verify.Validate(ctx, cr, be, h, repohttp.MemUpload(body)); err != nil {
			b.Fatal(err)
		}
	}
}

// serverRepo opens a repository on the server's own storage with the
// server's keys, as maintenance does.
func (ts *testServer) serverRepo(name string) *repository.Repository {
	t := ts.t
	t.Helper()
	ctx := context.Background()
	be, err := local.Open(filepath.Join(ts.data.Dir, datadir.ReposDir, "bob", name))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := repository.PeekConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := repository.ServerKeys(c, ts.data.Identity.MetaIdentity, ts.data.Identity.SignSeed)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.OpenWithKeys(ctx, be, keys, "", cfg, repository.Options{Now: ts.nowFn})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// resign re-signs a stored snapshot as the next statement after prev.
func resign(t *testing.T, raw []byte, seq uint64, prev [32]byte, key ed25519.PrivateKey) []byte {
	t.Helper()
	f, err := snapshot.ParseFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.Statement.Seq, f.Statement.Prev = seq, prev
	f.Sign(key)
	return f.Marshal()
}

// TestChainForgottenPredecessor: a writer whose last snapshot the server
// forgot (tombstone, file removed) still commits its next statement; the
// forgotten one uploaded again, or a second statement with a taken seq,
// is refused (R11, R17, R22).
func TestChainForgottenPredecessor(t *testing.T) {
	ts := startTest(t, Options{})
	ctx := context.Background()
	repo, be := ts.cairnClient("f")
	commit(t, repo, "first")
	ts.advance(2 * time.Hour)
	second := commit(t, repo, "second")
	raw2, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Snapshots, Name: second.ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.serverRepo("f").ForgetSnapshot(ctx, second, "test"); err != nil {
		t.Fatal(err)
	}
	owner := repo.Keys().Sign
	ts.advance(2 * time.Hour)
	third := resign(t, raw2, 3, second.File.Statement.Hash(), owner)
	if status, code, msg := ts.put("f", backend.Snapshots, third); status != 200 {
		t.Fatalf("seq 3 after a forgotten seq 2: %d %s %s", status, code, msg)
	}
	ts.advance(2 * time.Hour)
	if status, code, msg := ts.put("f", backend.Snapshots, raw2); status != 409 || code != codeSequence || !strings.Contains(msg, "seq 2") {
		t.Fatalf("forgotten snapshot replayed: %d %s %s", status, code, msg)
	}
	f3, _ := snapshot.ParseFile(third)
	fork := resign(t, raw2, 3, f3.Statement.Hash(), owner) // seq 3 taken
	if status, code, msg := ts.put("f", backend.Snapshots, fork); status != 409 || code != codeSequence {
		t.Fatalf("second seq 3: %d %s %s", status, code, msg)
	}
	if n := count(t, be, backend.Snapshots); n != 2 {
		t.Fatalf("%d snapshots, want seq 1 and 3", n)
	}
	commit(t, repo, "fourth") // the client chains to seq 3
}

// TestChainSeed: a server that never saw a repository's commits (started
// on existing data, or after losing its state database) seeds the chain
// records from storage: snapshots and tombstones.
func TestChainSeed(t *testing.T) {
	s, cr, be, h, body := benchRepo(t, 3, 2)
	ctx := context.Background()
	f, err := snapshot.ParseFile(body)
	if err != nil {
		t.Fatal(err)
	}
	// Forget the predecessor of the statement about to be validated.
	r, err := cr.Open(ctx, be)
	if err != nil {
		t.Fatal(err)
	}
	snaps, _, err := r.Snapshots(ctx)
	if err != nil || len(snaps) != 3 {
		t.Fatal(len(snaps), err)
	}
	var pred *repository.Snapshot
	for _, sn := range snaps {
		if sn.File.Statement.Hash() == f.Statement.Prev {
			pred = sn
		}
	}
	if pred == nil {
		t.Fatal("no predecessor")
	}
	if err := r.ForgetSnapshot(ctx, pred, "test"); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if err := s.verify.Validate(ctx, cr, be, h, repohttp.MemUpload(body)); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		l, ok, err := s.data.State.ChainLink(ctx, cr.Path(), cr.RepoID(), f.Statement.Writer)
		if err != nil || !ok || l.Seq != 3 || l.Snapshot != pred.ID.String() {
			t.Fatalf("round %d: chain record %+v %v %v", round, l, ok, err)
		}
		// State lost: records and what this process has seen.
		if err := s.data.State.DropChains(ctx); err != nil {
			t.Fatal(err)
		}
		cr.ForgetSeen()
	}
	// The record outlives storage: with the tombstone gone too (a rolled
	// back repository), seq 3 is still known and a new seq 3 is refused.
	if err := s.verify.Validate(ctx, cr, be, h, repohttp.MemUpload(body)); err != nil {
		t.Fatal(err)
	}
	if err := be.List(ctx, backend.Tombstones, func(fi backend.FileInfo) error { return be.Remove(ctx, fi.Handle) }); err != nil {
		t.Fatal(err)
	}
	cr.ForgetSeen()
	if err := s.verify.Validate(ctx, cr, be, h, repohttp.MemUpload(body)); err != nil {
		t.Fatalf("after the tombstone is gone: %v", err)
	}
	// Without the record, storage alone no longer knows seq 3.
	if err := s.data.State.DropChains(ctx); err != nil {
		t.Fatal(err)
	}
	cr.ForgetSeen()
	var rf *repohttp.Refusal
	if err := s.verify.Validate(ctx, cr, be, h, repohttp.MemUpload(body)); !errors.As(err, &rf) || rf.Code != codeSequence {
		t.Fatalf("seq 4 on storage that ends at seq 2, without a record: %v", err)
	}
}

// TestCommitMissingBlob: a snapshot whose manifest names a blob that is
// not stored is refused with 409 missing-objects naming it, and nothing
// is stored (R11, R15); pages already checked are not read again.
func TestCommitMissingBlob(t *testing.T) {
	ts := startTest(t, Options{})
	ctx := context.Background()
	repo, be := ts.cairnClient("mb")
	commit(t, repo, "first")
	ts.advance(2 * time.Hour)
	sess, err := repo.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	id, _, err := sess.SaveBlob(ctx, blob.Data, []byte("stored"))
	if err != nil {
		t.Fatal(err)
	}
	ghost := repo.BlobID(blob.Data, []byte("never uploaded"))
	_, err = sess.Commit(ctx, repository.CommitInput{Root: id, Time: repo.Now(),
		Refs: []snapshot.Ref{{Type: blob.Data, ID: id}, {Type: blob.Data, ID: ghost}}})
	if err == nil || !strings.Contains(err.Error(), "1 blobs that are not stored") || !strings.Contains(err.Error(), ghost.String()[:12]) {
		t.Fatalf("commit of a missing blob: %v", err)
	}
	if !strings.Contains(ts.logs.String(), codeMissing) {
		t.Fatal("refusal not logged")
	}
	if n := count(t, be, backend.Snapshots); n != 1 {
		t.Fatalf("%d snapshots after a refused commit", n)
	}
	commit(t, repo, "second") // the chain did not move
}

// TestIndexFollowsRewrite: when a prune the server did not run (another
// server, the owner) sweeps packs, the cached index and the pages checked
// before do not vouch for objects that are gone: the next commit naming
// them is refused with their IDs.
func TestIndexFollowsRewrite(t *testing.T) {
	s, cr, be, h, body := benchRepo(t, 3, 2)
	ctx := context.Background()
	if err := s.verify.Validate(ctx, cr, be, h, repohttp.MemUpload(body)); err != nil {
		t.Fatal(err) // warms the index and the checked pages
	}
	f, _ := snapshot.ParseFile(body)
	r, err := cr.Open(ctx, be)
	if err != nil {
		t.Fatal(err)
	}
	snaps, _, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Forget the predecessor, the only snapshot that reaches its own
	// two blobs, and prune at once.
	for _, sn := range snaps {
		if sn.File.Statement.Hash() == f.Statement.Prev {
			if err := r.ForgetSnapshot(ctx, sn, "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	rep, err := prune.Run(ctx, r, prune.Options{})
	if err != nil || len(rep.Deleted) == 0 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	var rf *repohttp.Refusal
	err = s.verify.Validate(ctx, cr, be, h, repohttp.MemUpload(body))
	// The prune also swept the pack of the commit's own pages, which no
	// stored snapshot reached: those are named first.
	if !errors.As(err, &rf) || rf.Code != codeMissing || !strings.Contains(rf.Msg, "not indexed") {
		t.Fatalf("commit naming swept blobs: %v", err)
	}
}
