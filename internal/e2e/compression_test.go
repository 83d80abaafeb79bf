package e2e

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// dataBytes is the size of the packs under a local repository.
func dataBytes(t *testing.T, repo string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(repo, "data"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBackupCompressionLevels backs the same compressible tree up at every
// --compression level into a repository of its own: each restores to the
// same content, off stores more than auto, auto more than max, and an
// unknown level is refused before anything is stored.
func TestBackupCompressionLevels(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	// Text that compresses as prose does: seeded words of a small
	// vocabulary, one file of it per name.
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, 500)
	for i := range vocab {
		w := make([]byte, 2+rng.IntN(9))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		vocab[i] = string(w)
	}
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		var text bytes.Buffer
		for text.Len() < 400<<10 {
			text.WriteString(vocab[rng.IntN(len(vocab))])
			text.WriteByte(" \n"[min(rng.IntN(12), 1)^1])
		}
		if err := os.WriteFile(filepath.Join(src, name), text.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeRandom(t, filepath.Join(src, "random.bin"), 300<<10)
	want := contentHashes(t, src)

	sizes := map[string]int64{}
	for _, level := range []string{"off", "fastest", "default", "auto", "max"} {
		e := newEnv(t)
		e.ok("init")
		e.ok("backup", "--compression", level, src)
		sizes[level] = dataBytes(t, e.repo)
		target := filepath.Join(e.dir, "restore")
		e.ok("restore", "latest", "--target", target)
		got := contentHashes(t, filepath.Join(target, src))
		if len(got) != len(want) {
			t.Fatalf("--compression %s: restored %d files, want %d", level, len(got), len(want))
		}
		for p, h := range want {
			if got[p] != h {
				t.Fatalf("--compression %s: %s restored with other content", level, p)
			}
		}
	}
	t.Logf("pack bytes by level: %v", sizes)
	// default is auto's level; only the trees (times) may differ.
	if d := sizes["default"] - sizes["auto"]; d*100 > sizes["auto"] || -d*100 > sizes["auto"] {
		t.Errorf("default stored %d bytes, auto %d: default is auto's level", sizes["default"], sizes["auto"])
	}
	if !(sizes["off"] > sizes["auto"] && sizes["auto"] > sizes["max"]) {
		t.Errorf("pack bytes off %d, auto %d, max %d: want off > auto > max", sizes["off"], sizes["auto"], sizes["max"])
	}
	if sizes["fastest"] >= sizes["off"] {
		t.Errorf("fastest stored %d bytes, off %d", sizes["fastest"], sizes["off"])
	}

	e := newEnv(t)
	e.ok("init")
	r := e.run("backup", "--compression", "zip", src)
	expectExit(t, r, 1, `unknown compression "zip"`)
	if n := dataBytes(t, e.repo); n != 0 {
		t.Fatalf("a refused backup stored %d bytes of packs", n)
	}
}
