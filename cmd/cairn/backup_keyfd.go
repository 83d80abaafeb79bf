package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/cairnbackup/cairn/internal/crypto"
)

// The key hand-over (backup --key-fd FD, docs/commands.md; the design in
// docs/threat-model.md, "R19 and the agent"): a parent that unlocked the
// key file once (the agent) writes crypto.HandoffSize bytes, the key
// file's ID and the key that opens it, to a pipe and closes its end; the
// backup reads them from FD at its start, closes FD, and unlocks with that
// key instead of a password (client.Unlock with Options.Handoff). The key
// file must still be the one the key was made for and open with it, and
// the repository's config must verify against the owner key pinned in it.

// keyFDTimeout bounds the wait for the parent's bytes: it writes them
// before it starts the backup.
const keyFDTimeout = 30 * time.Second

// readKeyFD reads the hand-over on descriptor fd and closes it. It is
// close-on-exec from the first moment, so no command the backup runs
// could ever hold it; a regular file is refused, since a key stored on
// disk is what the hand-over is there to avoid.
func readKeyFD(fd int) (*crypto.Handoff, error) {
	if fd < 3 {
		return nil, usageError{fmt.Errorf("--key-fd %d: give a descriptor above 2 (the standard ones carry the backup's data and output), e.g. a pipe passed as descriptor 3", fd)}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, usageError{fmt.Errorf("--key-fd %d: not an open descriptor: %v", fd, err)}
	}
	syscall.CloseOnExec(fd)
	if t := st.Mode & syscall.S_IFMT; t != syscall.S_IFIFO && t != syscall.S_IFSOCK {
		syscall.Close(fd)
		return nil, usageError{fmt.Errorf("--key-fd %d: not a pipe or socket; the key is handed over by a parent process, never kept in a file", fd)}
	}
	// Non-blocking, so the read below can time out.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("--key-fd %d: %w", fd, err)
	}
	f := os.NewFile(uintptr(fd), "key-fd")
	defer f.Close()
	f.SetReadDeadline(time.Now().Add(keyFDTimeout))
	buf := make([]byte, crypto.HandoffSize)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	if err != nil {
		return nil, fmt.Errorf("--key-fd %d: %w: the descriptor gave %d of %d bytes (%v)", fd, crypto.ErrBadHandoff, n, crypto.HandoffSize, err)
	}
	h, err := crypto.DecodeHandoff(buf)
	if err != nil {
		return nil, fmt.Errorf("--key-fd %d: %w", fd, err)
	}
	return &h, nil
}
