package snapshot_test

import (
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// TestSetContent: the content hash is kept for two or more blobs only.
func TestSetContent(t *testing.T) {
	sha := blob.ID{9}
	for blobs, want := range []bool{false, false, true, true} {
		n := snapshot.Node{Name: "f", Type: snapshot.TypeFile, ContentHash: idp(7)}
		n.SetContent(make([]blob.ID, blobs), sha)
		if (n.ContentHash != nil) != want || want && *n.ContentHash != sha {
			t.Errorf("%d blobs: content hash %v, want kept = %v", blobs, n.ContentHash, want)
		}
		if _, err := (&snapshot.Tree{Nodes: []snapshot.Node{n}}).Encode(); err != nil {
			t.Errorf("%d blobs: %v", blobs, err)
		}
	}
}

// TestContentDigest: a file's bytes match its identity, whatever its number
// of blobs, and any other bytes do not.
func TestContentDigest(t *testing.T) {
	gen1 := crypto.DeriveDedup(1, make([]byte, 32))
	gen2 := crypto.DeriveDedup(2, []byte("another generation secret 32 by."))
	both := map[uint32]crypto.DedupKeys{1: gen1, 2: gen2}
	content := []byte("the whole content of a small file")
	sha := blob.ID(sha256.Sum256(content))
	oneBlob := func(k crypto.DedupKeys, typ blob.Type) snapshot.Node {
		return snapshot.Node{Name: "f", Type: snapshot.TypeFile, Size: uint64(len(content)),
			Content: []blob.ID{crypto.BlobID(&k.ID, uint8(typ), content)}}
	}
	twoBlobs := snapshot.Node{Name: "f", Type: snapshot.TypeFile, Size: uint64(len(content))}
	twoBlobs.SetContent([]blob.ID{{1}, {2}}, sha)
	empty := snapshot.Node{Name: "f", Type: snapshot.TypeFile}
	check := func(name string, n snapshot.Node, keys map[uint32]crypto.DedupKeys, pieces [][]byte, want bool) {
		t.Helper()
		d, err := snapshot.NewContentDigest(&n, keys)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range pieces {
			d.Write(p)
		}
		if got := d.Matches(); got != want {
			t.Errorf("%s: Matches = %v, want %v", name, got, want)
		}
	}
	changed := []byte("the whole content of a small fild")
	for _, c := range []struct {
		name   string
		n      snapshot.Node
		keys   map[uint32]crypto.DedupKeys
		pieces [][]byte
		want   bool
	}{
		{"one blob", oneBlob(gen1, blob.Data), map[uint32]crypto.DedupKeys{1: gen1}, [][]byte{content}, true},
		{"one blob, in pieces", oneBlob(gen1, blob.Data), both, [][]byte{content[:5], nil, content[5:]}, true},
		{"one blob of an older generation", oneBlob(gen1, blob.Data), both, [][]byte{content}, true},
		{"one blob of the newer generation", oneBlob(gen2, blob.Data), both, [][]byte{content}, true},
		{"one blob, changed byte", oneBlob(gen1, blob.Data), both, [][]byte{changed}, false},
		{"one blob, truncated", oneBlob(gen1, blob.Data), both, [][]byte{content[:len(content)-1]}, false},
		{"one blob, longer", oneBlob(gen1, blob.Data), both, [][]byte{content, {0}}, false},
		{"one blob, key not held", oneBlob(gen2, blob.Data), map[uint32]crypto.DedupKeys{1: gen1}, [][]byte{content}, false},
		// A tree's ID over the same bytes is not a data blob's: a file's
		// identity is its content as data only.
		{"one blob that is a tree", oneBlob(gen1, blob.Tree), both, [][]byte{content}, false},
		{"two blobs", twoBlobs, nil, [][]byte{content}, true},
		{"two blobs, changed byte", twoBlobs, nil, [][]byte{changed}, false},
		{"empty", empty, nil, nil, true},
		{"empty, zero-length writes", empty, nil, [][]byte{nil, {}}, true},
		{"empty, a byte", empty, nil, [][]byte{{0}}, false},
	} {
		check(c.name, c.n, c.keys, c.pieces, c.want)
	}
}

// TestContentDigestRefuses: nothing to check against for a node without
// content of its own, a shape the decoder refuses, or a one-blob file
// without a dedup key.
func TestContentDigestRefuses(t *testing.T) {
	keys := map[uint32]crypto.DedupKeys{1: crypto.DeriveDedup(1, make([]byte, 32))}
	for name, n := range map[string]snapshot.Node{
		"hard link": {Name: "f", Type: snapshot.TypeFile, HardLinkTo: "g"},
		"directory": {Name: "d", Type: snapshot.TypeDir, Subtree: idp(1)},
		"symlink":   {Name: "l", Type: snapshot.TypeSymlink},
	} {
		if _, err := snapshot.NewContentDigest(&n, keys); !errors.Is(err, snapshot.ErrNoContent) {
			t.Errorf("%s: err = %v, want ErrNoContent", name, err)
		}
	}
	for name, n := range map[string]snapshot.Node{
		"one blob and a hash": {Name: "f", Type: snapshot.TypeFile, Content: []blob.ID{{1}}, ContentHash: idp(2)},
		"two blobs, no hash":  {Name: "f", Type: snapshot.TypeFile, Content: []blob.ID{{1}, {2}}},
	} {
		if _, err := snapshot.NewContentDigest(&n, keys); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	n := snapshot.Node{Name: "f", Type: snapshot.TypeFile, Content: []blob.ID{{1}}}
	if _, err := snapshot.NewContentDigest(&n, nil); err == nil {
		t.Error("one blob without a dedup key: accepted")
	}
}
