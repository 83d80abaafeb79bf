//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// The server holds the metadata identity: it opens every pack header and
// manifest page. Issue 11 item 4: what it reads there must not give away
// the directory structure (docs/threat-model.md: the server cannot "learn the
// directory structure"; docs/format.md §17 says what it still learns).

// layoutTree builds a source tree with what a header used to betray: a
// chain of one-entry directories (its depth), directories of 1, 2, 3 and
// 6 entries, and many small directories, with 1000-byte files.
func layoutTree(t *testing.T, src string) (deepFile string) {
	t.Helper()
	deep := filepath.Join(src, "deep")
	for i := range 12 {
		deep = filepath.Join(deep, fmt.Sprintf("d%d", i))
	}
	mkdir(t, deep)
	deepFile = filepath.Join(deep, "leaf")
	writeBytes(t, deepFile, randomBytes(1000))
	for _, n := range []int{1, 2, 3, 6} {
		dir := filepath.Join(src, "fan", fmt.Sprintf("n%d", n))
		mkdir(t, dir)
		for f := range n {
			writeBytes(t, filepath.Join(dir, fmt.Sprintf("f%d", f)), randomBytes(1000))
		}
	}
	for d := range 40 {
		dir := filepath.Join(src, "many", fmt.Sprintf("m%02d", d))
		mkdir(t, dir)
		for f := range d%3 + 1 {
			writeBytes(t, filepath.Join(dir, fmt.Sprintf("f%d", f)), randomBytes(1000))
		}
	}
	return deepFile
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// ownerTrees walks every snapshot from its root with the owner key and
// returns each tree's entry count and, per snapshot, the trees in the
// post-order a backup saves them in.
func ownerTrees(t *testing.T, ctx context.Context, owner *repository.Repository) (map[blob.ID]int, [][]blob.ID) {
	t.Helper()
	snaps, errs, err := owner.Snapshots(ctx)
	if err != nil || len(errs) > 0 {
		t.Fatalf("owner lists snapshots: %v %v", err, errs)
	}
	entries := map[blob.ID]int{}
	var orders [][]blob.ID
	for _, s := range snaps {
		var order []blob.ID
		seen := map[blob.ID]bool{}
		var walk func(id blob.ID)
		walk = func(id blob.ID) {
			plain, err := owner.LoadBlob(ctx, blob.Tree, id)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := snapshot.DecodeTree(plain)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tr.Nodes {
				if n.Type == snapshot.TypeDir && n.Subtree != nil && !seen[*n.Subtree] {
					walk(*n.Subtree)
				}
			}
			seen[id] = true
			entries[id] = len(tr.Nodes)
			order = append(order, id)
		}
		walk(s.File.Statement.Root)
		orders = append(orders, order)
	}
	return entries, orders
}

// TestHostileLayoutHidesTrees backs a tree up twice with the real binary,
// then opens every pack header and manifest page with a server key, as
// the server does, and checks that no tree blob's type or position is
// visible: header entries and manifest refs say only content or manifest
// page, no pack holds trees and other blobs together, tree packs are in
// ID order (not the walk's post-order), and directories of one, two and
// three entries are stored at one length. The owner still restores and
// checks everything.
func TestHostileLayoutHidesTrees(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.ok("init")
	src := filepath.Join(e.dir, "src")
	deepFile := layoutTree(t, src)
	e.ok("backup", src)
	writeBytes(t, deepFile, randomBytes(1000)) // the second session stores the changed chain
	e.ok("backup", src)

	sv, skey := serverKey(e)
	be, err := location.Open(ctx, e.repo, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spw, _ := os.ReadFile(sv["CAIRN_PASSWORD_FILE"])
	srv, err := repository.OpenKeyFile(ctx, be, skey, bytes.TrimSpace(spw), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !srv.CanReadMetadata() || srv.CanReadContent() {
		t.Fatal("the server key should read metadata and no content")
	}
	if err := srv.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	owner, err := repository.Open(ctx, be, []byte("correct horse"), repository.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	entries, orders := ownerTrees(t, ctx, owner)
	pos := map[blob.ID]int{} // a tree's place in its snapshot's post-order walk
	for _, order := range orders {
		for i, id := range order {
			pos[id] = i
		}
	}

	var packs []blob.ID
	if err := be.List(ctx, backend.Data, func(fi backend.FileInfo) error {
		id, err := blob.ParseID(fi.Name)
		packs = append(packs, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	stored := map[blob.ID]bool{}
	lengths := map[int]map[uint32]bool{} // entry count -> stored lengths seen
	treePacks := 0
	for _, p := range packs {
		h, _, err := srv.StoredPackHeader(ctx, p)
		if err != nil {
			t.Fatalf("the server opens pack %s: %v", p.Short(), err)
		}
		var trees, others int
		var walkPos []int
		for i, en := range h.Entries {
			if en.Type != blob.Data && en.Type != blob.ManifestPage {
				t.Errorf("pack %s entry %d: the server reads type %s, more than content or manifest page", p.Short(), i, en.Type)
			}
			n, isTree := entries[en.ID]
			if !isTree {
				others++
				continue
			}
			trees++
			stored[en.ID] = true
			walkPos = append(walkPos, pos[en.ID])
			if en.Type != blob.Data {
				t.Errorf("tree %s is recorded as %s", en.ID.Short(), en.Type)
			}
			if i > 0 && bytes.Compare(h.Entries[i-1].ID[:], en.ID[:]) >= 0 {
				t.Errorf("tree pack %s: entry %d is not in ID order", p.Short(), i)
			}
			if lengths[n] == nil {
				lengths[n] = map[uint32]bool{}
			}
			lengths[n][en.Length] = true
		}
		if trees > 0 && others > 0 {
			t.Errorf("pack %s holds %d trees and %d other blobs", p.Short(), trees, others)
		}
		if trees > 0 {
			treePacks++
		}
		if len(walkPos) >= 10 && slices.IsSorted(walkPos) {
			t.Errorf("tree pack %s keeps the walk's post-order", p.Short())
		}
	}
	if len(stored) != len(entries) || treePacks == 0 {
		t.Fatalf("%d of %d trees found in %d tree packs", len(stored), len(entries), treePacks)
	}
	// Directories of one, two and three entries look the same: one length.
	small := map[uint32]bool{}
	for n := 1; n <= 3; n++ {
		if len(lengths[n]) == 0 {
			t.Fatalf("no stored tree of %d entries (lengths %v)", n, lengths)
		}
		for l := range lengths[n] {
			small[l] = true
		}
	}
	if len(small) != 1 {
		t.Errorf("trees of 1, 2 and 3 entries are stored at %d lengths: %v", len(small), lengths)
	}
	t.Logf("stored tree lengths by entry count: %v", lengths)
	// What churn still shows (docs/format.md §17): the second backup
	// changed one file and stores one new tree per directory on its path
	// from / (the temporary directory's, then src, deep, d0…d11).
	first := map[blob.ID]bool{}
	for _, id := range orders[0] {
		first[id] = true
	}
	fresh := 0
	for _, id := range orders[1] {
		if !first[id] {
			fresh++
		}
	}
	t.Logf("the second backup, one changed file, stored %d new trees of %d", fresh, len(orders[1]))

	// The manifest, which the server reads too, lists trees as content.
	snaps, _, err := srv.Snapshots(ctx)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("server lists %d snapshots: %v", len(snaps), err)
	}
	for _, s := range snaps {
		refs, err := srv.ManifestRefs(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range refs {
			if r.Type != blob.Data {
				t.Fatalf("snapshot %s's manifest lists %s %s", s.ID.Short(), r.Type, r.ID.Short())
			}
		}
	}

	e.ok("check", "--read-data")
	target := filepath.Join(e.dir, "restore")
	e.ok("restore", "latest", "--target", target)
	want, got := contentHashes(t, src), contentHashes(t, filepath.Join(target, src))
	if len(got) != len(want) {
		t.Fatalf("restored %d files, backed up %d", len(got), len(want))
	}
	for p, sum := range want {
		if got[p] != sum {
			t.Fatalf("%s restored differently", strings.TrimPrefix(p, src))
		}
	}
}
