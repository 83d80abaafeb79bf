// Package retry is a backend.Backend decorator that retries operations that
// failed for a reason that may go away: a dropped connection, a timeout, a
// server that restarts or answers 5xx.
//
// It never retries a permanent failure: the backend sentinels ErrNotFound,
// ErrExists, ErrHashMismatch, ErrInvalidName, ErrPermission and ErrNoSpace,
// a cancelled or expired context, an error from the caller's reader in Save,
// an error that the caller's callback in Load or List returned on its own,
// or a Load range that runs past the end of the file.
// Retrying those would only repeat them, or, for a write-once store, turn a
// clear ErrExists into a confusing one.
//
// Delays grow exponentially from Options.Initial to Options.Max with jitter,
// for at most Options.Attempts tries. Sleeping and jitter are injected so
// tests run without waiting.
//
// A retried Save rewinds the reader first. A retried Load calls fn again from
// the start of the range, so fn must start over (LoadAll-style callbacks do).
// A retried List skips the files it already reported, so fn sees each file
// at most once.
package retry
