package restorer

import (
	"errors"
	"testing"
)

func TestLockTarget(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockTarget(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A second lock, on a descriptor of its own as another process's
	// would be, is refused while the first is held.
	if _, err := lockTarget(dir); !errors.Is(err, ErrTargetBusy) {
		t.Fatalf("second lock: %v, want ErrTargetBusy", err)
	}
	unlock()
	unlock2, err := lockTarget(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
	if _, err := lockTarget(dir + "/missing"); err == nil {
		t.Fatal("locked a directory that does not exist")
	}
}
