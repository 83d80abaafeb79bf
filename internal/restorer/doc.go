// Package restorer reads snapshots back: it loads and validates trees
// (stored trees are hostile input, R18), walks them, restores files,
// directories, links and special files below a target through
// fsmeta.Restorer (which never follows a symlink), and dumps single files.
//
// Restore order: directories are created as needed; file contents are
// written by parallel workers, single-blob files grouped by pack so each
// pack is read once; hard links are made after every file exists; metadata
// is set after each object's content, and on directories last, deepest
// first, so restoring a child never disturbs a parent's times or modes.
package restorer
