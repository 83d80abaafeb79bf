// Package local stores a repository in a directory of the local filesystem.
//
// Layout, compatible with restic's local layout:
//
//	DIR/config          the repository's config (fixed name)
//	DIR/<type>/<name>   every other type, named by the SHA-256 of the bytes
//	DIR/data/<nn>/<name> packs, sharded by the first two hex digits of the
//	                    name into 256 directories 00..ff
//
// A Save is durable and write-once:
//
//  1. stream the reader into DIR/<type>/.tmp-<random> (the target's own
//     directory, so the final move is a rename within one directory),
//     hashing the bytes on the way;
//  2. refuse a reader that gives fewer or more bytes than its Length, and
//     for content-named types bytes whose SHA-256 is not the name
//     (backend.ErrHashMismatch);
//  3. make the file read-only (0444), fsync it, close it;
//  4. move it into place without replacing anything: renameat2 with
//     RENAME_NOREPLACE; where the filesystem lacks it, link(2) + unlink of the
//     temporary name; where it lacks hard links too (exFAT, some FUSE), a
//     check followed by rename, which is only done for content-named files
//     because a racing writer of the same name carries the same verified
//     bytes (config then fails rather than risk replacing a config);
//  5. fsync the directory so the new name survives a crash.
//
// So a file is visible under its name only complete, synced and verified; an
// existing file is never replaced (backend.ErrExists), and any failure removes
// the temporary file. Names starting with ".tmp-" are never valid file names,
// so List never reports a temporary file; CleanTemp sweeps those a crash left
// behind. Directories are created 0700: the repository is its owner's.
//
// A spool (Backend.Spool, used for packs) is the same steps split in two:
// the writer streams into DIR/<type>/.tmp-<random> as it produces the
// bytes, hashed on the way, and Save names the file by that hash and does
// steps 3 to 5 (moving it into its shard directory). A pack is then written
// and hashed once and never held whole in memory.
//
// The only file ever replaced is config, through ReplaceConfig: temporary
// file, fsync, rename over config, fsync of the directory, so readers see
// the old config or the new one, never a mixture.
//
// Errors from the filesystem are mapped to backend sentinels: ENOSPC and
// EDQUOT to ErrNoSpace, EACCES, EPERM and EROFS to ErrPermission, a missing
// file to ErrNotFound. Errors from the caller's reader are passed through
// unmapped: a source that fails is not a full or forbidden repository.
package local
