// Package index is the repository's in-memory blob index: it maps a blob's
// (ID, type) to the pack, offset and length it is stored at, in about 50
// bytes per blob.
//
// # Layout
//
// An entry is packed into 48 bytes: the 32-byte ID, the pack's index in a
// pack table shifted left 8 bits and or-ed with the blob type, offset,
// length and key slot as uint32s. Pack IDs are interned: the table is a
// []blob.ID plus one map entry per pack (packs are few: one per ~300 blobs),
// so an Index holds at most MaxPacks (2^24) packs.
//
// Entries are split into 256 shards by the ID's first byte. A shard is one
// array: a sorted prefix, ordered by (ID, type, pack ID, offset, length,
// slot), then a tail of recent Adds in insertion order, then spare
// capacity. The tail is found through a small open-addressing hash table of
// uint32 tail positions (at most half full). The sorted prefix has a
// directory on the ID bits after the first byte, with one uint32 per 4 to 8
// entries, so a lookup binary searches a handful of entries.
//
// # Invariants
//
//   - Every pack in the pack table has at least one entry (RemovePacks
//     renumbers the table).
//   - Blob IDs are keyed hashes, so shards and directory buckets are evenly
//     filled; skewed IDs stay correct, only slower.
//   - Duplicates are kept: the same blob in two packs, or the same entry
//     added twice, are two entries. Lookup returns one, LookupAll all.
//   - Readers never write: Lookup, Has, LookupAll, Len, Each and Packs may
//     run concurrently; writers need external locking (Concurrent).
//
// # Algorithm
//
// Add appends to a shard's tail. When the tail reaches max(64, sorted/8)
// entries, or the array is full, the tail is sorted (by 8-byte keys: ID
// bytes 1 to 5 and the tail position) and merged into the sorted prefix in
// place, from the back, each sorted run found by galloping and moved with
// one copy. A full array then grows by a quarter. So Add is amortised O(1)
// with about 8 entry moves per Add, all within a shard (1/256 of the index,
// cache-sized at a few million entries), and memory is the entries plus a
// quarter at most of slack, tail hash and directory. Grow(n) reserves room
// up front when the number of entries to load is known; Compact merges all
// tails and gives back all slack (the repository's LoadIndex calls it), so
// a loaded index holds 48 bytes per entry, its directories (0.5 to 1 byte
// per entry) and the pack table.
//
// # Measurements
//
// On the shared 2-core AMD EPYC build VM (Go 1.26), random IDs, a new pack
// every 300 entries, heap measured with runtime.ReadMemStats after
// runtime.GC:
//
//	CAIRN_INDEX_MEM_10M=1 go test -run TestIndexMemory -v ./internal/index/
//
//	entries  build with Add  B/blob  after Compact  with Grow(n)  lookup hit/miss
//	1 M      0.67 s CPU      57.1    56.0           0.33 s, 55.0  152 / 118 ns
//	10 M     6.8 s CPU       57.0    55.3           3.7 s, 52.2   264 / 172 ns
//
// Since Compact gives back all slack and the directory is sized as said
// above (it was 1 to 2 bytes per entry), the same test gives 49.9 B/blob
// after Compact at 1 M, and a repository's LoadIndex of 1 M blobs keeps
// 49.6 B/blob on the heap (bench/large.sh; issue 17's goal is 50).
//
// About half the build time on this VM is the first touch of fresh memory
// (some 6 ms per MiB in page faults, counted as CPU time), which is why
// Grow, allocating once, halves it. restic 0.14 needs about 350 bytes per
// blob at peak on the same machine.
package index
