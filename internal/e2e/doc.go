// Package e2e runs the real cairn binary against real directories: it is
// built once by TestMain and driven the way users drive it, through flags,
// environment variables and exit codes. The tests are Linux-only (FIFOs,
// xattrs, sparse files, hard links).
package e2e
