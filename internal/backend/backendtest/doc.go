// Package backendtest is the conformance suite every backend.Backend runs:
// memory and local today, remote backends against real servers later.
//
// RunSuite checks the invariants documented in package backend, each in its
// own subtest, on a fresh backend from the caller's constructor:
//   - round trips of every file type, including empty and multi-megabyte files;
//   - ranged loads, and io.ErrUnexpectedEOF for ranges past the end;
//   - write-once: a second Save fails with ErrExists and changes nothing;
//   - content names are verified: a mismatch fails with ErrHashMismatch and
//     leaves nothing visible;
//   - malformed handles (path tricks, uppercase or short names, unknown types)
//     fail with ErrInvalidName in every operation and store nothing;
//   - a Save that fails midway (reader error, short reader, cancelled
//     context) leaves nothing visible, and succeeds when retried after Rewind;
//   - Stat, List (empty, many files across data shards, stopping on error,
//     removing from inside the callback) and Remove;
//   - concurrent Saves of distinct files, and racing Saves of one handle.
//
// Every subtest asserts something a broken backend would get wrong; a
// subtest that cannot fail is a defect.
package backendtest
