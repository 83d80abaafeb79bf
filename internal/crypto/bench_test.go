package crypto_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/crypto"
)

// sourceText is compressible input like data set K: 1 MiB of distinct Go
// source (every package of this module, concatenated), or the first MiB
// of $CAIRN_BENCH_TEXT (e.g. the kernel tar that bench/ prepares).
func sourceText(b *testing.B) []byte {
	b.Helper()
	if p := os.Getenv("CAIRN_BENCH_TEXT"); p != "" {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 1<<20)
		if _, err := io.ReadFull(f, buf); err != nil {
			b.Fatal(err)
		}
		return buf
	}
	files, _ := filepath.Glob("../../*/*/*.go")
	more, _ := filepath.Glob("../../*/*/*/*.go")
	var buf bytes.Buffer
	for _, f := range append(files, more...) {
		src, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		buf.Write(src)
		if buf.Len() >= 1<<20 {
			break
		}
	}
	out := buf.Bytes()
	for len(out) < 1<<20 {
		out = append(out, out...)
	}
	return out[:1<<20]
}

func randomMiB() []byte {
	p := make([]byte, 1<<20)
	rand.Read(p)
	return p
}

// Per-core throughput of each stage a chunk passes through on backup:
//
//	go test -run '^$' -bench . -benchtime 200x ./internal/crypto/
func BenchmarkBlobID(b *testing.B) {
	var k [32]byte
	p := randomMiB()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		crypto.BlobID(&k, 1, p)
	}
}

func BenchmarkSHA256(b *testing.B) {
	p := randomMiB()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		sha256.Sum256(p)
	}
}

func benchSeal(b *testing.B, p []byte, compress bool) {
	var k [32]byte
	s := crypto.NewSealer(&k)
	ad := &crypto.BlobAD{Type: 1}
	dst := make([]byte, 0, len(p)+1<<16)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		s.Seal(dst[:0], ad, p, compress)
	}
}

// Sealing includes zstd (default level) and AES-256-GCM.
func BenchmarkSealSourceText(b *testing.B)   { benchSeal(b, sourceText(b), true) }
func BenchmarkSealRandom(b *testing.B)       { benchSeal(b, randomMiB(), true) }
func BenchmarkSealUncompressed(b *testing.B) { benchSeal(b, randomMiB(), false) }

func BenchmarkOpenSourceText(b *testing.B) {
	var k [32]byte
	s := crypto.NewSealer(&k)
	ad := &crypto.BlobAD{Type: 1}
	p := sourceText(b)
	sealed := s.Seal(nil, ad, p, true)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := s.Open(ad, sealed); err != nil {
			b.Fatal(err)
		}
	}
}
