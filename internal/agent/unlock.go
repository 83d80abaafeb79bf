package agent

// The agent unlocks its key_file once and hands the key that opens it to
// every `cairn backup` child (backup --key-fd), so its backups do not each
// pay for argon2id (docs/threat-model.md, "R19 and the agent").

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/cairnbackup/cairn/internal/crypto"
)

// KeyHolder keeps the unlocked key of the configuration's key file for
// the agent's life. It reads the password only to unlock the file the
// first time, and again only when the file on disk changed.
type KeyHolder struct {
	// KeyFile is the key file (the configuration's key_file).
	KeyFile string
	// Password reads the key file's password (its password_file).
	Password func() ([]byte, error)

	mu sync.Mutex
	h  *crypto.Handoff
}

// Unlock returns the hand-over of the key file's key: the one it holds
// while the key file on disk is the one it unlocked, else derived anew
// (argon2id), with one line to logf.
func (k *KeyHolder) Unlock(logf func(format string, args ...any)) (crypto.Handoff, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	buf, err := crypto.ReadKeyFile(k.KeyFile)
	if err != nil {
		return crypto.Handoff{}, fmt.Errorf("read key_file: %w", err)
	}
	if k.h != nil && k.h.Matches(buf) {
		return *k.h, nil
	}
	again := ""
	if k.h != nil {
		k.h.Clear()
		k.h = nil
		again = " again: it changed on disk"
	}
	pw, err := k.Password()
	if err != nil {
		return crypto.Handoff{}, err
	}
	hdr, key, err := crypto.UnlockKeyFile(buf, pw)
	clear(pw)
	if err != nil {
		return crypto.Handoff{}, fmt.Errorf("unlock key_file %s: %w", k.KeyFile, err)
	}
	h := crypto.NewHandoff(buf, key)
	k.h = &h
	if logf != nil {
		logf("unlocked key_file %s%s (argon2id m=%d MiB t=%d p=%d); its backups get the key on a descriptor", k.KeyFile, again, hdr.KDF.Memory>>10, hdr.KDF.Time, hdr.KDF.Threads)
	}
	return h, nil
}

// keyPipe is a pipe holding the hand-over h for one child, whose end is
// the returned file (pass it in ExtraFiles, then close it): the bytes are
// written and the agent's end closed before the child starts, so the
// child reads them and then the end of the stream. Both ends are
// close-on-exec in the agent; only the child gets its end, as a
// descriptor of its own.
func keyPipe(h *crypto.Handoff) (*os.File, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("a pipe for the key: %w", err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "key-fd-child"), os.NewFile(uintptr(fds[1]), "key-fd")
	enc := h.Encode()
	_, err := w.Write(enc) // 72 bytes: the pipe holds them
	clear(enc)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("a pipe for the key: %w", err)
	}
	return r, nil
}

type handoffKey struct{}

// withHandoff is ctx carrying the run's unlocked key to its backups.
func withHandoff(ctx context.Context, h *crypto.Handoff) context.Context {
	return context.WithValue(ctx, handoffKey{}, h)
}

// handoffFrom is the run's unlocked key, nil when none.
func handoffFrom(ctx context.Context) *crypto.Handoff {
	h, _ := ctx.Value(handoffKey{}).(*crypto.Handoff)
	return h
}
