package crypto_test

import (
	"encoding/hex"
	"testing"

	"github.com/cairnbackup/cairn/internal/crypto"
)

// vectorSecret is the fixed input of the HKDF test vectors in
// docs/format.md: the 32 bytes 0x00, 0x01, …, 0x1f.
func vectorSecret() []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = byte(i)
	}
	return s
}

// TestDeriveVectors pins crypto.Derive (HKDF-SHA-256, salt "cairn hkdf salt
// v1", info = label) under every label. The same table is in
// docs/format.md; the values were cross-checked against an independent
// RFC 5869 implementation.
func TestDeriveVectors(t *testing.T) {
	vectors := []struct{ label, want string }{
		{crypto.LabelBlobID, "838e285b72d105edaa8043116a5c648726e58710bfc631b9c8187c4e483585c2"},
		{crypto.LabelChunker, "e36325649655f2f40389d9a55b24e819fac8c10e3524aafc2dfe52d124da44b9"},
		{crypto.LabelCache, "7f53a9c07999e52189c0b9b3e60443d0d513b93108529bde5036f5cd99459990"},
		{crypto.LabelGroup, "361b63abd88260e732dd50b32b735a87078cf5102db0c9d088fe1c5e65e6d15a"},
		{crypto.LabelWriterDedup, "628bfcf64ec98f7ca7f5b9ef5afcef192873439a7eaffc89010ca89b157d8be3"},
		{crypto.LabelKeyFile, "2b408294449aa93d7c282376085e208dc13d09c9bf27470065fa546ea71961b7"},
	}
	seen := map[string]string{}
	for _, v := range vectors {
		k := crypto.Derive(vectorSecret(), v.label)
		got := hex.EncodeToString(k[:])
		if got != v.want {
			t.Errorf("Derive(0x00..0x1f, %q) = %s, want %s", v.label, got, v.want)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("labels %q and %q derive the same key", prev, v.label)
		}
		seen[got] = v.label
	}
}

// TestLabelsPinned guards the label strings themselves: they are part of
// the format.
func TestLabelsPinned(t *testing.T) {
	for got, want := range map[string]string{
		crypto.LabelBlobID:      "cairn v1 blob id",
		crypto.LabelChunker:     "cairn v1 chunker",
		crypto.LabelCache:       "cairn v1 cache",
		crypto.LabelGroup:       "cairn v1 path group",
		crypto.LabelWriterDedup: "cairn v1 writer dedup",
		crypto.LabelKeyFile:     "cairn v1 key file",
	} {
		if got != want {
			t.Errorf("label %q, want %q", got, want)
		}
	}
}

func TestDeriveDedup(t *testing.T) {
	d := crypto.DeriveDedup(7, vectorSecret())
	if d.Gen != 7 {
		t.Fatalf("Gen = %d", d.Gen)
	}
	for name, pair := range map[string][2][32]byte{
		"id":    {d.ID, crypto.Derive(vectorSecret(), crypto.LabelBlobID)},
		"cdc":   {d.CDC, crypto.Derive(vectorSecret(), crypto.LabelChunker)},
		"cache": {d.Cache, crypto.Derive(vectorSecret(), crypto.LabelCache)},
		"group": {d.Group, crypto.Derive(vectorSecret(), crypto.LabelGroup)},
	} {
		if pair[0] != pair[1] {
			t.Errorf("DeriveDedup %s key is not Derive under its label", name)
		}
	}
	if d.ID == d.CDC || d.ID == d.Cache || d.ID == d.Group || d.CDC == d.Cache || d.CDC == d.Group || d.Cache == d.Group {
		t.Error("two dedup keys are equal")
	}
	other := vectorSecret()
	other[0] ^= 1
	if crypto.DeriveDedup(7, other).ID == d.ID {
		t.Error("different secrets derive the same K_id")
	}
}
