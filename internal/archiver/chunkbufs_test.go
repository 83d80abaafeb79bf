package archiver_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/backend/mem"
	"github.com/cairnbackup/cairn/internal/chunker"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
)

// TestChunkBuffersRoundTrip: files around the smallest chunk's size and
// files of many chunks, backed up several at once (so the buffers chunks
// are read into pass from file to file and between sealers), plus a
// stream on standard input, restore byte for byte; a second backup after
// a few bytes changed in the large files restores the new content.
func TestChunkBuffersRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	p := chunker.DefaultParams
	want := map[string][]byte{}
	for name, size := range map[string]int{
		"empty": 0, "one": 1, "below-min": p.Min - 1, "min": p.Min, "above-min": p.Min + 1,
		"big1": 3*p.Max + 12345, "big2": 2*p.Max + 1, "big3": 5 * p.Avg, "big4": p.Max,
	} {
		want[name] = fill(size)
	}
	// Zeros: chunks of the largest size, the same blob many times.
	want["zeros"] = make([]byte, 3*p.Max+7)
	write := func() {
		for name, b := range want {
			if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write()
	kdf := crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}
	repo, err := repository.Init(ctx, mem.New(), []byte("pw"), repository.Options{KDF: &kdf, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	stdin := fill(2*p.Max + 99)
	check := func(opts archiver.Options, stdinWant []byte) {
		t.Helper()
		res, err := archiver.Backup(ctx, repo, []string{src}, opts)
		if err != nil {
			t.Fatal(err)
		}
		target := t.TempDir()
		if _, err := restorer.Restore(ctx, repo, res.Snapshot, "/", restorer.Options{Target: target, Verify: true}); err != nil {
			t.Fatal(err)
		}
		for name, b := range want {
			got, err := os.ReadFile(filepath.Join(target, src, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, b) {
				t.Errorf("%s: restored %d bytes differ from the %d backed up", name, len(got), len(b))
			}
		}
		if stdinWant != nil {
			got, err := os.ReadFile(filepath.Join(target, "stream"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, stdinWant) {
				t.Errorf("stdin: restored %d bytes differ from the %d backed up", len(got), len(stdinWant))
			}
		}
	}
	check(archiver.Options{Workers: 4, Stdin: bytes.NewReader(stdin), StdinFilename: "stream"}, stdin)
	for _, name := range []string{"big1", "big2", "big3", "zeros"} {
		for _, off := range []int{0, len(want[name]) / 2, len(want[name]) - 1} {
			want[name][off] ^= 0xff
		}
	}
	write()
	check(archiver.Options{Workers: 4}, nil)
}
