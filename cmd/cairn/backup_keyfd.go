package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
)

// The key hand-over (backup --key-fd FD, docs/commands.md; the design in
// docs/threat-model.md, "R19 and the agent"): a parent that unlocked the
// key file once (the agent) writes crypto.HandoffSize bytes, the key
// file's ID and the key that opens it, to a pipe and closes its end; the
// backup reads them from FD at its start, closes FD, and opens the key
// file with that key instead of deriving one from a password. The key
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

// openRepoHandedKey opens the repository in be with the key handed over
// on --key-fd (g.handoff) instead of a password: the key file is
// --key-file, else the owner key kept for the repository, else the
// repository's keys/ file of the hand-over's ID.
func (g *GlobalOptions) openRepoHandedKey(ctx context.Context, be backend.Backend, o client.Options) (*repository.Repository, error) {
	h := g.handoff
	defer h.Clear()
	loc := location.Redact(be.Properties().Location)
	name, buf, keyID, err := handedKeyFile(ctx, be, o.KeyFile, h)
	if err != nil {
		return nil, withHint(fmt.Errorf("--key-fd %d: %w", g.handoffFD, err), "the key handed over belongs to another key file; the parent (the agent) must unlock the key file again")
	}
	_, payload, err := crypto.OpenKeyFileWith(buf, h.Key)
	defer clear(payload)
	if errors.Is(err, crypto.ErrWrongFileKey) {
		return nil, withHint(fmt.Errorf("--key-fd %d: %w %s", g.handoffFD, err, name), "the key handed over is not this key file's; the parent (the agent) must unlock the key file again")
	}
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	}
	m, err := crypto.UnmarshalKeyMaterial(payload)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	}
	keys, err := m.Parse()
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	}
	cfgRaw, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if errors.Is(err, backend.ErrNotFound) {
		return nil, withHint(fmt.Errorf("%w at %s", repository.ErrNoRepository, loc), "check -r/CAIRN_REPOSITORY, or create one with `cairn init`")
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %s: load config: %w", loc, err)
	}
	repo, err := repository.OpenWithKeys(ctx, be, keys, keyID, cfgRaw, o.RepoOptions())
	if err != nil {
		return nil, fmt.Errorf("open repository %s with key file %s: %w", loc, name, err)
	}
	return repo, nil
}

// handedKeyFile finds the key file the hand-over h was made for: its
// name for messages, its bytes, and its name in keys/ ("" outside).
func handedKeyFile(ctx context.Context, be backend.Backend, keyFile string, h *crypto.Handoff) (name string, buf []byte, keyID string, err error) {
	read := func(path string) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, crypto.MaxKeyFileSize+1))
	}
	if keyFile != "" {
		buf, err := read(keyFile)
		if err != nil {
			return keyFile, nil, "", fmt.Errorf("read key file: %w", err)
		}
		if !h.Matches(buf) {
			return keyFile, nil, "", fmt.Errorf("key file %s is not the one the key handed over was made for (it changed since it was unlocked?)", keyFile)
		}
		return keyFile, buf, "", nil
	}
	if kept, _ := client.KeptKey(ctx, be); kept != "" {
		if buf, err := read(kept); err == nil && h.Matches(buf) {
			return kept, buf, "", nil
		}
	}
	id := hex.EncodeToString(h.FileID[:])
	buf, err = backend.LoadAll(ctx, be, backend.Handle{Type: backend.Keys, Name: id})
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return "keys/" + id, nil, "", fmt.Errorf("the key handed over is for key file %.12s…, which is neither --key-file, nor the owner key kept on this machine, nor in the repository's keys/", id)
	case err != nil:
		return "keys/" + id, nil, "", fmt.Errorf("load keys/%s: %w", id, err)
	case !h.Matches(buf):
		return "keys/" + id, nil, "", fmt.Errorf("keys/%s does not hash to its name", id)
	}
	return "keys/" + id, buf, id, nil
}
