package repository

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/pack"
)

// directWriter enrols a writer on the owner's repository and opens it as
// that writer, with full write access to storage (direct mode: nothing
// validates its uploads).
func directWriter(t *testing.T, be backend.Backend, owner *Repository) *Repository {
	t.Helper()
	ctx := context.Background()
	wm, err := owner.NewKeyMaterial(crypto.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.AddWriter(ctx, wm, "w1"); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWithKeys(ctx, be, keysFor(t, wm), "", configBytes(t, be), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// dataBlobs is newTestRepo with one pack, and only its data blobs.
func dataBlobs(t *testing.T) (backend.Backend, *Repository, map[blob.ID][]byte) {
	be, owner, plains := newTestRepo(t, 1)
	for id := range plains {
		if !owner.Index().Has(id, blob.Data) {
			delete(plains, id)
		}
	}
	if len(plains) == 0 {
		t.Fatal("no data blobs")
	}
	return be, owner, plains
}

// reopen opens the owner's repository afresh, logging warnings into log.
func reopen(t *testing.T, be backend.Backend, owner *Repository, log *bytes.Buffer) *Repository {
	t.Helper()
	opts := testOpts(t)
	opts.Logger = slog.New(slog.NewTextHandler(log, nil))
	r, err := OpenWithKeys(context.Background(), be, owner.Keys(), "", configBytes(t, be), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(context.Background()); err != nil {
		t.Fatalf("a hostile upload made the index unloadable: %v", err)
	}
	return r
}

// A writer's garbage under the owner's blob IDs is in the writer's domain:
// the owner's reads skip it, its dedup ignores it (R23).
func TestGarbageCopyInWritersDomain(t *testing.T) {
	ctx := context.Background()
	be, owner, plains := dataBlobs(t)
	w := directWriter(t, be, owner)
	s, err := w.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id := range plains {
		if _, err := s.SaveBlobID(ctx, blob.Data, id, []byte("garbage")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()

	var log bytes.Buffer
	r := reopen(t, be, owner, &log)
	for id, want := range plains {
		if n := len(r.Index().LookupAll(id, blob.Data)); n != 2 {
			t.Fatalf("%d copies indexed, want the owner's and the writer's\n%s", n, log.String())
		}
		if !r.Index().HasIn(id, blob.Data, r.OwnerDomain()) || !r.Index().HasIn(id, blob.Data, w.Domain()) {
			t.Fatal("copies not attributed to their uploaders")
		}
		got, err := r.LoadBlob(ctx, blob.Data, id)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("owner read %q, %v", got, err)
		}
	}
	// With the owner's own copies gone, its dedup must not take the
	// writer's for them.
	mine := map[blob.ID]struct{}{}
	for id := range plains {
		e, _ := r.Index().LookupIn(id, blob.Data, r.OwnerDomain())
		mine[e.Pack] = struct{}{}
	}
	r.Index().RemovePacks(mine)
	sess, err := r.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Abort()
	for id := range plains {
		if !r.Index().Has(id, blob.Data) {
			t.Fatal("the writer's copy went too")
		}
		if sess.Has(blob.Data, id) {
			t.Fatal("the owner's backup dedups against a writer's copy")
		}
	}
}

// A writer with storage access that signs a fragment claiming the owner's
// domain, or uploads an unsigned one, only has it skipped, with a warning;
// the index still loads (R23, R24).
func TestForgedFragmentsSkipped(t *testing.T) {
	ctx := context.Background()
	be, owner, plains := dataBlobs(t)
	w := directWriter(t, be, owner)
	var id blob.ID
	for id = range plains {
	}
	pw := pack.NewWriter(0)
	pw.Add(blob.Data, id, []byte("not a sealed blob"), pw.AddSlot(pack.Slot{Kind: pack.SlotOwner, Wrap: crypto.WrapHybrid, Data: []byte("slot")}))
	pw.SetSigner(w.Keys().RepoID, owner.OwnerDomain(), w.Keys().Sign) // the owner's domain, signed by a writer
	buf, hdr, err := pw.Finish(w.Keys().MetaRecipient)
	if err != nil {
		t.Fatal(err)
	}
	name := backend.NameOf(buf)
	if err := be.Save(ctx, backend.Handle{Type: backend.Data, Name: name}, backend.NewByteReader(buf)); err != nil {
		t.Fatal(err)
	}
	pid, _ := blob.ParseID(name)
	ips := []pack.IndexPack{{Pack: pid, Header: hdr.Marshal()}}
	for _, plain := range [][]byte{
		pack.SignIndex(ips, w.Keys().RepoID, w.Keys().Sign), // writer lists an owner-domain pack
		pack.MarshalIndex(ips),                              // unsigned
		[]byte("junk"),
	} {
		sealed, err := crypto.Seal(plain, w.Keys().MetaRecipient)
		if err != nil {
			t.Fatal(err)
		}
		if err := saveNamed(ctx, be, backend.Index, sealed); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	r := reopen(t, be, owner, &log)
	if n := len(r.Index().LookupAll(id, blob.Data)); n != 1 {
		t.Fatalf("%d copies indexed, want only the owner's", n)
	}
	if got := strings.Count(log.String(), "skipping an index fragment"); got != 3 {
		t.Fatalf("%d warnings for 3 forged fragments:\n%s", got, log.String())
	}
	if err := r.VerifyHeader(hdr); err == nil {
		t.Fatal("a writer's header for the owner's domain verified")
	}
}
