package agent

// The parent's side of `cairn backup --commit-gate` (docs/commands.md):
// the child gets one end of a socket pair as descriptor gateFD, asks on
// it once its data is uploaded, and commits only when told "commit". The
// agent keeps the other end; should the agent die, the kernel closes it
// and the child, reading the end of the stream, commits nothing.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/cairnbackup/cairn/internal/client"
)

// gateFD is the child's descriptor of the gate: the first of ExtraFiles.
const gateFD = 3

// gateRefused is the error of a backup whose gate check failed: nothing
// was committed.
type gateRefused struct{ error }

func (g gateRefused) Unwrap() error { return g.error }

// errGateNotAsked: the child ended without asking its gate.
var errGateNotAsked = errors.New("cairn backup ended without asking its commit gate")

type childGate struct {
	parent, child *os.File
}

func newChildGate() (*childGate, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("a socket pair for the commit gate: %w", err)
	}
	return &childGate{parent: os.NewFile(uintptr(fds[0]), "commit-gate"), child: os.NewFile(uintptr(fds[1]), "commit-gate-child")}, nil
}

// serve runs once the child started: it waits for the child's question,
// runs check and answers commit (check passed) or abort. The channel
// gets nil after a commit, errGateNotAsked when the child ended without
// asking, or a gateRefused.
func (g *childGate) serve(ctx context.Context, check func(context.Context) error) <-chan error {
	g.child.Close() // the child has its own copy; its exit ends the stream
	done := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(io.LimitReader(g.parent, 4096)).ReadBytes('\n')
		if err != nil {
			done <- errGateNotAsked
			return
		}
		var m struct {
			MessageType string `json:"message_type"`
		}
		if err := json.Unmarshal(line, &m); err != nil || m.MessageType != client.GateQuestion {
			g.parent.Write([]byte(client.GateAbort + "\n"))
			done <- gateRefused{fmt.Errorf("commit gate: unexpected question %.100q", line)}
			return
		}
		if err := check(ctx); err != nil {
			g.parent.Write([]byte(client.GateAbort + "\n"))
			done <- gateRefused{err}
			return
		}
		if _, err := g.parent.Write([]byte(client.GateCommit + "\n")); err != nil {
			done <- fmt.Errorf("commit gate: answer commit: %w", err)
			return
		}
		done <- nil
	}()
	return done
}

func (g *childGate) close() {
	g.child.Close()
	g.parent.Close()
}
