package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/repository"
)

// noKeyError explains why no key opened the repository when no key file
// was given, where the cause is not a wrong password: the location holds a
// restic repository (exit 10), or a repository on a cairn server, which
// keeps no key files, whose owner key file is not where cairn keeps it.
// Otherwise it returns nil.
func noKeyError(ctx context.Context, be backend.Backend, loc string) error {
	if isResticRepository(ctx, be) {
		return WithHint(fmt.Errorf("%w at %s: it is a restic repository", repository.ErrNoRepository, loc),
			"use restic with it; cairn reads only cairn repositories (make one with `cairn init`)")
	}
	raw, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.Config, Name: "config"})
	if err != nil {
		return nil
	}
	cfg, err := repository.PeekConfig(raw)
	if err != nil || len(cfg.MetaRecipientsExtra) == 0 {
		return nil
	}
	path, err := OwnerKeyPath(cfg.RepoID)
	if err != nil {
		return nil
	}
	return WithHint(fmt.Errorf("no owner key for repository %s: it is on a cairn server, which keeps no key files, and %s does not exist: %w", loc, path, repository.ErrNoKey),
		"pass the owner key file with --key-file FILE (or CAIRN_KEY_FILE), or copy it to %s", path)
}

// isResticRepository reports whether keys/ holds restic key files: JSON
// with an scrypt KDF, a salt and the sealed master key.
func isResticRepository(ctx context.Context, be backend.Backend) bool {
	var names []backend.Handle
	be.List(ctx, backend.Keys, func(fi backend.FileInfo) error {
		if len(names) < 3 && fi.Size < 64<<10 {
			names = append(names, fi.Handle)
		}
		return nil
	})
	for _, h := range names {
		raw, err := backend.LoadAll(ctx, be, h)
		if err != nil {
			continue
		}
		var k struct {
			KDF  string `json:"kdf"`
			Salt []byte `json:"salt"`
			Data []byte `json:"data"`
		}
		if json.Unmarshal(raw, &k) == nil && k.KDF == "scrypt" && len(k.Salt) > 0 && len(k.Data) > 0 {
			return true
		}
	}
	return false
}
