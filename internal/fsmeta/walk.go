package fsmeta

import (
	"fmt"
	"os"
	"sort"
)

// ReadDirSorted returns the names in directory dir, without "." and "..",
// sorted by raw bytes (Go string order), so a tree built from them is
// deterministic. Names are raw bytes and need not be UTF-8.
func ReadDirSorted(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	sort.Strings(names)
	return names, nil
}
