// Package prune garbage-collects a repository with the metadata identity
// alone (a server key): it never opens a tree or a data blob.
//
// One run:
//
//  1. Store an empty plan as a clock probe: its storage time T0 is "now"
//     on the coordinator's clock (R12 never uses the local clock alone).
//  2. Mark: merge every snapshot's reference manifest (sorted blob IDs,
//     plus the manifest pages themselves) into one sorted live set, in
//     memory bounded by 36 bytes per live blob (BytesPerLiveBlob; plus the index).
//     Then one walk of the index beside the live set (both are sorted by
//     blob ID) counts each pack's live and dead bytes. The index is read
//     once: the repository's load of it says which fragment lists which
//     pack (repository.IndexFragments).
//  3. Sweep every plan whose grace ran out before T0 and, when the caller
//     knows backup sessions (Options.SessionsOpenAt, a server), for which
//     no session open at its condemnation is still live: a condemned pack is
//     deleted only if the fresh mark still finds it dead; otherwise it is
//     resurrected (dropped from the plan). Index fragments that list dead
//     packs are rewritten first (new fragment written, old one removed),
//     then the packs are removed, then the plan.
//  4. Condemn: packs with no live blob, packs in storage that no index
//     lists, and — after copying their live blobs verbatim with their key
//     slots into new packs and indexing those — packs at least
//     RepackThreshold dead. The new plan (signed by the coordinator key)
//     lists them and the hashes of blobs that have no other copy, so
//     backups stop deduplicating against them. With Grace 0 the new plan
//     is swept at once, for an operator who knows nothing else writes
//     (unless a known session is live: then it waits like any plan).
//
// A plan's condemnation time is its storage time, moved onto the
// sessions' clock by the probe of step 1 (the offset between the probe's
// storage time and that clock right after the probe was stored), plus a
// margin: an upper bound of when the plan became visible. Plan.Created is
// not used: it is taken before the upload, on the condemning process's
// clock. A backup opens its session before it reads the plans, so a
// session opened after that time saw the plan and does not dedup against
// its packs.
//
// Killed at any point the repository stays consistent: a fragment is
// removed only after its replacement is stored, a pack only after no
// fragment lists it, a plan only after its packs are gone; the next run
// redoes what is left.
package prune
