package replication

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/local"
	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/backend/rest"
	"github.com/cairnbackup/cairn/internal/backend/s3"
	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/server/state/replicas"
)

// CheckDestination validates a destination before it is recorded: a
// valid name, a location of a kind replication writes to (a directory
// outside the server's data directory, s3: or rest:) and apart from the
// server's own storage (storage: "" or as `server init --storage` gave
// it), with its credentials in the file, not in the location, and a
// credentials file that holds what the kind needs. It returns d with a
// directory made absolute.
func CheckDestination(d replicas.Destination, dataDir, storage string) (replicas.Destination, error) {
	if err := restapi.ValidClientName(d.Name); err != nil {
		return d, fmt.Errorf("destination name %q: use 1 to 64 letters, digits, '_', '-', '.', '@', not starting with a dot", d.Name)
	}
	l, err := location.Parse(d.Location)
	if err != nil {
		return d, fmt.Errorf("--location: %w", err)
	}
	switch l.Kind {
	case location.Local:
		abs, err := filepath.Abs(l.Path)
		if err != nil {
			return d, fmt.Errorf("--location %s: %w", d.Location, err)
		}
		data, _ := filepath.Abs(dataDir)
		if overlaps(abs, data) {
			return d, fmt.Errorf("--location %s overlaps the server's data directory %s: a replica belongs on another disk", abs, data)
		}
		if st, err := location.Parse(storage); err == nil && storage != "" && st.Kind == location.Local {
			if sabs, err := filepath.Abs(st.Path); err == nil && overlaps(abs, sabs) {
				return d, fmt.Errorf("--location %s overlaps the server's storage %s: a replica belongs elsewhere", abs, sabs)
			}
		}
		d.Location = abs
		if d.CredentialsFile != "" {
			return d, errors.New("--credentials-file: a directory needs none")
		}
	case location.S3:
		if st, err := location.Parse(storage); err == nil && storage != "" && st.Kind == location.S3 &&
			st.S3.Endpoint == l.S3.Endpoint && st.S3.Bucket == l.S3.Bucket && overlaps("/"+l.S3.Prefix, "/"+st.S3.Prefix) {
			return d, fmt.Errorf("--location %s overlaps the server's storage %s: a replica belongs elsewhere", l.S3.Location(), st.S3.Location())
		}
		if d.CredentialsFile != "" {
			if _, err := s3Credentials(d.CredentialsFile); err != nil {
				return d, err
			}
		}
	case location.Rest:
		if d.ServerFingerprint == "" {
			return d, fmt.Errorf("--server-fingerprint is required for a rest: destination: give the far server's fingerprint (`cairn server fingerprint` there), which every connection checks")
		}
		if d.Retention != nil {
			return d, errRetentionOnRest
		}
		if l.Rest.URL.User != nil {
			if _, ok := l.Rest.URL.User.Password(); ok {
				return d, fmt.Errorf("--location %s holds a password: give rest:https://USER@HOST/… and the password in --credentials-file", location.Redact(d.Location))
			}
		}
		if d.CredentialsFile != "" {
			if _, err := restPassword(d.CredentialsFile); err != nil {
				return d, err
			}
		}
	}
	if d.CredentialsFile != "" {
		abs, err := filepath.Abs(d.CredentialsFile)
		if err != nil {
			return d, err
		}
		d.CredentialsFile = abs
	}
	return d, nil
}

// overlaps reports whether one of two slash paths is the other or inside
// it.
func overlaps(a, b string) bool {
	a, b = path.Clean(a), path.Clean(b)
	within := func(x, y string) bool { return x == y || strings.HasPrefix(x, strings.TrimSuffix(y, "/")+"/") }
	return within(a, b) || within(b, a)
}

// s3Credentials reads an AWS shared credentials file (its [default]
// profile: aws_access_key_id, aws_secret_access_key, optionally
// aws_session_token).
func s3Credentials(file string) (credentials.Value, error) {
	if _, err := os.Stat(file); err != nil {
		return credentials.Value{}, fmt.Errorf("--credentials-file: %w", err)
	}
	v, err := (&credentials.FileAWSCredentials{Filename: file, Profile: "default"}).RetrieveWithCredContext(nil)
	if err == nil && (v.AccessKeyID == "" || v.SecretAccessKey == "") {
		err = errors.New("no aws_access_key_id and aws_secret_access_key")
	}
	if err != nil {
		return credentials.Value{}, fmt.Errorf("credentials file %s: %v; give an AWS credentials file with a [default] section holding aws_access_key_id and aws_secret_access_key", file, err)
	}
	return v, nil
}

// restPassword reads the first line of a file: the client password on the
// far cairn server.
func restPassword(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("--credentials-file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || strings.TrimSpace(sc.Text()) == "" {
		return "", fmt.Errorf("credentials file %s: want the far server's client password on its first line", file)
	}
	return strings.TrimSpace(sc.Text()), nil
}

// Reach checks that a destination can be written to now: it makes a
// directory or a bucket that is missing. A rest: destination is reached
// at its first replica.
func Reach(ctx context.Context, d replicas.Destination) error {
	l, err := location.Parse(d.Location)
	if err != nil {
		return err
	}
	switch l.Kind {
	case location.Local:
		if err := os.MkdirAll(l.Path, 0o700); err != nil {
			return fmt.Errorf("destination %s: %w", d.Name, err)
		}
	case location.S3:
		t, err := connect(ctx, d, slog.New(slog.DiscardHandler))
		if err != nil {
			return fmt.Errorf("destination %s: %w", d.Name, err)
		}
		return t.s3.Close()
	case location.Rest:
		t, err := connect(ctx, d, slog.New(slog.DiscardHandler))
		if err != nil {
			return fmt.Errorf("destination %s: %w", d.Name, err)
		}
		return t.checkServer(ctx)
	}
	return nil
}

// errRetentionOnRest refuses a retention policy for a rest: destination.
var errRetentionOnRest = errors.New("a rest: destination keeps every snapshot: the far cairn server keeps its own append-only guarantees and deletes nothing this server asks; its operator removes replicas (`cairn server client remove` there). Give no --keep-* rules for it")

// CheckRetention refuses a retention policy for a destination that
// cannot apply one (rest:).
func CheckRetention(d replicas.Destination) error {
	if l, err := location.Parse(d.Location); err == nil && l.Kind == location.Rest && d.Retention != nil {
		return errRetentionOnRest
	}
	return nil
}

// checkServer checks that a rest: destination's far server presents the
// pinned fingerprint, as `cairn init` checks a client's server (R21): it
// asks for the server's public identity with the destination's
// credentials and compares its fingerprint.
func (t *target) checkServer(ctx context.Context) error {
	if t.rest == nil {
		return nil
	}
	u := *t.rest
	pub, err := client.ServerIdentity(ctx, client.Options{}, &u)
	if err != nil {
		return fmt.Errorf("check the far server's fingerprint: %w", err)
	}
	if fp := pub.Fingerprint(); !client.SameFingerprint(fp, t.d.ServerFingerprint) {
		return fmt.Errorf("%w: %s presents %s, not %s (the destination's --server-fingerprint); nothing was copied", rest.ErrFingerprint, u.Host, fp, t.d.ServerFingerprint)
	}
	return nil
}

// target opens the replicas of one destination.
type target struct {
	d    replicas.Destination
	log  *slog.Logger
	s3   *s3.Backend // the bucket's root, sharing one connection pool
	rest *url.URL    // with the password
}

// connect reaches a destination: a bucket is made if missing, a directory
// when the first replica is made.
func connect(ctx context.Context, d replicas.Destination, log *slog.Logger) (*target, error) {
	l, err := location.Parse(d.Location)
	if err != nil {
		return nil, err
	}
	t := &target{d: d, log: log}
	switch l.Kind {
	case location.S3:
		cfg := l.S3
		if d.CredentialsFile != "" {
			v, err := s3Credentials(d.CredentialsFile)
			if err != nil {
				return nil, err
			}
			cfg.KeyID, cfg.Secret, cfg.SessionToken = v.AccessKeyID, v.SecretAccessKey, v.SessionToken
		}
		cfg.Connections = max(cfg.Connections, d.Concurrency)
		if t.s3, err = s3.Connect(ctx, cfg, true); err != nil {
			return nil, err
		}
	case location.Rest:
		u := *l.Rest.URL
		if d.CredentialsFile != "" {
			pw, err := restPassword(d.CredentialsFile)
			if err != nil {
				return nil, err
			}
			u.User = url.UserPassword(u.User.Username(), pw)
		}
		t.rest = &u
	}
	return t, nil
}

// replica opens (making it if needed) the replica of repo
// (<client>/<repository…>): LOC/<client>/<repository…>/. It never stores
// the config: a directory replica without one (its first pass stopped
// before the config, or it lost the config and kept its files) is opened
// as it is, and the config is stored by the pass (replicate.Sync, only a
// config that is one of the replica's config versions) or the audit
// (checkConfig, the same rule), each after checking it.
func (t *target) replica(ctx context.Context, repo string) (backend.Backend, error) {
	opts := location.Options{Logger: t.log}
	switch {
	case t.s3 != nil:
		be, err := t.s3.Sub(repo)
		if err != nil {
			return nil, err
		}
		return location.Decorate(be, opts), nil
	case t.rest != nil:
		u := *t.rest
		u.Path = path.Join(u.Path, repo) + "/"
		u.RawPath = ""
		cfg := rest.Config{URL: &u, Connections: t.d.Concurrency}
		be, err := rest.Open(ctx, cfg)
		if errors.Is(err, backend.ErrNotFound) {
			be, err = rest.Create(ctx, cfg)
		}
		if err != nil {
			return nil, err
		}
		return location.Decorate(be, opts), nil
	}
	dir := filepath.Join(t.d.Location, filepath.FromSlash(repo))
	be, err := local.Open(dir)
	if !errors.Is(err, backend.ErrNotFound) {
		return be, err
	}
	if be, err := local.OpenWithoutConfig(dir); !errors.Is(err, backend.ErrNotFound) {
		return be, err
	}
	return local.Create(ctx, dir)
}

// OpenReplica opens the replica of repo (<client>/<repository…>) on d for
// the audit (internal/server/audit), which reads and heals it; done
// releases it. It stores no config, whatever the replica lacks: what the
// audit finds is what the replica holds. A rest: destination's far
// server must present its pinned fingerprint.
func OpenReplica(ctx context.Context, d replicas.Destination, repo string) (be backend.Backend, done func(), err error) {
	t, err := connect(ctx, d, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	if err := t.checkServer(ctx); err != nil {
		return nil, nil, err
	}
	be, err = t.replica(ctx, repo)
	if err != nil {
		if t.s3 != nil {
			t.s3.Close()
		}
		return nil, nil, err
	}
	return be, func() {
		if t.s3 != nil {
			t.s3.Close()
		} else if t.rest == nil {
			be.Close()
		}
	}, nil
}
