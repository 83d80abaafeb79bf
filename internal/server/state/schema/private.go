package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// makePrivate creates path mode 0600 if it is missing and takes group and
// other permissions away from it and from suffixes of it that exist, so a
// file holding secrets or hashes (state.db with its -wal and -shm: client
// password hashes) is 0600 whatever the directory's mode or the umask.
// SQLite creates a database's -wal and -shm files with the database
// file's own mode, which is why the database is made first.
func makePrivate(path string, suffixes ...string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range append([]string{path}, suffixAll(path, suffixes)...) {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&^0o077); err != nil {
				return err
			}
		}
	}
	return nil
}

func suffixAll(path string, suffixes []string) []string {
	out := make([]string, len(suffixes))
	for i, s := range suffixes {
		out[i] = path + s
	}
	return out
}
