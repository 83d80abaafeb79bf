package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/trust"
)

// OwnerKeyDir is where server-mode owner keys live by default:
// $XDG_CONFIG_HOME/cairn/keys, or ~/.config/cairn/keys.
func OwnerKeyDir() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "cairn", "keys"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", WithHint(errors.New("cannot find a config directory for the owner key (no $HOME)"), "pass --owner-key-file")
	}
	return filepath.Join(home, ".config", "cairn", "keys"), nil
}

// OwnerKeyPath is where the owner key of repository repoID is looked for
// when none in the repository matches.
func OwnerKeyPath(repoID []byte) (string, error) {
	dir, err := OwnerKeyDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, fmt.Sprintf("%x.key", repoID)), nil
}

// maxPeekedConfigs bounds the config versions KeptKey reads when the
// config itself does not parse.
const maxPeekedConfigs = 64

// KeptKey returns the owner key file `cairn init` kept on this machine
// for the repository in be (found by repository ID), or "" when there is
// none, and whether the repository is kept on a server (its config lists
// a further metadata recipient). When the config does not parse (junk
// planted by someone who can write to storage), the versions in configs/
// name the repository instead. The IDs read here are only hints to find
// a file: trust comes from the key file's pinned owner key.
func KeptKey(ctx context.Context, be backend.Backend) (path string, serverMode bool) {
	try := func(raw []byte) bool {
		cfg, err := repository.PeekConfig(raw)
		if err != nil {
			return false
		}
		p, err := OwnerKeyPath(cfg.RepoID)
		if err != nil {
			return false
		}
		if _, err := os.Stat(p); err != nil {
			return false
		}
		path, serverMode = p, len(cfg.MetaRecipientsExtra) > 0
		return true
	}
	if raw, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"}); err == nil && try(raw) {
		return path, serverMode
	}
	var names []backend.FileInfo
	be.List(ctx, backend.Configs, func(fi backend.FileInfo) error {
		if len(names) < maxPeekedConfigs && fi.Size <= trust.MaxSigned {
			names = append(names, fi)
		}
		return nil
	})
	for _, fi := range names {
		if raw, err := backend.LoadAll(ctx, be, fi.Handle); err == nil && try(raw) {
			return path, serverMode
		}
	}
	return "", false
}
