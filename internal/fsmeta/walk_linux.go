package fsmeta

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// Entry is one object visited by Walk.
type Entry struct {
	Path string        // root joined with the names below it
	Node snapshot.Node // from Capturer.Lstat
	// Skip, for a directory, is the reason Walk will not descend into it
	// (Filter.SkipDir), "" otherwise.
	Skip string
}

// WalkFunc is called for every entry that is not excluded. err is non-nil
// when the entry could not be stat'ed or, for a directory, read; e.Path is
// then set. Returning fs.SkipDir from a directory's call skips its
// children (from any other entry it is ignored); any other non-nil error
// stops the walk and is returned.
type WalkFunc func(e Entry, err error) error

// Walk visits roots in the given order and, below each, every entry in
// pre-order with each directory's children sorted by raw name bytes. It
// does not follow symlinks. A nil Filter excludes nothing.
//
// Walk suits listings and dry runs. An archiver that builds trees bottom-up
// should recurse itself with Capturer.Lstat, Filter.Excluded,
// Filter.SkipDir and ReadDirSorted, in the same order as Walk.
func Walk(ctx context.Context, roots []string, c *Capturer, f *Filter, fn WalkFunc) error {
	for _, root := range roots {
		err := walk(ctx, filepath.Clean(root), c, f, fn)
		if err != nil && !errors.Is(err, fs.SkipDir) {
			return err
		}
	}
	return nil
}

func walk(ctx context.Context, path string, c *Capturer, f *Filter, fn WalkFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := c.Lstat(path)
	if err != nil {
		return fn(Entry{Path: path, Node: n}, err)
	}
	isDir := n.Type == snapshot.TypeDir
	if f != nil && f.Excluded(path, isDir) {
		return nil
	}
	e := Entry{Path: path, Node: n}
	if !isDir {
		return fn(e, nil)
	}
	if f != nil {
		reason, err := f.SkipDir(path, n)
		if err != nil {
			return fn(e, err)
		}
		e.Skip = reason
	}
	if err := fn(e, nil); err != nil || e.Skip != "" {
		return err
	}
	names, err := ReadDirSorted(path)
	if err != nil {
		if err := fn(e, err); err != nil && !errors.Is(err, fs.SkipDir) {
			return err
		}
	}
	for _, name := range names {
		err := walk(ctx, filepath.Join(path, name), c, f, fn)
		if err != nil && !errors.Is(err, fs.SkipDir) {
			return err
		}
	}
	return nil
}
