package repository

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// TestSessionTreePacks: a session that saves data and tree blobs
// interleaved, as a backup's post-order walk does, stores trees only in
// packs of their own, each in ID order; every header entry, opened with
// the metadata identity, says only "content" or "manifest page"; small
// trees of one, two and three entries are stored at one length; and the
// owner reads every tree back as a tree.
func TestSessionTreePacks(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, err := Init(ctx, be, []byte("pw"), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	r.packSize = 8 << 10 // several tree packs, so "sorted" is per pack
	s, err := r.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	trees := map[blob.ID]int{} // tree ID -> entries
	var refs []snapshot.Ref
	var walk []blob.ID // trees in the order they were saved
	var root blob.ID
	for d := range 60 {
		var nodes []snapshot.Node
		for f := range d%3 + 1 {
			plain := []byte(fmt.Sprintf("file %d of dir %d", f, d))
			id, _, err := s.SaveBlob(ctx, blob.Data, plain)
			if err != nil {
				t.Fatal(err)
			}
			refs = append(refs, snapshot.Ref{Type: blob.Data, ID: id})
			nodes = append(nodes, snapshot.Node{Name: fmt.Sprintf("f%d", f), Type: snapshot.TypeFile, Mode: 0o644, Size: uint64(len(plain)), Content: []blob.ID{id}})
		}
		tb, err := (&snapshot.Tree{Nodes: nodes}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		id, _, err := s.SaveBlob(ctx, blob.Tree, tb)
		if err != nil {
			t.Fatal(err)
		}
		trees[id] = len(nodes)
		walk = append(walk, id)
		refs = append(refs, snapshot.Ref{Type: blob.Tree, ID: id})
		root = id
	}
	if !s.Has(blob.Tree, root) || !s.Has(blob.Data, root) {
		t.Fatal("a tree waiting for its pack is not known to the session")
	}
	if _, err := s.Commit(ctx, CommitInput{Root: root, Refs: refs, Time: r.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var treePacks int
	var treeOrder []blob.ID // trees in pack order, then offset order
	sizes := map[int]map[uint32]bool{}
	err = be.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		id, _ := blob.ParseID(fi.Name)
		h, _, err := r.StoredPackHeader(ctx, id) // opened with the metadata identity, as the server does
		if err != nil {
			return err
		}
		var nTree, nOther int
		for i, e := range h.Entries {
			if e.Type != blob.Data && e.Type != blob.ManifestPage {
				t.Errorf("pack %s entry %d has type %s: the server learns more than content or manifest", id.Short(), i, e.Type)
			}
			if n, ok := trees[e.ID]; ok {
				nTree++
				treeOrder = append(treeOrder, e.ID)
				if sizes[n] == nil {
					sizes[n] = map[uint32]bool{}
				}
				sizes[n][e.Length] = true
				if i > 0 && bytes.Compare(h.Entries[i-1].ID[:], e.ID[:]) >= 0 {
					t.Errorf("tree pack %s: entry %d is not in ID order", id.Short(), i)
				}
			} else {
				nOther++
			}
		}
		if nTree > 0 && nOther > 0 {
			t.Errorf("pack %s mixes %d trees with %d other blobs", id.Short(), nTree, nOther)
		}
		if nTree > 0 {
			treePacks++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(treeOrder) != len(trees) {
		t.Fatalf("%d trees stored, want %d", len(treeOrder), len(trees))
	}
	if treePacks < 2 {
		t.Fatalf("%d tree packs; the test wants several", treePacks)
	}
	if slices.Equal(treeOrder, walk) {
		t.Fatal("trees are stored in the order they were saved")
	}
	want := uint32(crypto.BlobOverhead + crypto.TreePadMin)
	for n, ls := range sizes {
		if len(ls) != 1 || !ls[want] {
			t.Errorf("trees of %d entries are stored at lengths %v, want only %d", n, ls, want)
		}
	}

	// The owner, from a fresh open, reads each tree as a tree.
	o, err := Open(ctx, be, []byte("pw"), testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for id, n := range trees {
		plain, err := o.LoadBlob(ctx, blob.Tree, id)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := snapshot.DecodeTree(plain)
		if err != nil || len(tr.Nodes) != n {
			t.Fatalf("tree %s: %v, %d nodes", id.Short(), err, len(tr.Nodes))
		}
	}
	// A data blob is not a tree, whatever the index's stored type says.
	if _, err := o.LoadBlob(ctx, blob.Tree, refs[0].ID); err == nil {
		t.Fatal("a data blob loaded as a tree")
	}
}
