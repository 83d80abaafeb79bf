package restorer

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrTargetBusy is a restore refused because another one is writing into
// the same target directory.
var ErrTargetBusy = errors.New("another restore is writing into this directory")

// lockTarget takes an exclusive advisory lock (flock) on the target
// directory itself for the restore's duration: two restores into one
// target would each remove the other's temporary files as an interrupted
// run's (removeTemps). The lock is on the directory, so a restore leaves
// no lock file behind, and the kernel drops it when the process ends,
// however it ends: a killed restore never blocks the next one. A file
// system without flock (ENOLCK, EOPNOTSUPP) restores unlocked. The
// returned function releases the lock.
func lockTarget(target string) (func(), error) {
	f, err := os.Open(target)
	if err != nil {
		return nil, err
	}
	err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		f.Close()
		return nil, fmt.Errorf("%s: %w", target, ErrTargetBusy)
	case errors.Is(err, unix.ENOLCK), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
		f.Close()
		return func() {}, nil
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", target, err)
	}
	return func() { f.Close() }, nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}
