package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/repository"
)

// runInitServer creates a repository on a cairn server (R4, R21): it
// fetches the server's public identity, has its fingerprint confirmed,
// and only then seals anything to it; the owner key stays on this machine.
func runInitServer(ctx context.Context, g *GlobalOptions, opts InitOptions, loc string, l location.Location) error {
	u := l.Rest.URL
	if u.Scheme != "https" && !g.Insecure && !isLoopbackHost(u.Hostname()) {
		return withHint(fmt.Errorf("refusing plain http:// to %s: the password and data would cross the network unencrypted", u.Host),
			"use https:// (cairn server run --tls-cert/--tls-key), or pass --insecure if the network is trusted")
	}
	hc, err := g.httpClient()
	if err != nil {
		return err
	}
	id, err := rest.FetchIdentity(ctx, hc, u)
	pub := repository.ServerPublic(id)
	if err == nil {
		err = pub.Validate()
	}
	if err != nil {
		if h := client.CertHint(err); h != err {
			return h
		}
		return withHint(err, "check the URL and the client's credentials; `cairn init` with a server needs a cairn server, not restic's rest-server")
	}
	fp := pub.Fingerprint()
	switch {
	case opts.ServerFingerprint != "":
		if !sameFingerprint(opts.ServerFingerprint, fp) {
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
	ropts, err := g.repoOptions()
	if err != nil {
		return err
	}
	lopts, err := g.locationOptions()
	if err != nil {
		return err
	}
	be, err := location.Create(ctx, loc, lopts)
	if errors.Is(err, backend.ErrExists) {
		return withHint(fmt.Errorf("a repository already exists at %s", u.Redacted()), "use it, or choose another path")
	}
	if err != nil {
		return err
	}
	// Check the key file's place before anything is stored on the server.
	keyPath := opts.OwnerKeyFile
	if keyPath == "" {
		if _, err := client.OwnerKeyDir(); err != nil {
			return err
		}
	} else if _, err := os.Stat(keyPath); err == nil {
		return withHint(fmt.Errorf("owner key file %s exists", keyPath), "choose another --owner-key-file")
	}
	repo, keyFile, err := repository.InitServerMode(ctx, be, pw, pub, ropts)
	if err != nil {
		return fmt.Errorf("initialize repository at %s: %w", be.Properties().Location, err)
	}
	repoID := fmt.Sprintf("%x", repo.Config().RepoID)
	if keyPath == "" {
		dir, _ := client.OwnerKeyDir()
		keyPath = filepath.Join(dir, repoID+".key")
	}
	if err := writeOwnerKey(keyPath, keyFile); err != nil {
		return fmt.Errorf("repository %s created, but writing its owner key failed: %w", repoID[:8], err)
	}
	shown := be.Properties().Location
	if g.JSON {
		return writeJSON(g.stdout, map[string]any{
			"message_type": "initialized", "id": repoID, "repository": shown, "key_file": keyPath, "server_fingerprint": fp,
		})
	}
	g.printf("created cairn repository %s at %s\n", repoID[:8], shown)
	g.printf("server fingerprint: %s (its key opens metadata, never names or contents)\n", fp)
	g.printf("owner key: %s (kept on this machine; the server never sees it)\n", keyPath)
	g.printf("Copy the owner key file somewhere safe, off this machine: with it and the password any machine restores; without both, nobody can.\n")
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func sameFingerprint(a, b string) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		return strings.TrimPrefix(s, "sha256:")
	}
	return norm(a) == norm(b)
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

func writeOwnerKey(path string, buf []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
