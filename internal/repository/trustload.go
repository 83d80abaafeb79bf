package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/trust"
)

// Readers never let one stored roster, config version or key file make a
// repository unusable (R24): anyone who can write a file to storage (a
// storage provider, or a client of a server that did not validate it)
// could otherwise plant junk that every later open trips over. A file
// that is malformed, not signed by the pinned owner key, or of another
// repository is skipped with a warning naming it; only valid versions
// count, and the newest valid one is still held to R3 (the cache's
// highest version seen).

// MaxStoredKeyTries bounds how many key files in keys/ Open tries with a
// password; with MaxStoredKDF it bounds what planted key files can cost.
const MaxStoredKeyTries = 16

// parseOwnConfig verifies a config against keys' pinned owner key and
// checks it is this repository's.
func parseOwnConfig(buf []byte, keys *crypto.Keys) (*trust.Config, error) {
	cfg, err := trust.ParseConfig(buf, keys.OwnerSignPub)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(cfg.RepoID, keys.RepoID[:]) {
		return nil, errors.New("config: repository ID does not match the key's; this key belongs to another repository")
	}
	return cfg, nil
}

// loadConfig verifies the fixed-name config cfgRaw. When it does not
// verify, the newest valid version in configs/ serves instead, with a
// warning; the error is the fixed config's when no version is valid.
func loadConfig(ctx context.Context, be backend.Backend, keys *crypto.Keys, cfgRaw []byte, log *slog.Logger) (*trust.Config, error) {
	cfg, cfgErr := parseOwnConfig(cfgRaw, keys)
	if cfgErr == nil {
		return cfg, nil
	}
	var best *trust.Config
	err := be.List(ctx, backend.Configs, func(fi backend.FileInfo) error {
		c, err := loadSigned(ctx, be, fi, func(buf []byte) (*trust.Config, error) { return parseOwnConfig(buf, keys) })
		if err != nil {
			if errors.Is(err, errStorage) {
				return err
			}
			log.Warn("skipping a config version that does not verify", "file", fi.Handle.String(), "err", err)
			return nil
		}
		if best == nil || c.Seq > best.Seq {
			best = c
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list config versions: %w", err)
	}
	if best == nil {
		return nil, cfgErr
	}
	log.Warn("the repository's config does not verify; using the newest valid version in configs/", "file", "config", "err", cfgErr, "seq", best.Seq)
	return best, nil
}

// errStorage marks a failure to read storage, as opposed to a stored file
// that is invalid: the first fails the operation, the second is skipped.
var errStorage = errors.New("storage")

// loadSigned loads a content-named owner-signed file and parses it.
func loadSigned[T any](ctx context.Context, be backend.Backend, fi backend.FileInfo, parse func([]byte) (T, error)) (T, error) {
	var zero T
	if fi.Size > trust.MaxSigned {
		return zero, fmt.Errorf("%w: %d bytes", trust.ErrFormat, fi.Size)
	}
	buf, err := backend.LoadAll(ctx, be, fi.Handle)
	if err != nil {
		return zero, fmt.Errorf("%w: load %s: %w", errStorage, fi.Handle, err)
	}
	if backend.NameOf(buf) != fi.Name {
		return zero, errors.New("content does not match its name")
	}
	return parse(buf)
}

// loadRoster returns the valid roster with the highest sequence number;
// invalid ones are skipped with a warning (R24), and the newest valid one
// may not be older than one seen before (R3).
func (r *Repository) loadRoster(ctx context.Context) (*trust.Roster, error) {
	var best *trust.Roster
	skipped := 0
	err := r.be.List(ctx, backend.Rosters, func(fi backend.FileInfo) error {
		ro, err := loadSigned(ctx, r.be, fi, func(buf []byte) (*trust.Roster, error) {
			ro, err := trust.ParseRoster(buf, r.keys.OwnerSignPub)
			if err == nil && !bytes.Equal(ro.RepoID, r.keys.RepoID[:]) {
				err = errors.New("roster belongs to another repository")
			}
			return ro, err
		})
		if err != nil {
			if errors.Is(err, errStorage) {
				return err
			}
			skipped++
			r.log.Warn("skipping a roster that does not verify", "file", fi.Handle.String(), "err", err)
			return nil
		}
		if best == nil || ro.Seq > best.Seq {
			best = ro
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load rosters: %w", err)
	}
	if best == nil {
		return nil, fmt.Errorf("repository has no valid writer roster (%d skipped)", skipped)
	}
	if err := r.cache.checkVersion("roster", best.Seq); err != nil {
		return nil, err
	}
	return best, nil
}

// storedKey is a key file in keys/ that Open may try.
type storedKey struct {
	name string
	buf  []byte
}

// storedKeys lists the key files Open tries, in name order: each well
// formed, named by its hash and within MaxStoredKDF, at most
// MaxStoredKeyTries of them. The others are skipped with a warning.
func storedKeys(ctx context.Context, be backend.Backend, log *slog.Logger) ([]storedKey, error) {
	var infos []backend.FileInfo
	if err := be.List(ctx, backend.Keys, func(fi backend.FileInfo) error {
		infos = append(infos, fi)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	var out []storedKey
	for i, fi := range infos {
		if len(out) == MaxStoredKeyTries {
			log.Warn("too many key files in the repository; the rest are not tried (use --key-file)", "tried", len(out), "not_tried", len(infos)-i)
			break
		}
		if fi.Size > crypto.MaxKeyFileSize {
			log.Warn("skipping a key file", "file", fi.Handle.String(), "err", fmt.Sprintf("%d bytes is larger than any key file", fi.Size))
			continue
		}
		buf, err := backend.LoadAll(ctx, be, fi.Handle)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", fi.Handle, err)
		}
		if backend.NameOf(buf) != fi.Name {
			log.Warn("skipping a key file", "file", fi.Handle.String(), "err", "content does not match its name")
			continue
		}
		h, _, err := crypto.ParseKeyFileHeader(buf)
		if err != nil {
			log.Warn("skipping a key file", "file", fi.Handle.String(), "err", err)
			continue
		}
		if !h.KDF.WithinStoredCap() {
			log.Warn("skipping a key file whose argon2id parameters are above the cap for stored keys", "file", fi.Handle.String(),
				"memory_kib", h.KDF.Memory, "time", h.KDF.Time, "threads", h.KDF.Threads)
			continue
		}
		out = append(out, storedKey{name: fi.Name, buf: buf})
	}
	return out, nil
}
