package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
)

// unlockHanded unlocks the repository in be with the key handed over in
// o.Handoff (backup --key-fd; docs/threat-model.md, "R19 and the agent")
// instead of a password. The key file is the one the key was made for:
// o.KeyFile, else the owner key kept on this machine, else keys/ID of the
// hand-over's ID; it must hash to that ID and open with the key, and the
// config must verify against the owner key pinned in it, as after a
// password. Nothing is derived or guessed when any of it fails.
func unlockHanded(ctx context.Context, be backend.Backend, o Options) (*repository.Repository, error) {
	h := o.Handoff
	loc := location.Redact(be.Properties().Location)
	again := "the parent (the agent) must unlock the key file again"
	name, buf, keyID, err := handedKeyFile(ctx, be, o.KeyFile, h)
	if err != nil {
		return nil, WithHint(err, "the key handed over belongs to another key file; %s", again)
	}
	repo, err := repository.OpenHanded(ctx, be, name, buf, keyID, h.Key, o.RepoOptions())
	switch {
	case errors.Is(err, crypto.ErrWrongFileKey):
		return nil, WithHint(err, "the key handed over is not this key file's; %s", again)
	case errors.Is(err, repository.ErrNoRepository):
		return nil, WithHint(fmt.Errorf("%w at %s", repository.ErrNoRepository, loc), "check -r/CAIRN_REPOSITORY, or create one with `cairn init`")
	case err != nil:
		return nil, fmt.Errorf("open repository %s with key file %s: %w", loc, name, err)
	}
	return repo, nil
}

// handedKeyFile finds the key file the hand-over h was made for: its
// name for messages, its bytes, and its name in keys/ ("" outside).
func handedKeyFile(ctx context.Context, be backend.Backend, keyFile string, h *crypto.Handoff) (name string, buf []byte, keyID string, err error) {
	if keyFile != "" {
		buf, err := crypto.ReadKeyFile(keyFile)
		if err != nil {
			return keyFile, nil, "", fmt.Errorf("read key file: %w", err)
		}
		if !h.Matches(buf) {
			return keyFile, nil, "", fmt.Errorf("key file %s is not the one the key handed over was made for (it changed since it was unlocked?)", keyFile)
		}
		return keyFile, buf, "", nil
	}
	if kept, _ := KeptKey(ctx, be); kept != "" {
		if buf, err := crypto.ReadKeyFile(kept); err == nil && h.Matches(buf) {
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
