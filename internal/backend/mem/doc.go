// Package mem is an in-memory backend.Backend for tests.
//
// Invariants, the same as every backend's (checked by backendtest):
//   - Files are write-once: Save of an existing handle fails with
//     backend.ErrExists and leaves the stored bytes untouched.
//   - Save reads the whole reader before anything becomes visible, checks
//     that it delivered exactly Length bytes and, for content-named types,
//     that they hash to the name; a failed Save stores nothing.
//   - Stored bytes are private copies: mutating the slice given to Save, or
//     bytes read by Load, never changes what is stored. The only way to change
//     a stored file is Corrupt, which exists for tests.
//   - ModTime comes from the injected clock (NewWithClock), set once on Save.
//
// ReplaceConfig replaces config as the local backend's does, so code using that
// optional capability can be tested in memory.
//
// Tests of other packages can make operations fail with SetFault and damage
// stored files with Corrupt. A Backend is safe for concurrent use; callbacks
// (Load's fn, List's fn, the fault hook, Corrupt's fn) run without the
// backend's lock held, so they may call back into the backend.
package mem
