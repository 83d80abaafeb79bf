// Package repository ties a storage backend to cairn's format: it unlocks
// keys, verifies config and roster, loads the index, saves blobs into packs
// within a backup session, loads and verifies blobs, and commits and lists
// snapshots.
//
// Write order within a session makes every crash leave a consistent
// repository: packs are uploaded first (each recorded in the local journal
// once stored), then the index fragments that describe them, then the
// manifest pages, then the snapshot file, which alone makes a snapshot
// visible. Nothing here deletes a file.
package repository
