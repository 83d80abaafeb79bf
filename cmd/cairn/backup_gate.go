package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// The commit gate (backup --commit-gate FD, docs/commands.md): once every
// blob is uploaded, backup writes one commitPendingJSON line to FD and
// reads one line back; only "commit" commits the snapshot. "abort",
// anything else, the end of the stream (the parent closed it, or died
// and the kernel closed it) or an interruption commits nothing. The FD is
// one end of a socket pair the parent keeps the other end of: a separate
// channel, so the standard input stays free for --stdin and the standard
// output for the backup's own output, and a parent that dies can only
// ever close it, which is an abort.

// commitPendingJSON is the gate's question on FD.
type commitPendingJSON struct {
	MessageType string `json:"message_type"` // "commit_pending"
	FilesNew    uint64 `json:"files_new"`
	BlobsNew    uint64 `json:"blobs_new"`
	BytesAdded  uint64 `json:"bytes_added"`
	BytesRead   uint64 `json:"bytes_read"`
	Errors      uint64 `json:"errors"`
}

// errGateAbort is a backup its commit gate did not let commit.
var errGateAbort = errors.New("not committed")

// openCommitGate is the gate on file descriptor fd, closed on exec so no
// command the backup runs (--stdin-from-command) holds it open.
func openCommitGate(fd int) (*os.File, error) {
	if fd < 3 {
		return nil, usageError{fmt.Errorf("--commit-gate %d: give a descriptor above 2 (the standard ones carry the backup's data and output), e.g. one end of a socket pair passed as descriptor 3", fd)}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, usageError{fmt.Errorf("--commit-gate %d: not an open descriptor: %v", fd, err)}
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "commit-gate"), nil
}

// commitGate asks the gate f whether the backup summed up by sum may
// commit, and waits for the answer; nil only for "commit".
func commitGate(ctx context.Context, f *os.File, sum snapshot.Summary) error {
	q, _ := json.Marshal(commitPendingJSON{MessageType: client.GateQuestion, FilesNew: sum.FilesNew, BlobsNew: sum.BlobsNew,
		BytesAdded: sum.BytesAdded, BytesRead: sum.BytesRead, Errors: sum.Errors})
	if _, err := f.Write(append(q, '\n')); err != nil {
		return fmt.Errorf("commit gate: %w: the gate could not be asked (%v)", errGateAbort, err)
	}
	answer := make(chan string, 1)
	go func() {
		line, err := bufio.NewReaderSize(io.LimitReader(f, 256), 256).ReadString('\n')
		if err != nil && line == "" {
			line = "\x00" + err.Error()
		}
		answer <- strings.TrimSpace(line)
	}()
	select {
	case a := <-answer:
		switch {
		case a == client.GateCommit:
			return nil
		case a == client.GateAbort:
			return fmt.Errorf("commit gate: %w: the gate answered abort", errGateAbort)
		case strings.HasPrefix(a, "\x00"):
			return fmt.Errorf("commit gate: %w: the gate closed without an answer (%s)", errGateAbort, a[1:])
		default:
			return fmt.Errorf("commit gate: %w: the gate answered %q, not commit", errGateAbort, displayText(a))
		}
	case <-ctx.Done():
		return fmt.Errorf("commit gate: %w: %w", errGateAbort, context.Cause(ctx))
	}
}
