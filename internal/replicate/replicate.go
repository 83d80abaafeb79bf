// Package replicate copies a repository's files from one backend to
// another so that the copy is, at every moment, a repository that opens
// and restores on its own. It works on stored files only: it needs no key,
// reads nothing inside them, and serves cairn and restic repositories
// alike.
//
// A pass (Sync) lists the source's snapshot-level files first (snapshots,
// receipts, tombstones), then its trust files, packs and index fragments,
// and copies in the opposite order: trust files (configs, rosters, keys,
// then config), packs, index fragments, and only then the snapshot files
// of the first listing, their receipts and tombstones. A snapshot file is
// stored on the primary only after everything it needs (the server checks
// that before it accepts the commit), so what the first listing named is
// complete by the time packs are listed, and the copy never holds a
// snapshot whose packs it lacks.
//
// A file that fails to copy (a corrupt source file, a full destination)
// holds back every later phase of the pass, so the destination never
// names a pack it lacks, and never holds packs without its config (a
// trust file or the config that fails holds back the packs too).
//
// With Options.Want, a pass copies a closure rather than everything:
// only the snapshots, packs and index fragments the caller names.
//
// Files are content-named: what the destination lists, or what the
// caller's Ledger says was copied before, is skipped. Every copied file is re-hashed
// against its name before it is stored, so a corrupt source file is
// reported, never copied. Nothing is ever deleted: a deletion on the
// source is not mirrored. Plans, claims and locks are the source's own
// working state and are not copied.
package replicate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/ratelimit"
)

// Ledger remembers what earlier passes copied to one destination; a file
// it says was copied is skipped. (What a destination's own retention
// removed is kept out by the caller's Options.Want, not by a ledger: a
// pack pruned there must come back when a later snapshot needs it.) A
// nil Ledger means "the destination's listing is the whole truth". A
// pass calls it from several goroutines at once.
type Ledger interface {
	Copied(h backend.Handle) bool
	Record(h backend.Handle) error
}

// Options tune a pass. The zero value copies with 4 workers, no bandwidth
// limit, spooling through os.TempDir.
type Options struct {
	// Concurrency is the number of files copied at once (default 4).
	Concurrency int
	// Limiter, when set, paces the bytes read from the source.
	Limiter *ratelimit.Limiter
	// SpoolDir holds a file while it is copied (default os.TempDir()).
	// Spool files are unlinked as soon as they are made.
	SpoolDir string
	// Ledger: see the type.
	Ledger Ledger
	// Progress, when set, is called after each file is copied or skipped.
	Progress func(h backend.Handle, size int64, copied bool)
	// Want, when set, narrows a pass to a closure: of the packs, index
	// fragments and snapshot-level files, only those it wants are copied
	// (trust files and the config always are). The caller, who can read
	// manifests and the index, names a set of snapshots and everything
	// they need (see package replication); the order of the phases still
	// puts a snapshot's packs and index before its file.
	Want func(h backend.Handle) bool
	// Found, when set, is called as the pass finds files the destination
	// lacks (files and their bytes, added to Stats.Missing), before it
	// copies them: with Progress, how far a long pass has come.
	Found func(files int, bytes int64)
}

// Stats say what a pass did.
type Stats struct {
	Copied      int   // files stored on the destination
	CopiedBytes int64 // their bytes
	Skipped     int   // files the destination already had (or the ledger named)
	Failed      int   // files that could not be copied (see the error)
	Snapshots   int   // snapshot files among Copied
	// Missing and MissingBytes are the files (and their bytes) the pass
	// found lacking on the destination and set out to copy; what of them
	// is not in Copied is still lacking (the replica's lag).
	Missing      int
	MissingBytes int64
}

// ErrCorruptSource: a source file does not hash to its name. It is not
// copied; an audit should heal it from another copy.
var ErrCorruptSource = errors.New("source file does not hash to its name")

// The phases of a pass, in copy order.
var (
	trustTypes    = []backend.FileType{backend.Configs, backend.Rosters, backend.Keys}
	contentTypes  = []backend.FileType{backend.Data, backend.Index}
	snapshotTypes = []backend.FileType{backend.Snapshots, backend.Receipts, backend.Tombstones}
)

// configReplacer is what local, S3 and memory backends offer for the one
// file that is ever replaced.
type configReplacer interface {
	ReplaceConfig(ctx context.Context, rd backend.RewindReader) error
}

// Sync copies to dst what src has and dst lacks, in the order the package
// comment gives. It carries on past a file that fails and returns the
// first error (wrapped, with the number of failures) after the pass.
func Sync(ctx context.Context, src, dst backend.Backend, opt Options) (Stats, error) {
	if opt.Concurrency <= 0 {
		opt.Concurrency = 4
	}
	if opt.SpoolDir == "" {
		opt.SpoolDir = os.TempDir()
	}
	p := &pass{src: src, dst: dst, opt: opt}

	// What the snapshot-level listing names now is complete on the source;
	// anything that lands later waits for the next pass.
	snaps, err := p.missing(ctx, snapshotTypes)
	if err != nil {
		return p.stats, err
	}
	trust, err := p.missing(ctx, trustTypes)
	if err != nil {
		return p.stats, err
	}
	p.copyAll(ctx, trust)
	if err := p.syncConfig(ctx); err != nil {
		p.fail(backend.Handle{Type: backend.Config, Name: "config"}, err)
	}
	if p.failed() {
		// A copy holding packs and no config is not a repository a
		// server opens (it lost its config, or a client could set one):
		// nothing after the trust files until they and the config copy.
		return p.stats, p.err()
	}
	for _, t := range contentTypes {
		files, err := p.missing(ctx, []backend.FileType{t})
		if err != nil {
			return p.stats, err
		}
		p.copyAll(ctx, files)
		if p.failed() {
			// An index fragment or snapshot naming a pack that failed to
			// copy would make the destination an incomplete repository,
			// and which fragments name it is sealed: hold back everything
			// after this phase until the next pass.
			return p.stats, p.err()
		}
	}
	for _, t := range snapshotTypes {
		var files []backend.FileInfo
		for _, fi := range snaps {
			if fi.Type == t {
				files = append(files, fi)
			}
		}
		p.copyAll(ctx, files)
	}
	return p.stats, p.err()
}

type pass struct {
	src, dst backend.Backend
	opt      Options

	mu       sync.Mutex
	stats    Stats
	firstErr error
}

func (p *pass) fail(h backend.Handle, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Failed++
	if p.firstErr == nil {
		p.firstErr = fmt.Errorf("replicate %s: %w", h, err)
	}
}

func (p *pass) failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats.Failed > 0
}

func (p *pass) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stats.Failed == 0 {
		return nil
	}
	if p.stats.Failed == 1 {
		return p.firstErr
	}
	return fmt.Errorf("%w (and %d more files failed)", p.firstErr, p.stats.Failed-1)
}

// missing lists the source's files of types ts that the destination lacks
// and the ledger does not name, largest first within a type so the long
// copies start early.
func (p *pass) missing(ctx context.Context, ts []backend.FileType) ([]backend.FileInfo, error) {
	var out []backend.FileInfo
	for _, t := range ts {
		have := map[string]bool{}
		if err := p.dst.List(ctx, t, func(fi backend.FileInfo) error {
			have[fi.Name] = true
			return nil
		}); err != nil {
			return nil, fmt.Errorf("replicate: list destination %s: %w", t, err)
		}
		var todo []backend.FileInfo
		if err := p.src.List(ctx, t, func(fi backend.FileInfo) error {
			if backend.ValidName(fi.Handle) != nil {
				return nil // not a repository file; nothing a reader would open
			}
			if p.opt.Want != nil && !slices.Contains(trustTypes, t) && !p.opt.Want(fi.Handle) {
				return nil // outside the closure
			}
			if have[fi.Name] || p.opt.Ledger != nil && p.opt.Ledger.Copied(fi.Handle) {
				p.skipped(fi)
				return nil
			}
			todo = append(todo, fi)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("replicate: list source %s: %w", t, err)
		}
		sort.Slice(todo, func(i, j int) bool {
			if todo[i].Size != todo[j].Size {
				return todo[i].Size > todo[j].Size
			}
			return todo[i].Name < todo[j].Name
		})
		out = append(out, todo...)
		var n int64
		for _, fi := range todo {
			n += fi.Size
		}
		p.mu.Lock()
		p.stats.Missing += len(todo)
		p.stats.MissingBytes += n
		p.mu.Unlock()
		if p.opt.Found != nil && len(todo) > 0 {
			p.opt.Found(len(todo), n)
		}
	}
	return out, nil
}

func (p *pass) skipped(fi backend.FileInfo) {
	p.mu.Lock()
	p.stats.Skipped++
	p.mu.Unlock()
	if p.opt.Progress != nil {
		p.opt.Progress(fi.Handle, fi.Size, false)
	}
}

// copyAll copies files with the configured concurrency and waits for all.
func (p *pass) copyAll(ctx context.Context, files []backend.FileInfo) {
	work := make(chan backend.FileInfo)
	var wg sync.WaitGroup
	for range min(p.opt.Concurrency, len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fi := range work {
				if err := p.copyFile(ctx, fi); err != nil {
					p.fail(fi.Handle, err)
				}
			}
		}()
	}
	for _, fi := range files {
		if ctx.Err() != nil {
			p.fail(fi.Handle, ctx.Err())
			continue
		}
		work <- fi
	}
	close(work)
	wg.Wait()
}

// copyFile streams one file from the source into an unlinked spool file
// while hashing it, checks the hash against the name, and stores it.
func (p *pass) copyFile(ctx context.Context, fi backend.FileInfo) error {
	f, err := os.CreateTemp(p.opt.SpoolDir, "replicate-")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	sum := sha256.New()
	var n int64
	err = p.src.Load(ctx, fi.Handle, 0, 0, func(rd io.Reader) error {
		n = 0
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := f.Truncate(0); err != nil {
			return err
		}
		sum.Reset()
		var r io.Reader = rd
		if p.opt.Limiter != nil {
			r = p.opt.Limiter.Reader(ctx, rd)
		}
		var err error
		n, err = io.Copy(io.MultiWriter(f, sum), r)
		return err
	})
	if err != nil {
		return fmt.Errorf("read source: %w", err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != fi.Name {
		return fmt.Errorf("%w (it hashes to %s)", ErrCorruptSource, got)
	}
	err = p.dst.Save(ctx, fi.Handle, &fileReader{f: f, n: n, sr: io.NewSectionReader(f, 0, n)})
	if errors.Is(err, backend.ErrExists) {
		err = nil // stored meanwhile (a concurrent pass): the same bytes
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if p.opt.Ledger != nil {
		if err := p.opt.Ledger.Record(fi.Handle); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
	p.mu.Lock()
	p.stats.Copied++
	p.stats.CopiedBytes += n
	if fi.Type == backend.Snapshots {
		p.stats.Snapshots++
	}
	p.mu.Unlock()
	if p.opt.Progress != nil {
		p.opt.Progress(fi.Handle, n, true)
	}
	return nil
}

// syncConfig makes the destination's config the source's. It is the one
// file with a fixed name; cairn keeps every version under configs/ too
// (copied before this, each re-hashed against its name), and readers
// refuse a config older than one they have seen (docs/threat-model.md
// R3), so replacing it cannot roll the copy back. The config stored is
// one of the destination's config versions (configs/<its SHA-256>): a
// source config that is none (damaged or forged in place) is not copied,
// and the pass fails with ErrConfigNotVersion until the source's config
// is healed (`cairn server audit`). A repository that keeps no config
// versions (restic's) has its config copied as it is.
func (p *pass) syncConfig(ctx context.Context) error {
	h := backend.Handle{Type: backend.Config, Name: "config"}
	var src []byte
	err := p.src.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		var err error
		src, err = io.ReadAll(io.LimitReader(rd, maxConfig+1))
		return err
	})
	if errors.Is(err, backend.ErrNotFound) {
		return nil // not a repository yet (or a listing of an empty one)
	}
	if err != nil {
		return fmt.Errorf("read source config: %w", err)
	}
	if len(src) > maxConfig {
		return fmt.Errorf("source config is over %d bytes", maxConfig)
	}
	var dst []byte
	dstErr := p.dst.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		var err error
		dst, err = io.ReadAll(io.LimitReader(rd, maxConfig+1))
		return err
	})
	switch {
	case dstErr == nil && bytes.Equal(src, dst):
		p.skipped(backend.FileInfo{Handle: h, Size: int64(len(src))})
		return nil
	case dstErr != nil && !errors.Is(dstErr, backend.ErrNotFound):
		return fmt.Errorf("read destination config: %w", dstErr)
	}
	if err := p.isVersion(ctx, src); err != nil {
		return err
	}
	if dstErr == nil {
		r, ok := p.dst.(configReplacer)
		if !ok {
			return errors.New("the destination holds another config and cannot replace it")
		}
		err = r.ReplaceConfig(ctx, backend.NewByteReader(src))
	} else {
		err = p.dst.Save(ctx, h, backend.NewByteReader(src))
	}
	if err != nil {
		return fmt.Errorf("store config: %w", err)
	}
	p.mu.Lock()
	p.stats.Copied++
	p.stats.CopiedBytes += int64(len(src))
	p.mu.Unlock()
	if p.opt.Progress != nil {
		p.opt.Progress(h, int64(len(src)), true)
	}
	return nil
}

// ErrConfigNotVersion: the source's config is not one of the
// repository's config versions (damaged or forged in place); it is not
// copied.
var ErrConfigNotVersion = errors.New("the source's config is not one of the repository's config versions (configs/)")

// isVersion checks that cfg may be stored as the destination's config:
// it is one of the destination's config versions (copied and re-hashed
// before the config), or the repository keeps none (neither side lists
// any config version: restic's).
func (p *pass) isVersion(ctx context.Context, cfg []byte) error {
	name := backend.NameOf(cfg)
	_, err := p.dst.Stat(ctx, backend.Handle{Type: backend.Configs, Name: name})
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, backend.ErrNotFound):
		return fmt.Errorf("look for the config's version: %w", err)
	}
	errFound := errors.New("a config version")
	for _, be := range []backend.Backend{p.src, p.dst} {
		err := be.List(ctx, backend.Configs, func(backend.FileInfo) error { return errFound })
		switch {
		case errors.Is(err, errFound):
			return fmt.Errorf("%w: not copied (it hashes to %s…, no configs/ file of that name)", ErrConfigNotVersion, name[:12])
		case err != nil:
			return fmt.Errorf("list config versions: %w", err)
		}
	}
	return nil
}

// maxConfig bounds the config read into memory; real ones are a few KiB.
const maxConfig = 1 << 20

// fileReader is a RewindReader over the first n bytes of a spool file.
type fileReader struct {
	f  *os.File
	n  int64
	sr *io.SectionReader
}

func (r *fileReader) Read(b []byte) (int, error) { return r.sr.Read(b) }
func (r *fileReader) Length() int64              { return r.n }
func (r *fileReader) Rewind() error {
	r.sr = io.NewSectionReader(r.f, 0, r.n)
	return nil
}
