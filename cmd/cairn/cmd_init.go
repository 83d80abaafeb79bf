package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/repository"
)

// InitOptions are init's flags.
type InitOptions struct {
	// ServerFingerprint is the fingerprint the server must have (rest:
	// repositories on a cairn server); required when not on a terminal.
	ServerFingerprint string
	// OwnerKeyFile is where the owner key goes in server mode; default
	// $XDG_CONFIG_HOME/cairn/keys/<repository ID>.key.
	OwnerKeyFile string
	// Confirm asks the user to accept a fingerprint; nil: a y/N prompt on
	// the terminal, or refusal when stdin is not one.
	Confirm func(fingerprint string) (bool, error)
}

func newInitCommand(g *GlobalOptions) *cobra.Command {
	var opts InitOptions
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a repository",
		Long: `Create a new repository with an owner key protected by a password.
The owner key can do everything; add writer and server keys with "cairn key add".`,
		Example: `  cairn init -r /srv/backup
  CAIRN_PASSWORD_FILE=~/.cairn-pass cairn init -r /mnt/usb/backup
  cairn init -r rest:https://db1:PASS@backup.example:8443/db1/main --server-fingerprint SHA256:1afb-…`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return runInit(c.Context(), g, opts) },
	}
	c.Flags().StringVar(&opts.ServerFingerprint, "server-fingerprint", "", "the cairn server's fingerprint, as cairn server fingerprint prints it on the server; required when not on a terminal")
	c.Flags().StringVar(&opts.OwnerKeyFile, "owner-key-file", "", "with a cairn server: where to write the owner key (default $XDG_CONFIG_HOME/cairn/keys/ID.key)")
	return c
}

// minPassword is the shortest password a new repository or owner key
// takes: a short one falls to guessing once a copy of the key file leaks.
const minPassword = 8

// newRepoPassword reads a new password and refuses one that is too short.
func newRepoPassword(g *GlobalOptions, prompt string) ([]byte, error) {
	pw, err := g.password(prompt, true)
	if err != nil {
		return nil, err
	}
	if n := utf8.RuneCount(pw); n < minPassword {
		return nil, usageError{fmt.Errorf("the password has %d characters; a new repository needs at least %d (a passphrase of a few words is best)", n, minPassword)}
	}
	return pw, nil
}

func runInit(ctx context.Context, g *GlobalOptions, opts InitOptions) error {
	dir, err := g.repoLocation()
	if err != nil {
		return err
	}
	if l, _ := location.Parse(dir); l.Kind == location.Rest {
		return runInitServer(ctx, g, opts, dir, l)
	}
	pw, err := newRepoPassword(g, "enter a password for the new repository: ")
	if err != nil {
		return err
	}
	ropts, err := g.repoOptions()
	if err != nil {
		return err
	}
	lopts, err := g.locationOptions()
	if err != nil {
		return err
	}
	be, err := location.Create(ctx, dir, lopts)
	if errors.Is(err, backend.ErrExists) {
		return withHint(fmt.Errorf("a repository already exists at %s", location.Redact(dir)), "use it with -r %s, or choose another directory", location.Redact(dir))
	}
	if err != nil {
		return err
	}
	repo, err := repository.Init(ctx, be, pw, ropts)
	if err != nil {
		return fmt.Errorf("initialize repository at %s: %w", location.Redact(dir), err)
	}
	repoID := fmt.Sprintf("%x", repo.Config().RepoID)
	shown := be.Properties().Location // never the password of a rest: URL
	keyPath := strings.TrimSuffix(shown, "/") + "/keys/" + repo.KeyID()
	if l, _ := location.Parse(dir); l.Kind == location.Local {
		keyPath = filepath.Join(l.Path, "keys", repo.KeyID())
	}
	if g.JSON {
		return writeJSON(g.stdout, initJSON{MessageType: "initialized", ID: repoID, Repository: shown, KeyID: repo.KeyID(), KeyFile: keyPath})
	}
	g.printf("created cairn repository %s at %s\n", repoID[:8], shown)
	g.printf("owner key: %s\n", keyPath)
	g.printf("Keep the password safe: without it nobody can read this repository.\n")
	return nil
}
