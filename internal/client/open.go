package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/ratelimit"
	"github.com/cairnbackup/cairn/internal/repository"
)

// Options say where a repository is and how to unlock it. A front end
// fills them from its flags, environment or configuration. The hints of
// the errors Open returns name cairn's flags and environment variables.
type Options struct {
	Location string // a directory, or an s3: or rest: URL (location.Parse)
	// Password returns the password; Open calls it once the storage
	// opened, so nobody is asked for a password to a missing repository.
	Password func() ([]byte, error)
	// KeyFile unlocks with this key file instead of the repository's
	// keys/ (or the owner key kept for a repository on a server).
	KeyFile string
	// Handoff, when set, unlocks with the key a parent derived and handed
	// over (backup --key-fd) instead of Password: no argon2id.
	Handoff  *crypto.Handoff
	CacheDir string // "" for no cache
	KeyLabel string // names keys this machine creates (DefaultKeyLabel)
	// RootCAs are the authorities trusted for an https:// server; nil:
	// the system's (LoadCAs).
	RootCAs *x509.CertPool
	// Insecure allows plain http:// to a rest: server not on loopback.
	Insecure bool
	// Limits pace what is sent to and received from an s3: or rest:
	// repository; the zero value is unlimited.
	Limits ratelimit.Limits
	Logger *slog.Logger
}

// LocationOptions are what opening the storage needs of o.
func (o Options) LocationOptions() location.Options {
	return location.Options{Logger: o.Logger, Insecure: o.Insecure, RootCAs: o.RootCAs, Limits: o.Limits}
}

// RepoOptions are what opening the repository needs of o.
func (o Options) RepoOptions() repository.Options {
	return repository.Options{CacheDir: o.CacheDir, KeyLabel: o.KeyLabel, Logger: o.Logger}
}

// DefaultCacheDir is $XDG_CACHE_HOME/cairn or ~/.cache/cairn; ok is false
// when neither is known (cron with `env -i`): run without a cache, only
// slower, rather than not at all.
func DefaultCacheDir() (dir string, ok bool) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "cairn"), true
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", false
	}
	return filepath.Join(home, ".cache", "cairn"), true
}

// DefaultKeyLabel is user@host, the label of keys this machine creates.
func DefaultKeyLabel() string {
	host, _ := os.Hostname()
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return name + "@" + host
}

// LoadCAs reads the PEM files of certificate authorities to trust for an
// https:// server: nil (the system's authorities) when none is given.
func LoadCAs(files []string) (*x509.CertPool, error) {
	if len(files) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, WithHint(fmt.Errorf("read CA certificate: %w", err), "check --cacert/CAIRN_CACERT")
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, WithHint(fmt.Errorf("CA certificate %s holds no PEM certificate", f), "give the CA's certificate in PEM form (-----BEGIN CERTIFICATE-----)")
		}
	}
	return pool, nil
}

// HTTPClient is for a request to a cairn server outside a backend (its
// identity, at enrolment), trusting pool's authorities (nil: the
// system's).
func HTTPClient(pool *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// CertHint adds what to do to a server certificate no trusted authority
// signed; other errors pass unchanged.
func CertHint(err error) error {
	var ua x509.UnknownAuthorityError
	var cv *tls.CertificateVerificationError
	if errors.As(err, &ua) || errors.As(err, &cv) {
		return WithHint(err, "the server's certificate is not from an authority this machine trusts; pass its CA certificate with --cacert FILE (or CAIRN_CACERT)")
	}
	return err
}

// OpenBackend opens an existing repository's storage.
func OpenBackend(ctx context.Context, o Options) (backend.Backend, error) {
	loc := o.Location
	be, err := location.Open(ctx, loc, o.LocationOptions())
	if errors.Is(err, backend.ErrNotFound) {
		if l, _ := location.Parse(loc); l.Kind != location.Local {
			// Say which part is missing: the bucket or the repository.
			return nil, WithHint(fmt.Errorf("%w at %s (%w)", repository.ErrNoRepository, location.Redact(loc), err), "check -r/CAIRN_REPOSITORY, or create one with `cairn init`")
		}
		return nil, WithHint(fmt.Errorf("%w at %s", repository.ErrNoRepository, location.Redact(loc)), "check -r/CAIRN_REPOSITORY, or create one with `cairn init`")
	}
	return be, CertHint(err)
}

// Open opens the storage and unlocks the repository (OpenBackend, then
// Unlock).
func Open(ctx context.Context, o Options) (*repository.Repository, error) {
	be, err := OpenBackend(ctx, o)
	if err != nil {
		return nil, err
	}
	return Unlock(ctx, be, o)
}

// Unlock unlocks the repository in be: with the key handed over in
// o.Handoff when set (unlockHanded), else with the password: with
// o.KeyFile when given, else
// with the owner key kept on this machine for a repository on a server
// (KeptKey), else with a key file in the repository's keys/. When no key
// opens it, the error says why where it is not a wrong password: a
// restic repository, or a repository on a server whose owner key is not
// where it is kept.
func Unlock(ctx context.Context, be backend.Backend, o Options) (*repository.Repository, error) {
	if o.Handoff != nil {
		return unlockHanded(ctx, be, o)
	}
	opts := o.RepoOptions()
	pw, err := o.Password()
	if err != nil {
		return nil, err
	}
	// An explicit or kept key file first: one unlock, where a scan of
	// keys/ tries every stored file (issue 10: planted key files made every
	// owner command slow). A repository on a server keeps no key files, so
	// with a kept key there is nothing to scan.
	var repo *repository.Repository
	if o.KeyFile != "" {
		repo, err = repository.OpenKeyFile(ctx, be, o.KeyFile, pw, opts)
	} else if kept, serverMode := KeptKey(ctx, be); kept != "" {
		repo, err = repository.OpenKeyFile(ctx, be, kept, pw, opts)
		if errors.Is(err, repository.ErrNoKey) && !serverMode {
			repo, err = repository.Open(ctx, be, pw, opts)
		}
	} else {
		repo, err = repository.Open(ctx, be, pw, opts)
	}
	loc := location.Redact(be.Properties().Location)
	switch {
	case errors.Is(err, repository.ErrNoRepository):
		return nil, WithHint(fmt.Errorf("%w at %s", repository.ErrNoRepository, loc), "check -r/CAIRN_REPOSITORY, or create one with `cairn init`")
	case errors.Is(err, repository.ErrNoKey) && o.KeyFile != "":
		return nil, WithHint(fmt.Errorf("wrong password for key file %s: %w", o.KeyFile, repository.ErrNoKey), "try another password")
	case errors.Is(err, repository.ErrNoKey):
		if why := noKeyError(ctx, be, loc); why != nil {
			return nil, why
		}
		return nil, WithHint(fmt.Errorf("wrong password for repository %s: %w", loc, err), "try another password, or --key-file for a key kept outside the repository")
	case err != nil:
		return nil, fmt.Errorf("open repository %s: %w", loc, err)
	}
	return repo, nil
}

// DiskFree is the space free to an unprivileged user on the disk of a
// local repository (a directory, or "local:" and one).
func DiskFree(location string) (uint64, error) {
	dir := strings.TrimPrefix(location, "local:")
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}
