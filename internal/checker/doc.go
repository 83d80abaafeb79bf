// Package checker verifies a repository's structure and, optionally, every
// byte of its data, with the owner key or the server key.
//
// Checks, in order:
//
//  1. names: every content-named file but packs hashes to its name (packs
//     too with ReadData, since that reads them whole);
//  2. index: every index fragment loads, decrypts and parses;
//  3. snapshots: every snapshot verifies (signature by the owner or a
//     roster writer, sealed headers), and every ref of its manifest is in
//     the index;
//  4. chains, R17 (either key): forged snapshots, rollback (per-writer statement
//     chains; newest statement not behind this machine's last commit or an
//     earlier check), replayed deleted snapshots, seq gaps without a
//     tombstone, and tombstone signatures (see r17.go);
//  5. packs: every pack the index lists exists, has a valid trailer, and its
//     sealed header decrypts and equals the index's copy byte for byte;
//  6. trees (owner): every tree reachable from each root loads and
//     re-hashes, and every file's content blobs are in the index; a tree
//     or data blob a manifest references and the index lacks (lost to a
//     repair) is one problem, by the path that needs it when the walk
//     reaches it;
//  7. data (ReadData, or Subset for a rolling audit, least recently
//     verified first, see audit.go): every pack hashes to its name, and
//     every blob in it the key can open decrypts and re-hashes to its ID.
//
// Each problem names the file, the blob and the snapshots affected. Packs
// that no index lists are reported as notes, not problems: a backup killed
// before writing its index leaves them, and the next backup adopts them.
package checker
