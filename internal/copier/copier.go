// Package copier writes one snapshot's trees and content into a repository
// under that repository's key and signs a new snapshot there: `cairn copy`
// (into another repository) and `cairn tag` (into the same one, with new
// tags) share it.
//
// Every blob is read from the source with the source snapshot signer's
// domain first (repository.ReadFor) and re-hashed to its ID (R6), so a
// copy never adopts a copy that does not open. Blob IDs are keyed per
// repository and dedup generation (format.md §8): between repositories
// every data blob is re-hashed under the destination's key and every tree
// re-encoded with the new IDs; within one repository and generation the
// IDs stay, and a blob the destination key's own domain already holds is
// neither read nor stored again. Chunk boundaries are kept as they are:
// the destination dedups copies against copies, not against its own
// backups of the same files (its chunker key differs).
package copier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/ticker"
)

// Options say what the new snapshot carries besides the source's trees.
type Options struct {
	// Tags are the new snapshot's tags.
	Tags []string
	// Time is its claimed time.
	Time time.Time
	// Expander bounds the walk of the source (one for several snapshots
	// shares its memo); nil makes one.
	Expander *restorer.Expander
	// Exists, when set, is asked with the new snapshot's root tree (in the
	// destination) before it is committed: true means the destination has
	// the copy already, and nothing is committed (Result.Existing).
	Exists func(root blob.ID) *repository.Snapshot
	// Progress, when set, counts the snapshot's files (and their bytes)
	// as they are copied; the total files are added when the copy starts.
	// One Counter may span several copies.
	Progress *ticker.Counter
}

// Result is what a copy stored.
type Result struct {
	Snapshot   *repository.Snapshot
	BlobsNew   uint64 // blobs stored in the destination
	BytesAdded uint64 // their stored bytes
	// Existing is the destination's copy Options.Exists found; Snapshot
	// is nil then.
	Existing *repository.Snapshot
}

// loadWorkers bounds concurrent blob loads from the source.
const loadWorkers = 8

// OriginOf is where snap came from: its own origin if it is a copy or a
// re-tag, else snap itself in repo.
func OriginOf(repoID [32]byte, snap *repository.Snapshot) snapshot.Origin {
	if snap.Owner != nil && snap.Owner.Origin != nil {
		return *snap.Owner.Origin
	}
	return snapshot.Origin{Repo: fmt.Sprintf("%x", repoID[:]), Snapshot: snap.ID.String()}
}

// Find returns the snapshot among snaps that is a copy of origin (or
// origin itself), nil if there is none. It needs owner headers.
func Find(repoID [32]byte, snaps []*repository.Snapshot, origin snapshot.Origin) *repository.Snapshot {
	for _, s := range snaps {
		if s.Owner != nil && OriginOf(repoID, s) == origin {
			return s
		}
	}
	return nil
}

// Copy writes snap (of src, which must be opened with the owner key) into
// dst and commits a snapshot signed by dst's key, with snap's paths,
// host, summary and times, opts' tags and claimed time, and the origin.
// src and dst may be the same repository.
func Copy(ctx context.Context, src *repository.Repository, snap *repository.Snapshot, dst *repository.Repository, opts Options) (*Result, error) {
	if !src.CanReadContent() || snap.Owner == nil || snap.Meta == nil {
		return nil, errors.New("copying a snapshot needs the source's owner key")
	}
	exp := opts.Expander
	if exp == nil {
		exp = restorer.NewExpander(src)
	}
	x, err := exp.Snapshot(ctx, snap)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s is refused: %w", snap.ID.Short(), err)
	}
	opts.Progress.AddTotal(x.Files, 0)
	var known repository.Known
	if dst.CanReadMetadata() {
		if err := dst.LoadIndex(ctx); err != nil {
			return nil, err
		}
	} else {
		set, err := dst.WriterKnown(ctx)
		if err != nil {
			return nil, fmt.Errorf("own last snapshot: %w", err)
		}
		known = set
	}
	sess, err := dst.NewSession(ctx, known)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			sess.Abort()
		}
	}()
	c := &copier{src: src, dst: dst, sess: sess, prog: opts.Progress, signer: snap.Signer(), srcCtx: repository.ReadFor(ctx, snap.Signer()),
		same:  src == dst && snap.File.Statement.DedupGen == dst.Keys().CurrentDedup,
		trees: map[blob.ID]blob.ID{}, data: map[blob.ID]blob.ID{}, refs: map[snapshot.Ref]struct{}{}}
	root, err := c.tree(ctx, snap.File.Statement.Root, 0)
	if err != nil {
		return nil, err
	}
	if opts.Exists != nil {
		if s := opts.Exists(root); s != nil {
			// Index what was stored anyway (nothing, unless the copy
			// in the destination lost blobs), and commit nothing.
			if err := sess.Flush(ctx); err != nil {
				return nil, err
			}
			committed = true
			if err := sess.Close(); err != nil {
				return nil, err
			}
			st := sess.Stats()
			return &Result{Existing: s, BlobsNew: st.Blobs, BytesAdded: st.StoredBytes}, nil
		}
	}
	refs := make([]snapshot.Ref, 0, len(c.refs))
	for r := range c.refs {
		refs = append(refs, r)
	}
	owner := *snap.Owner
	origin := OriginOf(src.Keys().RepoID, snap)
	owner.Origin = &origin
	meta := snapshot.MetaHeader{HostLabel: snap.Meta.HostLabel, Tags: opts.Tags, PathGroup: dst.PathGroup(owner.Paths)}
	st := sess.Stats()
	s, err := sess.Commit(ctx, repository.CommitInput{Root: root, Refs: refs, Meta: meta, Owner: owner, Time: opts.Time})
	if err != nil {
		return nil, err
	}
	committed = true
	if err := sess.Close(); err != nil {
		return nil, err
	}
	return &Result{Snapshot: s, BlobsNew: st.Blobs, BytesAdded: st.StoredBytes}, nil
}

type copier struct {
	src, dst *repository.Repository
	sess     *repository.Session
	signer   blob.Domain     // the source snapshot's signer
	srcCtx   context.Context // reads in the source signer's domain
	same     bool            // IDs stay: same repository and dedup generation
	prog     *ticker.Counter

	mu    sync.Mutex
	trees map[blob.ID]blob.ID // source tree ID → destination tree ID
	data  map[blob.ID]blob.ID // source data ID → destination data ID
	refs  map[snapshot.Ref]struct{}
}

// tree copies the tree id and everything below it, each distinct tree
// once (the Expander has bounded the walk), and returns its ID in dst.
func (c *copier) tree(ctx context.Context, id blob.ID, depth int) (blob.ID, error) {
	if to, ok := c.trees[id]; ok {
		return to, nil
	}
	if depth > restorer.MaxDepth {
		return blob.ID{}, fmt.Errorf("%w: deeper than %d levels", restorer.ErrTooLarge, restorer.MaxDepth)
	}
	t, err := restorer.LoadTree(c.srcCtx, c.src, id)
	if err != nil {
		return blob.ID{}, err
	}
	if err := c.content(ctx, t); err != nil {
		return blob.ID{}, err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.Subtree != nil {
			sub, err := c.tree(ctx, *n.Subtree, depth+1)
			if err != nil {
				return blob.ID{}, err
			}
			n.Subtree = &sub
		}
		for j, d := range n.Content {
			n.Content[j] = c.data[d]
		}
		if n.Type == snapshot.TypeFile && n.HardLinkTo == "" {
			c.prog.Add(1, n.Size)
		}
	}
	plain, err := t.Encode()
	if err != nil {
		return blob.ID{}, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	to, _, err := c.sess.SaveBlob(ctx, blob.Tree, plain)
	if err != nil {
		return blob.ID{}, err
	}
	if c.same && to != id {
		// Within one repository and generation the encoding is canonical
		// (R20): a different ID means the source tree is not what it says.
		return blob.ID{}, fmt.Errorf("tree %s re-encodes to %s", id.Short(), to.Short())
	}
	c.trees[id] = to
	c.refs[snapshot.Ref{Type: blob.Tree, ID: to}] = struct{}{}
	return to, nil
}

// content copies the data blobs of t's files that are not copied yet, up
// to loadWorkers at once.
func (c *copier) content(ctx context.Context, t *snapshot.Tree) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadWorkers)
	queued := map[blob.ID]bool{}
	for i := range t.Nodes {
		for _, id := range t.Nodes[i].Content {
			c.mu.Lock()
			_, done := c.data[id]
			c.mu.Unlock()
			if done || queued[id] {
				continue
			}
			queued[id] = true
			g.Go(func() error {
				to, err := c.blob(gctx, id)
				if err != nil {
					return err
				}
				c.mu.Lock()
				c.data[id] = to
				c.refs[snapshot.Ref{Type: blob.Data, ID: to}] = struct{}{}
				c.mu.Unlock()
				return nil
			})
		}
	}
	return g.Wait()
}

// blob copies one data blob and returns its ID in dst. Within one
// repository a blob the destination domain holds is not read at all.
func (c *copier) blob(ctx context.Context, id blob.ID) (blob.ID, error) {
	if c.same && c.sess.Has(blob.Data, id) {
		return id, nil
	}
	plain, err := c.src.LoadBlob(repository.ReadFor(ctx, c.signer), blob.Data, id)
	if err != nil {
		return blob.ID{}, err
	}
	if c.same {
		_, err := c.sess.SaveBlobID(ctx, blob.Data, id, plain)
		return id, err
	}
	to, _, err := c.sess.SaveBlob(ctx, blob.Data, plain)
	return to, err
}
