package snapshot_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

func sampleStatement() *snapshot.Statement {
	s := &snapshot.Statement{Seq: 7, Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), DedupGen: 2}
	for i := range 32 {
		s.RepoID[i], s.Prev[i], s.Root[i], s.ManifestRoot[i] = byte(i), byte(i+1), byte(i+2), byte(i+3)
	}
	return s
}

func TestStatementRoundTrip(t *testing.T) {
	s := sampleStatement()
	s.MetaHash, s.SealedHash, s.DedupHash = [32]byte{9}, [32]byte{8}, [32]byte{7}
	b := s.Marshal()
	if len(b) != 1+32*3+8+32*2+8+4+32*3 || b[0] != 1 {
		t.Fatalf("statement of %d bytes, version %d", len(b), b[0])
	}
	got, err := snapshot.ParseStatement(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(s.Time) {
		t.Fatalf("time %v, want %v", got.Time, s.Time)
	}
	got.Time = s.Time
	if *got != *s {
		t.Fatalf("statement %+v, want %+v", got, s)
	}
	if !bytes.Equal(got.Marshal(), b) || got.Hash() != sha256.Sum256(b) {
		t.Fatal("statement does not re-marshal or hash to its bytes")
	}
	for name, bad := range map[string][]byte{
		"short":     b[:len(b)-1],
		"long":      append(bytes.Clone(b), 0),
		"version 2": append([]byte{2}, b[1:]...),
		"seq 0":     (&snapshot.Statement{}).Marshal(),
		"empty":     nil,
	} {
		if _, err := snapshot.ParseStatement(bad); !errors.Is(err, snapshot.ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

func newFile(t testing.TB, priv ed25519.PrivateKey, st *snapshot.Statement, dedup []byte) *snapshot.File {
	t.Helper()
	f := &snapshot.File{Statement: st, MetaSealed: []byte("sealed to the metadata identity"), OwnerSealed: []byte("sealed to the owner"), DedupSealed: dedup}
	f.Sign(priv)
	return f
}

func TestFileRoundTrip(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	for _, dedup := range [][]byte{nil, []byte("dedup set")} {
		f := newFile(t, priv, sampleStatement(), dedup)
		if !bytes.Equal(f.Statement.Writer[:], pub) {
			t.Fatal("Sign did not set the writer key")
		}
		b := f.Marshal()
		if !bytes.HasPrefix(b, []byte("CRS1")) {
			t.Fatalf("snapshot file starts %q", b[:4])
		}
		g, err := snapshot.ParseFile(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Verify(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g.Marshal(), b) || !bytes.Equal(g.StatementRaw, f.StatementRaw) || !bytes.Equal(g.OwnerSealed, f.OwnerSealed) ||
			!bytes.Equal(g.MetaSealed, f.MetaSealed) || !bytes.Equal(g.DedupSealed, f.DedupSealed) {
			t.Fatal("snapshot file does not round-trip")
		}
		if g.Statement.MetaHash != sha256.Sum256(f.MetaSealed) || g.Statement.SealedHash != sha256.Sum256(f.OwnerSealed) {
			t.Fatal("section hashes are not SHA-256 of the sealed sections")
		}
		if len(dedup) == 0 && g.Statement.DedupHash != ([32]byte{}) {
			t.Fatal("absent dedup section has a non-zero hash")
		}
	}
}

// TestFileSectionMismatch: a section swapped, changed, added or dropped
// after signing is refused by ParseFile.
func TestFileSectionMismatch(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	mods := map[string]func(f *snapshot.File){
		"meta changed":  func(f *snapshot.File) { f.MetaSealed = []byte("other metadata") },
		"owner changed": func(f *snapshot.File) { f.OwnerSealed = append(bytes.Clone(f.OwnerSealed), 0) },
		"sections swapped": func(f *snapshot.File) {
			f.MetaSealed, f.OwnerSealed = f.OwnerSealed, f.MetaSealed
		},
		"dedup added":   func(f *snapshot.File) { f.DedupSealed = []byte("x") },
		"dedup dropped": func(f *snapshot.File) { f.DedupSealed = nil },
	}
	for name, mod := range mods {
		f := newFile(t, priv, sampleStatement(), []byte("dedup"))
		if name == "dedup added" {
			f = newFile(t, priv, sampleStatement(), nil)
		}
		mod(f)
		if _, err := snapshot.ParseFile(f.Marshal()); !errors.Is(err, snapshot.ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

// TestFileSignature: a changed statement, a signature from another file or
// key, or a signature under another context does not verify.
func TestFileSignature(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	f := newFile(t, priv, sampleStatement(), nil)

	// Statement changed after signing (seq bumped: a replay under a new seq).
	g, _ := snapshot.ParseFile(f.Marshal())
	st := *g.Statement
	st.Seq++
	g.Statement, g.StatementRaw = &st, st.Marshal()
	if g2, err := snapshot.ParseFile(g.Marshal()); err != nil || !errors.Is(g2.Verify(), crypto.ErrBadSignature) {
		t.Errorf("changed statement: parse %v, verify %v", err, g2.Verify())
	}
	// Signature made by another key over the same statement.
	h, _ := snapshot.ParseFile(f.Marshal())
	h.Signature = crypto.Sign(other, crypto.SigSnapshot, h.StatementRaw)
	if !errors.Is(h.Verify(), crypto.ErrBadSignature) {
		t.Error("signature by a key other than the statement's writer verifies")
	}
	// The statement signed under another context (e.g. as a receipt).
	h.Signature = crypto.Sign(priv, crypto.SigReceipt, h.StatementRaw)
	if !errors.Is(h.Verify(), crypto.ErrBadSignature) {
		t.Error("a receipt-context signature verifies as a snapshot statement")
	}
	// Bytes of the signature flipped in the stored file.
	b := f.Marshal()
	b[4+4+len(f.StatementRaw)] ^= 1
	if k, err := snapshot.ParseFile(b); err != nil || k.Verify() == nil {
		t.Error("flipped signature verifies")
	}
}

// TestStatementChain: each statement names the hash of its writer's
// previous one.
func TestStatementChain(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	var prev [32]byte
	for seq := uint64(1); seq <= 3; seq++ {
		st := sampleStatement()
		st.Seq, st.Prev = seq, prev
		f := newFile(t, priv, st, nil)
		g, err := snapshot.ParseFile(f.Marshal())
		if err != nil || g.Verify() != nil {
			t.Fatal(err)
		}
		if g.Statement.Prev != prev {
			t.Fatalf("seq %d: prev %x", seq, g.Statement.Prev)
		}
		if seq == 1 && prev != ([32]byte{}) {
			t.Fatal("seq 1 has a previous statement")
		}
		prev = sha256.Sum256(g.StatementRaw)
		if prev != g.Statement.Hash() {
			t.Fatal("Hash is not SHA-256 of the raw statement")
		}
	}
}

func TestParseFileRefuses(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	b := newFile(t, priv, sampleStatement(), []byte("d")).Marshal()
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("CRS2"), b[4:]...),
		"truncated": b[:len(b)-1],
		"trailing":  append(bytes.Clone(b), 0),
		"no sig":    b[:4+4+snapshotStatementSize],
		"too large": make([]byte, snapshot.MaxSnapshotFile+1),
	} {
		if _, err := snapshot.ParseFile(bad); !errors.Is(err, snapshot.ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

const snapshotStatementSize = 1 + 32*3 + 8 + 32*2 + 8 + 4 + 32*3

func FuzzParseStatement(f *testing.F) {
	f.Add(sampleStatement().Marshal())
	f.Add(make([]byte, snapshotStatementSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := snapshot.ParseStatement(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Marshal(), b) {
			t.Fatal("accepted statement does not re-marshal to its bytes")
		}
	})
}

func FuzzParseFile(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(nil)
	f.Add(newFile(f, priv, sampleStatement(), nil).Marshal())
	f.Add(newFile(f, priv, sampleStatement(), []byte("dedup")).Marshal())
	f.Add([]byte("CRS1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := snapshot.ParseFile(b)
		if err != nil {
			return
		}
		if !bytes.Equal(sf.Marshal(), b) {
			t.Fatal("accepted snapshot file does not re-marshal to its bytes")
		}
		if sha256.Sum256(sf.MetaSealed) != sf.Statement.MetaHash || sha256.Sum256(sf.OwnerSealed) != sf.Statement.SealedHash {
			t.Fatal("accepted a section that does not match its hash")
		}
		_ = sf.Verify() // must not panic
	})
}

// FuzzHeadStatement: never panics, and accepts only a head whose
// statement a full parse of the same file agrees with and whose signature
// verifies.
func FuzzHeadStatement(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(nil)
	good := newFile(f, priv, sampleStatement(), nil).Marshal()
	f.Add(good[:min(len(good), snapshot.HeadSize)])
	f.Add(good)
	f.Add([]byte("CRS1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := snapshot.HeadStatement(b)
		if err != nil {
			return
		}
		if sf, err := snapshot.ParseFile(b); err == nil && sf.Statement.Hash() != st.Hash() {
			t.Fatal("head and full parse disagree on the statement")
		}
	})
}

func TestHeadStatement(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	file := newFile(t, priv, sampleStatement(), []byte("dedup")).Marshal()
	full, err := snapshot.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.HeadStatement(file[:snapshot.HeadSize])
	if err != nil || st.Hash() != full.Statement.Hash() {
		t.Fatalf("head of a good file: %v", err)
	}
	bad := bytes.Clone(file)
	bad[20] ^= 1
	if _, err := snapshot.HeadStatement(bad[:snapshot.HeadSize]); err == nil {
		t.Fatal("a head with a flipped statement byte verified")
	}
	if _, err := snapshot.HeadStatement(file[:snapshot.HeadSize-1]); err == nil {
		t.Fatal("a truncated head verified")
	}
}
