package fsmeta

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// TestRestoreMetadataRaceRenameExchange is the local attacker of issue 11
// item 1: root restores a setuid/setgid root directory into a directory
// the attacker can write to, and the attacker keeps swapping that name
// with its own copy of a shell (renameat2 RENAME_EXCHANGE). SetMetadata
// must never chown or chmod the shell, whether the directory's descriptor
// is still cached from MkdirAll or has to be opened again by name.
func TestRestoreMetadataRaceRenameExchange(t *testing.T) {
	if !isRoot() {
		t.Skip("needs root: the attack is on a root restore")
	}
	rounds := 2000
	if testing.Short() {
		rounds = 200
	}
	for _, cached := range []bool{true, false} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			base := t.TempDir()
			for i := range rounds {
				if won := raceOnce(t, filepath.Join(base, fmt.Sprint(i)), cached); won != "" {
					t.Fatalf("round %d: the renamer won: %s", i, won)
				}
			}
		})
	}
}

// raceOnce runs one round in the new directory dir and says what the
// attacker gained, or "".
func raceOnce(t *testing.T, dir string, cached bool) string {
	t.Helper()
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	r, err := NewRestorer(dir, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.MkdirAll([]string{"d"}); err != nil {
		t.Fatal(err)
	}
	shell := filepath.Join(dir, "sh")
	mustWrite(t, shell, "#!/bin/sh\n", 0o755)
	if err := os.Chown(shell, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if !cached {
		r.dmu.Lock()
		r.dropDirsLocked()
		r.dmu.Unlock()
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)

	stop, done, swapped := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for first := true; ; first = false {
			select {
			case <-stop:
				return
			default:
			}
			if err := unix.Renameat2(dfd, "d", dfd, "sh", unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("renameat2: %v", err)
				close(swapped)
				return
			}
			if first {
				close(swapped)
			}
		}
	}()
	<-swapped
	// An error (the name is the shell when SetMetadata looks) is a
	// refusal, not a loss; only what happened to the shell counts.
	_ = r.SetMetadata([]string{"d"}, snapshot.Node{Type: snapshot.TypeDir, Mode: 0o6755})
	close(stop)
	<-done

	for _, name := range []string{"d", "sh"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 || st.Uid != 65534 || st.Gid != 65534 {
			return fmt.Sprintf("the shell at %q is mode %o, owned by %d:%d", name, st.Mode&0o7777, st.Uid, st.Gid)
		}
	}
	return ""
}
