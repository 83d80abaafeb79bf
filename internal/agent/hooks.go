package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Phase is when a hook runs.
type Phase string

// The phases. Before hooks run in order and stop at the first failure (the
// backup then does not run); after hooks run after every backup, failed
// or not, since they usually undo what before hooks did; on_error hooks
// run after a failure, before the after hooks.
const (
	Before  Phase = "before"
	After   Phase = "after"
	OnError Phase = "on_error"
)

// HookGrace is how long a hook has to exit after SIGTERM (on timeout or
// cancellation) before its whole process group is killed.
const HookGrace = 10 * time.Second

// hookGrace is HookGrace; tests shorten it.
var hookGrace = HookGrace

// outputTail is how much of a hook's output an error quotes.
const outputTail = 4 << 10

// HookError is a hook that failed: its exit status (or timeout) and the
// end of its output.
type HookError struct {
	Phase    Phase
	Index    int
	Run      string
	ExitCode int // -1: killed (timeout or cancellation)
	TimedOut bool
	Tail     string
	Err      error
}

func (e *HookError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s hook %d (%s) ", e.Phase, e.Index+1, e.Run)
	switch {
	case e.TimedOut:
		b.WriteString("timed out")
	case e.ExitCode > 0:
		fmt.Fprintf(&b, "exited with status %d", e.ExitCode)
	default:
		fmt.Fprintf(&b, "failed: %v", e.Err)
	}
	if t := strings.TrimSpace(e.Tail); t != "" {
		fmt.Fprintf(&b, "; its output ended with:\n%s", t)
	}
	return b.String()
}

func (e *HookError) Unwrap() error { return e.Err }

// RunHooks runs hooks of one phase in order with /bin/sh -c, each in its
// own process group, with env added to the agent's environment and
// CAIRN_HOOK set to the phase. Output goes to log (each line prefixed with
// the phase). With stopOnError it returns at the first failure; otherwise
// it runs them all and returns the failures joined.
func RunHooks(ctx context.Context, phase Phase, hooks []Hook, env []string, log io.Writer, stopOnError bool) error {
	var errs []error
	for i, h := range hooks {
		if err := runHook(ctx, phase, i, h, env, log); err != nil {
			if stopOnError {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func runHook(ctx context.Context, phase Phase, i int, h Hook, env []string, log io.Writer) error {
	timeout := h.TimeoutDur
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, "/bin/sh", "-c", h.Run)
	cmd.Env = append(append(os.Environ(), env...), "CAIRN_HOOK="+string(phase))
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &hookOutput{log: log, prefix: fmt.Sprintf("%s hook %d: ", phase, i+1)}
	cmd.Stdout, cmd.Stderr = out, out
	// On timeout or cancellation: SIGTERM to the whole group, then, after
	// the grace, Go kills the shell and closes its pipes; the group is
	// killed below in any case, so no child outlives its hook.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = hookGrace
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	out.flush()
	if err == nil {
		return nil
	}
	he := &HookError{Phase: phase, Index: i, Run: h.Run, ExitCode: -1, Tail: out.tail(), Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		he.ExitCode = ee.ExitCode()
	}
	if errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		he.TimedOut, he.Err = true, fmt.Errorf("after %s: %w", timeout, context.DeadlineExceeded)
	} else if ctx.Err() != nil {
		he.Err = ctx.Err()
	}
	return he
}

// hookOutput writes a hook's output to the log line by line and keeps its
// last outputTail bytes for the error message.
type hookOutput struct {
	mu     sync.Mutex
	log    io.Writer
	prefix string
	line   []byte
	last   []byte
}

func (o *hookOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last = append(o.last, p...)
	if len(o.last) > 2*outputTail {
		o.last = append(o.last[:0], o.last[len(o.last)-outputTail:]...)
	}
	o.line = append(o.line, p...)
	for {
		i := bytes.IndexByte(o.line, '\n')
		if i < 0 {
			break
		}
		o.emit(o.line[:i])
		o.line = o.line[i+1:]
	}
	if len(o.line) > outputTail { // a very long line: emit it in pieces
		o.emit(o.line)
		o.line = o.line[:0]
	}
	return len(p), nil
}

func (o *hookOutput) emit(line []byte) {
	if o.log != nil {
		fmt.Fprintf(o.log, "%s%s\n", o.prefix, line)
	}
}

func (o *hookOutput) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.line) > 0 {
		o.emit(o.line)
		o.line = nil
	}
}

func (o *hookOutput) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.last
	if len(t) > outputTail {
		t = t[len(t)-outputTail:]
	}
	return string(t)
}
