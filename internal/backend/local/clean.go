package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
)

// CleanTemp removes temporary files (".tmp-*") last modified more than
// olderThan ago: what a crash or a kill during Save leaves behind. Pass an
// age longer than any Save can take, so a running Save's file is spared.
// It returns how many files it removed.
func (b *Backend) CleanTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	dirs := []string{b.dir}
	for _, t := range backend.AllTypes {
		if t != backend.Config {
			dirs = append(dirs, filepath.Join(b.dir, string(t)))
		}
	}
	for i := range 256 {
		dirs = append(dirs, filepath.Join(b.dir, string(backend.Data), shard(i)))
	}
	cutoff := b.sys.now().Add(-olderThan)
	removed := 0
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			return removed, fmt.Errorf("local: clean temporary files: %w", err)
		}
		n, err := cleanDir(dir, cutoff)
		removed += n
		if err != nil {
			return removed, fmt.Errorf("local: clean temporary files: %w", err)
		}
	}
	return removed, nil
}

func cleanDir(dir string, cutoff time.Time) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, classify(err)
	}
	removed := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".tmp-") || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // its Save finished or failed meanwhile
		}
		if err != nil {
			return removed, classify(err)
		}
		if !info.ModTime().Before(cutoff) {
			continue
		}
		err = os.Remove(filepath.Join(dir, e.Name()))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, classify(err)
		}
		if err == nil {
			removed++
		}
	}
	return removed, nil
}
