// Package archiver makes snapshots: it walks the roots in a deterministic
// order, reads changed files through the keyed chunker, saves blobs in a
// repository session, builds tree blobs bottom-up and commits the snapshot.
//
// Pipeline: one walker goroutine lstats entries in sorted order (so hard
// links and trees are deterministic, R20) and hands regular files to a pool
// of content workers; an assembler goroutine receives directories in
// post-order, waits for their children, encodes and saves each tree.
// Unchanged files (same size, mtime, ctime, inode as in the file cache and
// every content blob still known) are not read at all.
package archiver
