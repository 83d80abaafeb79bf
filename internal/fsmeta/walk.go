package fsmeta

import (
	"fmt"
	"os"
	"sort"
)

// Dir is a directory open for listing and for Capturer.LstatAt of its
// entries.
type Dir struct {
	f    *os.File
	fd   int
	path string
}

// OpenDir opens directory path.
func OpenDir(path string) (*Dir, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &Dir{f: f, fd: int(f.Fd()), path: path}, nil
}

// Path is the path the directory was opened by.
func (d *Dir) Path() string { return d.path }

// Names returns the names in the directory, without "." and "..", sorted
// by raw bytes (Go string order), so a tree built from them is
// deterministic. Names are raw bytes and need not be UTF-8.
func (d *Dir) Names() ([]string, error) {
	names, err := d.f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", d.path, err)
	}
	sort.Strings(names)
	return names, nil
}

// Close closes the directory; LstatAt must not be called after it.
func (d *Dir) Close() error { return d.f.Close() }

// ReadDirSorted returns the names in directory dir as Dir.Names does.
func ReadDirSorted(dir string) ([]string, error) {
	d, err := OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Names()
}
