// Package repair salvages damaged packs, drops them from the index and
// says what was lost.
//
// It takes the packs a check found missing, truncated or damaged (with
// ReadData, every byte). Blobs are sealed one by one (AEAD per blob), so
// each blob of a damaged pack is read and opened on its own: every one
// that decrypts and re-hashes to its ID is copied verbatim, with its key
// slot, into a new pack of the damaged pack's own provenance domain,
// signed by the coordinator key as prune's repack is (R23), unless a copy
// that serves the same snapshots is already stored elsewhere. The new
// packs are indexed first; then (unless DryRun) the damaged packs are
// dropped with prune's fragment rewrite: the new fragment is stored before
// the old one is removed. A killed repair thus leaves both copies indexed
// or the old index, never neither. Pack files are not deleted: prune
// removes packs no index lists, after its grace period.
//
// Lost are the blobs of dropped packs that did not open and have no other
// copy. Repair names the snapshots whose manifests reach them and, with the
// owner key, walks those snapshots' trees (bounded like every walk,
// walker.Expander) to list each directory whose tree is lost and each
// file that lost content, by path.
//
// The owner key opens every blob. The server key opens manifest pages
// only: it salvages packs of manifest pages and drops missing packs, but
// leaves in the index a damaged pack that holds data or tree blobs, since
// it cannot tell the good ones from the damaged ones, and it reports
// snapshots and blob counts, not paths.
package repair
