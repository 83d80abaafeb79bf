package state

import (
	"errors"
	"os"
	"syscall"
)

// mapShared maps the first n bytes of the file at path, read only and
// shared with its writers. SQLite grows a WAL index in regions of 32 KiB
// and truncates it only when no connection has it open.
func mapShared(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < 32<<10 {
		return nil, errors.New("WAL index shorter than its first region")
	}
	return syscall.Mmap(int(f.Fd()), 0, n, syscall.PROT_READ, syscall.MAP_SHARED)
}

func unmapShared(mem []byte) { syscall.Munmap(mem) }
