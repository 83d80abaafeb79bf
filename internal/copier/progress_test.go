package copier_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/copier"
	"github.com/cairnbackup/cairn/internal/ticker"
)

// TestCopyProgress: a Counter given to Copy counts the snapshot's files
// and their bytes, of the total the copy found when it started.
func TestCopyProgress(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "one"), []byte("one"), 0o644)
	os.WriteFile(filepath.Join(src, "two"), []byte("two two"), 0o644)
	a, b := newRepo(t), newRepo(t)
	if _, err := archiver.Backup(ctx, a, []string{src}, archiver.Options{}); err != nil {
		t.Fatal(err)
	}
	orig := snapshots(t, a)[0]
	c := ticker.Start(func(ticker.Counts) {})
	if _, err := copier.Copy(ctx, a, orig, b, copier.Options{Time: orig.Time(), Progress: c}); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	if n := c.Counts(); n.Items != 2 || n.TotalItems != 2 || n.Bytes != 10 {
		t.Fatalf("counted %+v, want 2 of 2 files, 10 bytes", n)
	}
}
