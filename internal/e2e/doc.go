// Package e2e runs the real cairn binary against real directories: it is
// built once by TestMain and driven the way users drive it, through flags,
// environment variables and exit codes. The tests are Linux-only (FIFOs,
// xattrs, sparse files, hard links).
//
// TestServerWithRestic drives real restic clients against `cairn server`:
// CAIRN_TEST_RESTIC is a colon- or comma-separated list of restic binaries
// (paths or names on PATH), default "restic" (Debian's 0.14 in CI). It runs
// once per binary, as a subtest named after its version, and skips one that
// is missing:
//
//	CAIRN_TEST_RESTIC=restic,/opt/restic-0.19.1 go test -run TestServerWithRestic ./internal/e2e/
package e2e
