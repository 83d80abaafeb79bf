//go:build !linux

package local

import "syscall"

// renameNoReplace is only available on Linux; elsewhere Save falls back to
// link + unlink.
func renameNoReplace(oldpath, newpath string) error { return syscall.ENOSYS }
