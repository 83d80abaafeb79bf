package repository

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/trust"
)

var fastKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

func testOpts(t *testing.T) Options {
	return Options{CacheDir: t.TempDir(), KDF: &fastKDF}
}

// newTestRepo makes an owner repository holding one snapshot whose tree
// names blobs in nPacks packs (one flush per pack).
func newTestRepo(t *testing.T, nPacks int) (*mem.Backend, *Repository, map[blob.ID][]byte) {
	t.Helper()
	ctx := context.Background()
	be := mem.New()
	r, err := Init(ctx, be, []byte("pw"), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := r.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	plains := map[blob.ID][]byte{}
	var refs []snapshot.Ref
	var nodes []snapshot.Node
	for p := 0; p < nPacks; p++ {
		for i := 0; i < 3; i++ {
			plain := []byte(strings.Repeat(string(rune('a'+p)), 1000+i) + "blob")
			id, _, err := s.SaveBlob(ctx, blob.Data, plain)
			if err != nil {
				t.Fatal(err)
			}
			plains[id] = plain
			refs = append(refs, snapshot.Ref{Type: blob.Data, ID: id})
			nodes = append(nodes, snapshot.Node{Name: id.String(), Type: snapshot.TypeFile, Mode: 0o644, Size: uint64(len(plain)), Content: []blob.ID{id}})
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tree := snapshot.Tree{Nodes: nodes}
	tree.Sort()
	tb, err := tree.Encode()
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := s.SaveBlob(ctx, blob.Tree, tb)
	if err != nil {
		t.Fatal(err)
	}
	plains[root] = tb
	refs = append(refs, snapshot.Ref{Type: blob.Tree, ID: root})
	if _, err := s.Commit(ctx, CommitInput{Root: root, Refs: refs, Time: r.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return be, r, plains
}

func keysFor(t *testing.T, m *crypto.KeyMaterial) *crypto.Keys {
	t.Helper()
	k, err := m.Parse()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func configBytes(t *testing.T, be backend.Backend) []byte {
	buf, err := backend.LoadAll(context.Background(), be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// R5: with a writer key and full read access to storage, nothing stored
// opens, whatever the writer is handed: index fragments, pack headers,
// snapshot headers, manifests, key slots, data and tree blobs.
func TestWriterIsReadBlind(t *testing.T) {
	ctx := context.Background()
	be, owner, plains := newTestRepo(t, 2)
	wm, err := owner.NewKeyMaterial(crypto.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.AddWriter(ctx, wm, "w"); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWithKeys(ctx, be, keysFor(t, wm), "", configBytes(t, be), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.LoadIndex(ctx); !errors.Is(err, crypto.ErrNeedsMetadata) {
		t.Errorf("LoadIndex with a writer key: %v, want ErrNeedsMetadata", err)
	}
	err = be.List(ctx, backend.Index, func(fi backend.FileInfo) error {
		if _, err := w.LoadIndexFile(ctx, fi.Name); !errors.Is(err, crypto.ErrNeedsMetadata) {
			t.Errorf("index %s opened by a writer: %v", fi.Name[:8], err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Pack headers.
	for _, p := range owner.Index().Packs() {
		h := backend.Handle{Type: backend.Data, Name: p.String()}
		buf, err := backend.LoadAll(ctx, be, h)
		if err != nil {
			t.Fatal(err)
		}
		off, l, err := pack.ParseTrailer(buf[len(buf)-pack.TrailerSize:], int64(len(buf)))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := pack.OpenHeader(buf[off:off+int64(l)], off, w.Keys().MetaIdentity); !errors.Is(err, crypto.ErrNeedsMetadata) {
			t.Errorf("pack header opened by a writer: %v", err)
		}
	}
	// Snapshots: the signature verifies, nothing sealed opens.
	snaps, errs, err := w.Snapshots(ctx)
	if err != nil || len(errs) > 0 || len(snaps) != 1 {
		t.Fatalf("snapshots: %v %v", err, errs)
	}
	if snaps[0].Meta != nil || snaps[0].Owner != nil {
		t.Errorf("writer read a snapshot header")
	}
	if _, err := crypto.Open(snaps[0].File.OwnerSealed, w.Keys().OwnerIdentity, crypto.ErrNeedsOwner); !errors.Is(err, crypto.ErrNeedsOwner) {
		t.Errorf("owner header: %v", err)
	}
	if _, err := w.ManifestRefs(ctx, snaps[0]); !errors.Is(err, crypto.ErrNeedsMetadata) {
		t.Errorf("manifest: %v", err)
	}
	// Hand the writer the owner's whole index, slots included: no blob opens.
	owner.Index().Each(func(e index.Entry) bool {
		slot, _ := owner.Slot(e.Slot)
		e.Slot = w.slotFor(slot)
		w.idx.Add(e)
		return true
	})
	for id := range plains {
		for _, typ := range []blob.Type{blob.Data, blob.Tree} {
			if _, ok := w.Lookup(typ, id); !ok {
				continue
			}
			_, err := w.LoadBlob(ctx, typ, id)
			if !errors.Is(err, crypto.ErrNeedsOwner) {
				t.Errorf("%s blob %s: %v, want ErrNeedsOwner", typ, id.Short(), err)
			}
		}
	}
	var pages int
	owner.Index().Each(func(e index.Entry) bool {
		if e.Type == blob.ManifestPage {
			pages++
			if _, err := w.LoadBlob(ctx, blob.ManifestPage, e.ID); !errors.Is(err, crypto.ErrNeedsMetadata) {
				t.Errorf("manifest page: %v", err)
			}
		}
		return true
	})
	if pages == 0 {
		t.Fatal("no manifest pages to try")
	}
	// The writer still backs up: its session seals to the pinned keys.
	if _, err := w.NewSession(ctx, RefSet(nil)); err != nil {
		t.Fatal(err)
	}
}

// R2, R3: a config that names another owner is refused, and so is a
// rolled-back config.
func TestConfigTrustAnchors(t *testing.T) {
	ctx := context.Background()
	be, owner, _ := newTestRepo(t, 1)
	other, err := crypto.NewOwner("")
	if err != nil {
		t.Fatal(err)
	}
	ok := keysFor(t, other)
	cfg := *owner.Config()
	cfg.OwnerRecipient, cfg.OwnerSignPub = other.OwnerRecipient, other.OwnerSignPub
	cfg.Seq++
	forged, err := trust.MarshalConfig(&cfg, ok.OwnerSign)
	if err != nil {
		t.Fatal(err)
	}
	// The forged config is skipped (R24): the valid version in configs/,
	// signed by the pinned owner key, serves instead.
	r, err := OpenWithKeys(ctx, be, owner.Keys(), "", forged, testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Config().OwnerSignPub, owner.Keys().OwnerSignPub) || r.Config().OwnerRecipient != owner.Config().OwnerRecipient {
		t.Fatal("config signed by another owner accepted")
	}
	// With no valid version stored, it is refused.
	if _, err := OpenWithKeys(ctx, mem.New(), owner.Keys(), "", forged, testOpts(t)); err == nil || !strings.Contains(err.Error(), "pinned owner key") {
		t.Fatalf("config signed by another owner accepted: %v", err)
	}
	// A genuine newer config is remembered; the older one is then refused.
	opts := testOpts(t)
	newer := *owner.Config()
	newer.Seq = 5
	nb, err := trust.MarshalConfig(&newer, owner.Keys().OwnerSign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWithKeys(ctx, be, owner.Keys(), "", nb, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWithKeys(ctx, be, owner.Keys(), "", configBytes(t, be), opts); err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("older config accepted after a newer one: %v", err)
	}
}

// R6: a blob whose plaintext does not re-hash to its ID is rejected.
func TestBlobIDRehashed(t *testing.T) {
	ctx := context.Background()
	_, r, _ := newTestRepo(t, 1)
	s, err := r.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fake blob.ID
	copy(fake[:], bytes.Repeat([]byte{7}, 32))
	if _, err := s.SaveBlobID(ctx, blob.Data, fake, []byte("not what the ID says")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = r.LoadBlob(ctx, blob.Data, fake)
	if err == nil || !strings.Contains(err.Error(), "does not hash to its ID") {
		t.Fatalf("mismatching blob accepted: %v", err)
	}
}

// R7: a repack with only the server key, merging blobs of three packs into
// one, yields a pack the owner reads byte-identically.
func TestServerRepackThreePacks(t *testing.T) {
	ctx := context.Background()
	be, owner, plains := newTestRepo(t, 3)
	sm, err := owner.NewKeyMaterial(crypto.RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.AddCoordinator(ctx, sm, "srv"); err != nil { // only a roster coordinator may repack (R23)
		t.Fatal(err)
	}
	srv, err := OpenWithKeys(ctx, be, keysFor(t, sm), "", configBytes(t, be), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	var dataPacks []blob.ID
	seen := map[blob.ID]bool{}
	var entries []index.Entry
	srv.Index().Each(func(e index.Entry) bool {
		// The index says Data of trees too; the root tree is in a tree
		// pack of its own, which this repack leaves alone.
		if e.Type == blob.Data && !bytes.HasPrefix(plains[e.ID], []byte("CRT1")) {
			entries = append(entries, e)
			if !seen[e.Pack] {
				seen[e.Pack] = true
				dataPacks = append(dataPacks, e.Pack)
			}
		}
		return true
	})
	if len(dataPacks) != 3 {
		t.Fatalf("want data in 3 packs, have %d", len(dataPacks))
	}
	w := pack.NewWriter(1 << 20)
	for _, e := range entries {
		var sealed []byte
		err := be.Load(ctx, backend.Handle{Type: backend.Data, Name: e.Pack.String()}, int(e.Length), int64(e.Offset), func(rd io.Reader) error {
			var err error
			sealed, err = io.ReadAll(rd)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		slot, _ := srv.Slot(e.Slot)
		w.Add(e.Type, e.ID, sealed, w.AddSlot(slot))
	}
	// The server repacks as a coordinator, keeping the blobs' domain (R23).
	w.SetSigner(srv.Keys().RepoID, entries[0].Domain, srv.Keys().CoordSign)
	buf, hdr, err := w.Finish(srv.Keys().MetaRecipient)
	if err != nil {
		t.Fatal(err)
	}
	name := backend.NameOf(buf)
	if err := be.Save(ctx, backend.Handle{Type: backend.Data, Name: name}, backend.NewByteReader(buf)); err != nil {
		t.Fatal(err)
	}
	newID, _ := blob.ParseID(name)
	idxSealed, err := crypto.Seal(pack.SignIndex([]pack.IndexPack{{Pack: newID, Header: hdr.Marshal()}}, srv.Keys().RepoID, srv.Keys().CoordSign), srv.Keys().MetaRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if err := saveNamed(ctx, be, backend.Index, idxSealed); err != nil {
		t.Fatal(err)
	}
	// Drop the three old packs and every index fragment that lists them.
	old := map[blob.ID]bool{}
	for _, p := range dataPacks {
		old[p] = true
	}
	var drop []string
	err = be.List(ctx, backend.Index, func(fi backend.FileInfo) error {
		f, err := srv.LoadIndexFile(ctx, fi.Name)
		if err != nil {
			return err
		}
		for _, p := range f.Packs {
			if old[p.Pack] {
				drop = append(drop, fi.Name)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range drop {
		if err := be.Remove(ctx, backend.Handle{Type: backend.Index, Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	for p := range old {
		if err := be.Remove(ctx, backend.Handle{Type: backend.Data, Name: p.String()}); err != nil {
			t.Fatal(err)
		}
	}
	// The owner, from scratch, reads every blob from the new pack.
	o2, err := Open(ctx, be, []byte("pw"), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := o2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		got, err := o2.LoadBlob(ctx, blob.Data, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plains[e.ID]) {
			t.Fatalf("blob %s differs after repack", e.ID.Short())
		}
		if ne, _ := o2.Lookup(blob.Data, e.ID); ne.Pack != newID {
			t.Fatalf("blob %s not read from the new pack", e.ID.Short())
		}
	}
}
