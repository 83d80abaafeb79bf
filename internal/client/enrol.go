package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairnbackup/cairn/internal/atomicfile"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/repository"
)

// A repository on a cairn server (R4, R21) is created in three steps a
// front end runs in order, with its own confirmation between the first
// two: ServerIdentity fetches the server's public identity; the user
// confirms its fingerprint (SameFingerprint against one given); only
// then InitOnServer seals anything to it, keeping the owner key on this
// machine.

// ServerIdentity fetches and validates the public identity of the cairn
// server at u, refusing plain http:// to a host not on loopback unless
// o.Insecure.
func ServerIdentity(ctx context.Context, o Options, u *url.URL) (repository.ServerPublic, error) {
	if u.Scheme != "https" && !o.Insecure && !IsLoopbackHost(u.Hostname()) {
		return repository.ServerPublic{}, WithHint(fmt.Errorf("refusing plain http:// to %s: the password and data would cross the network unencrypted", u.Host),
			"use https:// (cairn server run --tls-cert/--tls-key), or pass --insecure if the network is trusted")
	}
	id, err := rest.FetchIdentity(ctx, HTTPClient(o.RootCAs), u)
	pub := repository.ServerPublic(id)
	if err == nil {
		err = pub.Validate()
	}
	if err != nil {
		if h := CertHint(err); h != err {
			return pub, h
		}
		return pub, WithHint(err, "check the URL and the client's credentials; `cairn init` with a server needs a cairn server, not restic's rest-server")
	}
	return pub, nil
}

// IsLoopbackHost reports whether host (a URL's Hostname) names this
// machine: "localhost" or a loopback IP address. Credentials may cross
// plain http:// only to such a host unless the user says the network is
// trusted (--insecure).
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SameFingerprint compares two server fingerprints as people write them:
// case, spaces around and a "sha256:" prefix do not matter.
func SameFingerprint(a, b string) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		return strings.TrimPrefix(s, "sha256:")
	}
	return norm(a) == norm(b)
}

// InitOnServer creates a repository at o.Location, a rest: location on
// the server whose identity is pub, with a new owner key under pw, and
// writes the owner key file to keyPath ("": OwnerKeyDir, named by the
// repository ID), never over an existing file. The key file's place is
// checked before anything is stored on the server. It returns the new
// repository and where its owner key is.
func InitOnServer(ctx context.Context, o Options, pub repository.ServerPublic, pw []byte, keyPath string) (*repository.Repository, string, error) {
	be, err := location.Create(ctx, o.Location, o.LocationOptions())
	if errors.Is(err, backend.ErrExists) {
		shown := location.Redact(o.Location)
		if l, err := location.Parse(o.Location); err == nil && l.Rest.URL != nil {
			shown = l.Rest.URL.Redacted()
		}
		return nil, "", WithHint(fmt.Errorf("a repository already exists at %s", shown), "use it, or choose another path")
	}
	if err != nil {
		return nil, "", err
	}
	if keyPath == "" {
		if _, err := OwnerKeyDir(); err != nil {
			return nil, "", err
		}
	} else if _, err := os.Stat(keyPath); err == nil {
		return nil, "", WithHint(fmt.Errorf("owner key file %s exists", keyPath), "choose another --owner-key-file")
	}
	repo, keyFile, err := repository.InitServerMode(ctx, be, pw, pub, o.RepoOptions())
	if err != nil {
		return nil, "", fmt.Errorf("initialize repository at %s: %w", be.Properties().Location, err)
	}
	repoID := fmt.Sprintf("%x", repo.Config().RepoID)
	if keyPath == "" {
		dir, _ := OwnerKeyDir()
		keyPath = filepath.Join(dir, repoID+".key")
	}
	if err := writeOwnerKey(keyPath, keyFile); err != nil {
		return nil, "", fmt.Errorf("repository %s created, but writing its owner key failed: %w", repoID[:8], err)
	}
	return repo, keyPath, nil
}

func writeOwnerKey(path string, buf []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteNewFile(path, buf, 0o600)
}
