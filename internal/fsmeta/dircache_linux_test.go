package fsmeta

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestDirCacheUnderPressure makes and fills many directories from several
// goroutines with a cache far smaller than the tree, so entries are
// dropped while other operations still use them: every file must land in
// its directory, and once the Restorer is closed no descriptor may be left
// open (nor one closed twice, which would show as a failed write).
func TestDirCacheUnderPressure(t *testing.T) {
	target := t.TempDir()
	before := openFDs(t)
	r, err := NewRestorer(target, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.maxDirs = 3
	const workers, dirs = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*dirs)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range dirs {
				comps := []string{fmt.Sprintf("a%d", d%5), fmt.Sprintf("b%d", d), "c"}
				if err := r.MkdirAll(comps); err != nil {
					errs <- err
					return
				}
				f, err := r.CreateFile(append(comps, fmt.Sprintf("f%d", w)), 0)
				if err != nil {
					errs <- err
					return
				}
				if _, err := f.Write([]byte(f.Name())); err != nil {
					errs <- err
				}
				if err := f.Close(); err != nil {
					errs <- err
				}
				if err := r.SetMetadata(comps, snapshot.Node{Type: snapshot.TypeDir, Mode: 0o700, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before the restore, %d after Close", before, after)
	}
	for w := range workers {
		for d := range dirs {
			rel := filepath.Join(fmt.Sprintf("a%d", d%5), fmt.Sprintf("b%d", d), "c", fmt.Sprintf("f%d", w))
			b, err := os.ReadFile(filepath.Join(target, rel))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != rel {
				t.Fatalf("%s holds %q", rel, b)
			}
		}
	}
}
