// Package trust encodes the owner-signed objects that anchor a repository:
// the config (repository parameters and public keys) and the writer roster
// (which signing keys may commit snapshots). Both are versioned by a
// sequence number; a reader refuses a version lower than the highest it has
// seen (R3). Every version is stored content-named; the newest config is
// also at the fixed name "config".
package trust
