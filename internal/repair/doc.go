// Package repair drops missing or unreadable packs from the index and says
// what was lost.
//
// It finds damaged packs with the checker (structure, or every byte with
// ReadData), computes the blobs that had no other copy, names the
// snapshots whose manifests reach them and, with the owner key, walks
// those snapshots' trees to list each file and directory that lost
// content, by path. Then (unless DryRun) it rewrites the index fragments
// that list the damaged packs with prune's rewrite: the new fragment is
// stored before the old one is removed, so a killed repair leaves either
// index, never neither. Pack files are not deleted: prune removes packs
// no index lists, after its grace period.
//
// Repair works with the owner or the server key; the server key cannot
// read trees, so it reports snapshots and blob counts, not paths.
package repair
