package checker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/ticker"
	"github.com/cairnbackup/cairn/internal/walker"
)

// Options configure a check.
type Options struct {
	// ReadData reads every pack whole: its hash, and every blob the key
	// can open.
	ReadData bool
	// Workers bounds concurrent loads; default 4.
	Workers int
	// Subset, when set, reads only part of the packs whole (a rolling
	// audit: least recently verified first); implies reading data.
	Subset *Subset
	// StateFile keeps the audit state; default check-state.json in the
	// repository's cache directory (none: nothing is remembered).
	StateFile string
	// Now is the clock of the audit state; default the repository's.
	Now func() time.Time
	// Progress, when set, counts the packs and bytes read whole
	// (ReadData, Subset).
	Progress *ticker.Counter
}

// Problem is one thing found wrong.
type Problem struct {
	File      string   `json:"file,omitempty"` // e.g. "data/3f9a…", "index/…"
	Blob      string   `json:"blob,omitempty"` // "data 3f9a21c0"
	Snapshots []string `json:"snapshots,omitempty"`
	Message   string   `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File + ": ")
	}
	if p.Blob != "" {
		b.WriteString(p.Blob + ": ")
	}
	b.WriteString(p.Message)
	if len(p.Snapshots) > 0 {
		fmt.Fprintf(&b, " (snapshots %s need it)", strings.Join(p.Snapshots, ", "))
	}
	return b.String()
}

// Report is the outcome of a check.
type Report struct {
	Checks    []string  `json:"checks"` // what was checked
	Problems  []Problem `json:"problems"`
	Notes     []string  `json:"notes"`
	Snapshots int       `json:"snapshots"`
	Packs     int       `json:"packs"`
	Blobs     int       `json:"blobs"`
	Trees     int       `json:"trees"`
	BytesRead uint64    `json:"bytes_read"`
	// BadPacks are the packs found missing, damaged or unreadable: what
	// `cairn repair` drops from the index.
	BadPacks []string `json:"bad_packs"`
	// Audit is the data audit's coverage (with ReadData or Subset).
	Audit *Audit `json:"audit,omitempty"`
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

type checker struct {
	repo *repository.Repository
	be   backend.Backend
	opts Options
	rep  Report
	mu   sync.Mutex

	indexed   map[blob.ID][32]byte // pack → SHA-256 of its header plaintext in the index
	indexedIn map[blob.ID]string   // pack → index file that lists it
	// blobs holds every blob the index lists or a manifest references:
	// one map entry of 8 bytes besides the key (blobState), where a
	// location and a list of snapshot names took some 200 at 1 M blobs.
	blobs     map[snapshot.Ref]blobState
	nIndexed  int               // blobs with a pack
	packIDs   []blob.ID         // by blobState.pack - 1
	packFiles map[blob.ID]int64 // packs in storage, with sizes
	snapSets
	snaps     []*repository.Snapshot
	badPacks  map[blob.ID]bool
	treesSeen map[blob.ID]bool
	// unindexed are trees and data blobs that manifests reference and the
	// index lacks (owner key): the tree walk reports those it reaches by
	// path (named), checkTrees the rest by ID.
	unindexed, named map[snapshot.Ref]bool

	state      *auditState
	chainFacts map[string]repository.Committed // writer → newest statement

	committed    map[string]repository.Committed // this machine's last commits, read first
	committedErr error
	snapFiles    []backend.FileInfo // listed before the index was read
}

func (c *checker) problem(p Problem) {
	c.mu.Lock()
	c.rep.Problems = append(c.rep.Problems, p)
	c.mu.Unlock()
}

// Check checks repo. It returns an error only when it cannot run at all
// (a writer key, a storage that cannot be listed, cancellation); what it
// finds wrong is in the report.
func Check(ctx context.Context, repo *repository.Repository, opts Options) (*Report, error) {
	if !repo.CanReadMetadata() {
		return nil, fmt.Errorf("checking %w", crypto.ErrNeedsMetadata)
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Now == nil {
		opts.Now = repo.Now
	}
	c := &checker{repo: repo, be: repo.Backend(), opts: opts,
		indexed: map[blob.ID][32]byte{}, indexedIn: map[blob.ID]string{}, blobs: map[snapshot.Ref]blobState{},
		packFiles: map[blob.ID]int64{}, snapSets: newSnapSets(), badPacks: map[blob.ID]bool{},
		treesSeen: map[blob.ID]bool{}, chainFacts: map[string]repository.Committed{},
		unindexed: map[snapshot.Ref]bool{}, named: map[snapshot.Ref]bool{}}
	if err := c.loadState(); err != nil {
		return nil, err
	}
	// What this machine committed is read before the snapshots are
	// listed: a backup committing while check runs then adds a statement
	// the listing shows, never one it missed (a false rollback).
	c.committed, c.committedErr = repo.LastCommitted()
	// The snapshots are listed before the index is read: a commit stores
	// its index fragments before its snapshot file, so every snapshot
	// listed here has its blobs in the index read after, however many
	// backups commit while check runs.
	snapFiles, err := c.list(ctx, backend.Snapshots)
	if err != nil {
		return nil, err
	}
	c.snapFiles = snapFiles
	readData := opts.ReadData || opts.Subset != nil
	dataStep := "pack contents hash to their names; blobs decrypt and verify"
	if opts.Subset != nil {
		dataStep += " (subset " + opts.Subset.String() + ", least recently verified first)"
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
		when bool
	}{
		{"file names match content hashes (all files but packs)", c.checkNames, true},
		{"config verifies against the owner key", c.checkConfig, true},
		{"index fragments decrypt and parse", c.checkIndex, true},
		{"snapshots verify; manifest refs are indexed", c.checkSnapshots, true},
		{"R17: forged snapshots (signature, signer in roster), rollback (per-writer statement chains, newest statement not behind this machine's last commit or earlier checks), replayed deleted snapshots, seq gaps without a tombstone; tombstone signatures", c.checkChains, true},
		{"R25: each snapshot's host label is bound to its signer", c.checkIdentity, true},
		{"indexed packs exist; trailers valid; sealed headers equal the index", c.checkPacks, true},
		{"trees load and verify; file content is indexed", c.checkTrees, repo.CanReadContent()},
		{dataStep, c.readData, readData},
	}
	for _, s := range steps {
		if !s.when {
			continue
		}
		if err := s.fn(ctx); err != nil {
			return nil, err
		}
		c.rep.Checks = append(c.rep.Checks, s.name)
	}
	if readData && !repo.CanReadContent() {
		c.rep.Notes = append(c.rep.Notes, "data and tree blobs were checked by pack hash only: opening them needs the owner key")
	}
	if !repo.CanReadContent() {
		c.rep.Notes = append(c.rep.Notes, "trees were not checked: they need the owner key")
	}
	c.rep.Packs, c.rep.Blobs, c.rep.Snapshots, c.rep.Trees = len(c.indexed), c.nIndexed, len(c.snaps), len(c.treesSeen)
	if err := c.saveState(); err != nil {
		c.rep.Notes = append(c.rep.Notes, fmt.Sprintf("audit state not saved: %v", err))
	}
	c.rep.BadPacks = []string{}
	for id := range c.badPacks {
		c.rep.BadPacks = append(c.rep.BadPacks, id.String())
	}
	sort.Strings(c.rep.BadPacks)
	sort.Slice(c.rep.Problems, func(i, j int) bool { return c.rep.Problems[i].String() < c.rep.Problems[j].String() })
	return &c.rep, nil
}

// checkConfig reports a fixed-name config that does not verify (readers
// then use the newest valid version in configs/, R24).
func (c *checker) checkConfig(ctx context.Context) error {
	err := c.repo.VerifyStoredConfig(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		c.problem(Problem{File: "config", Message: fmt.Sprintf("does not verify (readers use the newest valid version in configs/): %v", err)})
	}
	return nil
}

// list returns the files of type t.
func (c *checker) list(ctx context.Context, t backend.FileType) ([]backend.FileInfo, error) {
	var out []backend.FileInfo
	err := c.be.List(ctx, t, func(fi backend.FileInfo) error {
		out = append(out, fi)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t, err)
	}
	return out, nil
}

// hashFile streams a file through SHA-256.
func (c *checker) hashFile(ctx context.Context, h backend.Handle) (string, int64, error) {
	sum := sha256.New()
	var n int64
	err := c.be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		var err error
		n, err = io.Copy(sum, rd)
		return err
	})
	return hex.EncodeToString(sum.Sum(nil)), n, err
}

func (c *checker) checkNames(ctx context.Context) error {
	for _, t := range backend.AllTypes {
		if !backend.ContentNamed(t) || t == backend.Data {
			continue
		}
		files, err := c.list(ctx, t)
		if err != nil {
			return err
		}
		for _, fi := range files {
			got, n, err := c.hashFile(ctx, fi.Handle)
			if err := ctx.Err(); err != nil {
				return err
			}
			c.rep.BytesRead += uint64(n)
			switch {
			case err != nil:
				c.problem(Problem{File: fi.Handle.String(), Message: fmt.Sprintf("cannot be read: %v", err)})
			case got != fi.Name:
				c.problem(Problem{File: fi.Handle.String(), Message: fmt.Sprintf("%s file content hashes to %s, not its name (corrupted)", t, got[:12])})
			}
		}
	}
	return nil
}

func (c *checker) checkIndex(ctx context.Context) error {
	files, err := c.list(ctx, backend.Index)
	if err != nil {
		return err
	}
	for _, fi := range files {
		f, err := c.repo.LoadIndexFile(ctx, fi.Name)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			c.problem(Problem{File: fi.Handle.String(), Message: fmt.Sprintf("index fragment unusable: %v", err)})
			continue
		}
		for _, p := range f.Packs {
			sum := sha256.Sum256(p.Header)
			if old, ok := c.indexed[p.Pack]; ok && old != sum {
				c.problem(Problem{File: "data/" + p.Pack.String(), Message: fmt.Sprintf("listed with different headers in %s and %s", c.indexedIn[p.Pack], fi.Handle)})
				continue
			}
			c.indexed[p.Pack] = sum
			c.indexedIn[p.Pack] = fi.Handle.String()
			c.packIDs = append(c.packIDs, p.Pack)
			n := uint32(len(c.packIDs))
			for _, e := range p.Parsed.Entries {
				r := snapshot.Ref{Type: e.Type, ID: e.ID}
				st := c.blobs[r]
				if st.pack == 0 {
					c.nIndexed++
				}
				st.pack = n
				c.blobs[r] = st
			}
		}
	}
	// The repository's own index serves tree loads and blob opening; an
	// unusable fragment was reported above and leaves its blobs missing.
	if err := c.repo.LoadIndex(ctx); err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func (c *checker) checkSnapshots(ctx context.Context) error {
	for _, fi := range c.snapFiles {
		s, err := c.repo.LoadSnapshot(ctx, fi)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			msg := c.forgery(ctx, fi)
			if msg == "" {
				msg = fmt.Sprintf("snapshot does not verify: %v", err)
			}
			c.problem(Problem{File: fi.Handle.String(), Message: msg})
			continue
		}
		c.snaps = append(c.snaps, s)
		refs, err := c.repo.ManifestRefs(ctx, s)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			c.problem(Problem{File: fi.Handle.String(), Snapshots: []string{s.ID.Short()}, Message: fmt.Sprintf("manifest unreadable: %v", err)})
		}
		for _, p := range s.Meta.Pages {
			refs = append(refs, snapshot.Ref{Type: blob.ManifestPage, ID: p})
		}
		rootRef := snapshot.Ref{Type: blob.Tree.Stored(), ID: s.File.Statement.Root} // as the manifest lists it
		if err == nil && !containsRef(refs, rootRef) {
			c.problem(Problem{File: fi.Handle.String(), Blob: "tree " + rootRef.ID.Short(), Snapshots: []string{s.ID.Short()}, Message: "root tree is not in the snapshot's manifest"})
		}
		si := c.newSnap(s.ID.Short())
		for _, r := range refs {
			st := c.blobs[r]
			st.snaps = c.addSnap(st.snaps, si)
			c.blobs[r] = st
			if st.pack == 0 {
				if c.repo.CanReadContent() && r.Type != blob.ManifestPage {
					c.unindexed[r] = true // the tree walk names it by path
					continue
				}
				c.problem(Problem{Blob: fmt.Sprintf("%s %s", r.Type, r.ID.Short()), Snapshots: []string{s.ID.Short()}, Message: "blob is not in the index (lost or never indexed)"})
			}
		}
	}
	return nil
}

func containsRef(refs []snapshot.Ref, r snapshot.Ref) bool {
	for _, x := range refs {
		if x == r {
			return true
		}
	}
	return false
}

// snapsOfPack names the snapshots that reference any blob in pack.
func (c *checker) snapsOfPack(id blob.ID) []string {
	set := map[string]bool{}
	for r, st := range c.blobs {
		if st.pack != 0 && c.packIDs[st.pack-1] == id {
			for _, s := range c.snapsOfBlob(r) {
				set[s] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func (c *checker) packProblem(id blob.ID, msg string) {
	c.mu.Lock()
	c.badPacks[id] = true
	c.mu.Unlock()
	c.problem(Problem{File: "data/" + id.String(), Snapshots: c.snapsOfPack(id), Message: msg})
}

func (c *checker) checkPacks(ctx context.Context) error {
	files, err := c.list(ctx, backend.Data)
	if err != nil {
		return err
	}
	for _, fi := range files {
		id, err := blob.ParseID(fi.Name)
		if err != nil {
			continue
		}
		c.packFiles[id] = fi.Size
		if _, ok := c.indexed[id]; !ok {
			c.rep.Notes = append(c.rep.Notes, fmt.Sprintf("pack data/%s is in no index (left by an interrupted backup; the next backup or prune handles it)", fi.Name[:12]))
		}
	}
	ids := make([]blob.ID, 0, len(c.indexed))
	for id := range c.indexed {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Workers)
	for _, id := range ids {
		size, ok := c.packFiles[id]
		if !ok {
			c.packProblem(id, fmt.Sprintf("pack is missing (listed in %s)", c.indexedIn[id]))
			continue
		}
		g.Go(func() error {
			c.checkPackHeader(gctx, id, size)
			return gctx.Err()
		})
	}
	return g.Wait()
}

// checkPackHeader checks a pack's trailer and that its sealed header
// decrypts to exactly the index's copy.
func (c *checker) checkPackHeader(ctx context.Context, id blob.ID, size int64) {
	h := backend.Handle{Type: backend.Data, Name: id.String()}
	if size < pack.TrailerSize {
		c.packProblem(id, fmt.Sprintf("pack is truncated (%d bytes, shorter than its trailer)", size))
		return
	}
	trailer, err := c.load(ctx, h, pack.TrailerSize, size-pack.TrailerSize)
	if err != nil {
		c.packProblem(id, fmt.Sprintf("trailer cannot be read: %v", err))
		return
	}
	off, l, err := pack.ParseTrailer(trailer, size)
	if err != nil {
		c.packProblem(id, fmt.Sprintf("pack is damaged or truncated (%s): %v", humanSize(size), err))
		return
	}
	sealed, err := c.load(ctx, h, l, off)
	if err != nil {
		c.packProblem(id, fmt.Sprintf("header cannot be read: %v", err))
		return
	}
	hdr, plain, err := pack.OpenHeader(sealed, off, c.repo.Keys().MetaIdentity)
	if err != nil {
		c.packProblem(id, fmt.Sprintf("sealed header does not open: %v", err))
		return
	}
	if err := c.repo.VerifyHeader(hdr); err != nil {
		c.packProblem(id, fmt.Sprintf("header is not validly signed for its domain (R23): %v", err))
		return
	}
	if sha256.Sum256(plain) != c.indexed[id] {
		c.packProblem(id, fmt.Sprintf("header differs from its copy in %s", c.indexedIn[id]))
	}
}

func (c *checker) load(ctx context.Context, h backend.Handle, length int, off int64) ([]byte, error) {
	var buf []byte
	err := c.be.Load(ctx, h, length, off, func(rd io.Reader) error {
		var err error
		buf, err = io.ReadAll(rd)
		return err
	})
	if err == nil && length > 0 && len(buf) != length {
		err = io.ErrUnexpectedEOF
	}
	return buf, err
}

func humanSize(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// checkTrees walks every snapshot's trees once each (owner key), after
// checking that each snapshot's trees expand within the bound every walk
// of it enforces (walker.Expander): a snapshot that restore, ls and find
// refuse is a problem.
func (c *checker) checkTrees(ctx context.Context) error {
	exp := walker.NewExpander(c.repo)
	for _, s := range c.snaps {
		if _, err := exp.Snapshot(ctx, s); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.problem(Problem{Blob: "tree " + s.File.Statement.Root.Short(), Snapshots: []string{s.ID.Short()},
				Message: fmt.Sprintf("snapshot is refused by restore, ls and find: %v", err)})
		}
	}
	for _, s := range c.snaps {
		if err := c.tree(ctx, s, s.File.Statement.Root, "/", 0); err != nil {
			return err
		}
	}
	for r := range c.unindexed {
		if !c.named[r] {
			c.problem(Problem{Blob: fmt.Sprintf("%s %s", r.Type, r.ID.Short()), Snapshots: c.snapsOfBlob(r), Message: "blob is not in the index (lost or never indexed)"})
		}
	}
	return nil
}

func (c *checker) tree(ctx context.Context, s *repository.Snapshot, id blob.ID, path string, depth int) error {
	if c.treesSeen[id] {
		return nil
	}
	c.treesSeen[id] = true
	if err := ctx.Err(); err != nil {
		return err
	}
	if depth > walker.MaxDepth {
		c.problem(Problem{Blob: "tree " + id.Short(), Snapshots: []string{s.ID.Short()}, Message: fmt.Sprintf("%s: deeper than %d levels", path, walker.MaxDepth)})
		return nil
	}
	// Only copies of the signer's domain and the owner's serve s (R23).
	rctx := repository.ReadFor(ctx, s.Signer())
	t, err := walker.LoadTree(rctx, c.repo, id)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		c.named[snapshot.Ref{Type: blob.Tree.Stored(), ID: id}] = true
		c.problem(Problem{Blob: "tree " + id.Short(), Snapshots: c.snapsOf(snapshot.Ref{Type: blob.Tree.Stored(), ID: id}, s), Message: fmt.Sprintf("directory %s: %v", path, err)})
		return nil
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := strings.TrimSuffix(path, "/") + "/" + n.Name
		if n.Type == snapshot.TypeDir && n.Subtree != nil {
			if err := c.tree(ctx, s, *n.Subtree, p, depth+1); err != nil {
				return err
			}
			continue
		}
		for _, b := range n.Content {
			if _, ok := c.repo.Locate(rctx, blob.Data, b); !ok {
				r := snapshot.Ref{Type: blob.Data, ID: b}
				c.named[r] = true
				msg := fmt.Sprintf("content of %q has no copy in the index that its snapshot may use (its signer's or the owner's)", p)
				if c.blobs[r].pack == 0 {
					msg = fmt.Sprintf("content of %q: blob is not in the index (lost or never indexed)", p)
				}
				c.problem(Problem{Blob: "data " + b.Short(), Snapshots: c.snapsOf(r, s), Message: msg})
			}
		}
	}
	return nil
}

func (c *checker) snapsOf(r snapshot.Ref, s *repository.Snapshot) []string {
	if ss := c.snapsOfBlob(r); len(ss) > 0 {
		return ss
	}
	return []string{s.ID.Short()}
}

// readData reads the selected packs, each as one stream (verifyPack).
func (c *checker) readData(ctx context.Context) error {
	// Blobs the repository's index knows, grouped by pack, with its slot
	// numbering (what OpenBlob needs).
	byPack := map[blob.ID][]index.Entry{}
	c.repo.Index().Each(func(e index.Entry) bool {
		byPack[e.Pack] = append(byPack[e.Pack], e)
		return true
	})
	canOpen := func(t blob.Type) bool {
		return t == blob.ManifestPage || c.repo.CanReadContent()
	}
	now := c.opts.Now()
	selected := c.selectPacks(now)
	for _, id := range selected {
		c.opts.Progress.AddTotal(1, uint64(c.packFiles[id]))
	}
	var verified []blob.ID
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Workers)
	for _, id := range selected {
		size := c.packFiles[id]
		g.Go(func() error {
			ok := true
			defer func() {
				c.mu.Lock()
				if ok && !c.badPacks[id] {
					verified = append(verified, id)
					c.state.Packs[id.String()] = now.UTC()
				}
				c.mu.Unlock()
			}()
			ok = c.verifyPack(gctx, id, size, byPack[id], canOpen)
			c.opts.Progress.Add(1, uint64(size))
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	c.coverage(now, verified)
	return nil
}
