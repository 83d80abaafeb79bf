package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/client"
)

// runInitServer creates a repository on a cairn server (R4, R21): it
// fetches the server's public identity, has its fingerprint confirmed,
// and only then seals anything to it; the owner key stays on this machine.
func runInitServer(ctx context.Context, g *GlobalOptions, opts InitOptions, loc string, l location.Location) error {
	u := l.Rest.URL
	o, err := g.clientOptions(nil)
	if err != nil {
		return err
	}
	o.Location = loc
	pub, err := client.ServerIdentity(ctx, o, u)
	if err != nil {
		return err
	}
	fp := pub.Fingerprint()
	switch {
	case opts.ServerFingerprint != "":
		if !client.SameFingerprint(opts.ServerFingerprint, fp) {
			return withHint(fmt.Errorf("%w: %s presents %s, not %s; nothing was stored", rest.ErrFingerprint, u.Host, fp, opts.ServerFingerprint),
				"ask the server's operator for `cairn server fingerprint`; do not continue if they differ")
		}
	default:
		confirm := opts.Confirm
		if confirm == nil {
			confirm = confirmOnTerminal
		}
		ok, err := confirm(fp)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("server fingerprint not accepted; nothing was stored")
		}
	}
	pw, err := newRepoPassword(g, "enter a password for the new owner key: ")
	if err != nil {
		return err
	}
	if o.CacheDir, err = g.cacheDir(); err != nil {
		return err
	}
	repo, keyPath, err := client.InitOnServer(ctx, o, pub, pw, opts.OwnerKeyFile)
	if err != nil {
		return err
	}
	repoID := fmt.Sprintf("%x", repo.Config().RepoID)
	shown := repo.Backend().Properties().Location
	if g.JSON {
		return writeJSON(g.stdout, initJSON{
			MessageType: "initialized", ID: repoID, Repository: shown, KeyID: repo.KeyID(), KeyFile: keyPath, ServerFingerprint: fp,
		})
	}
	g.printf("created cairn repository %s at %s\n", repoID[:8], shown)
	g.printf("server fingerprint: %s (its key opens metadata, never names or contents)\n", fp)
	g.printf("owner key: %s (kept on this machine; the server never sees it)\n", keyPath)
	g.printf("Copy the owner key file somewhere safe, off this machine: with it and the password any machine restores; without both, nobody can.\n")
	return nil
}

func confirmOnTerminal(fp string) (bool, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return false, usageError{errors.New("not on a terminal: pass --server-fingerprint FP (from `cairn server fingerprint` on the server) to confirm the server's identity")}
	}
	fmt.Fprintf(os.Stderr, "The server's fingerprint is\n    %s\nCompare it with `cairn server fingerprint` on the server. Trust it? [y/N] ", fp)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return false, fmt.Errorf("read answer: %w", err)
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}
