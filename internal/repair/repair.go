package repair

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/walker"
)

// Options configure a repair.
type Options struct {
	DryRun bool
}

// LostFile is a file or directory of a snapshot that lost content.
type LostFile struct {
	Path string `json:"path"`
	// Dir: the directory's own tree is gone, and everything below it.
	Dir bool `json:"dir,omitempty"`
	// LostBlobs of Blobs content blobs are gone.
	LostBlobs int `json:"lost_blobs,omitempty"`
	Blobs     int `json:"blobs,omitempty"`
}

// Affected is a snapshot that reaches a lost blob.
type Affected struct {
	Snapshot  string     `json:"snapshot"`
	Time      time.Time  `json:"time"`
	LostBlobs int        `json:"lost_blobs"`
	Files     []LostFile `json:"files,omitempty"` // owner key only
}

// PackResult is what became of one damaged pack.
type PackResult struct {
	Pack string `json:"pack"`
	// Missing: there was no pack file to read.
	Missing bool `json:"missing,omitempty"`
	Blobs   int  `json:"blobs"`
	// Salvaged blobs decrypted and re-hashed to their IDs: repacked, or
	// already stored in another pack.
	Salvaged int `json:"salvaged"`
	// Lost blobs did not open and have no other copy.
	Lost int `json:"lost"`
	// Kept: left in the index, since this key cannot tell its good
	// content blobs from its damaged ones (the server key).
	Kept bool `json:"kept,omitempty"`
}

// Report says what a repair did (or, dry, would do).
type Report struct {
	DryRun bool `json:"dry_run"`
	// Packs are the damaged packs, each with what became of it.
	Packs   []PackResult `json:"packs"`
	Dropped []string     `json:"dropped_packs"`
	// Kept are damaged packs left in the index (PackResult.Kept).
	Kept []string `json:"kept_packs"`
	// Repacked salvaged blobs were copied into NewPacks.
	Repacked     int        `json:"repacked_blobs"`
	NewPacks     []string   `json:"new_packs"`
	LostBlobs    int        `json:"lost_blobs"`
	IndexWritten int        `json:"index_written"`
	IndexRemoved int        `json:"index_removed"`
	Snapshots    []Affected `json:"snapshots"`
	Notes        []string   `json:"notes"`
}

// Run salvages and drops the packs named in packs (hex IDs, as a check
// reports them in BadPacks) and reports what was lost (see the package
// doc).
func Run(ctx context.Context, repo *repository.Repository, packs []string, opts Options) (*Report, error) {
	if !repo.CanReadMetadata() || repo.Keys().CoordSign == nil {
		return nil, fmt.Errorf("repairing %w", crypto.ErrNeedsMetadata)
	}
	rep := &Report{DryRun: opts.DryRun, Packs: []PackResult{}, Dropped: []string{}, Kept: []string{}, NewPacks: []string{},
		Snapshots: []Affected{}, Notes: []string{}}
	bad := map[blob.ID]bool{}
	for _, n := range packs {
		id, err := blob.ParseID(n)
		if err != nil {
			return nil, fmt.Errorf("pack %q: %w", n, err)
		}
		bad[id] = true
	}
	if len(bad) == 0 {
		return rep, nil
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return nil, err
	}
	s := &salvage{repo: repo, bad: bad, dropped: map[blob.ID]bool{}, good: map[copyKey]bool{}}
	if err := s.run(ctx, rep, opts.DryRun); err != nil {
		return nil, err
	}
	if err := s.affected(ctx, rep); err != nil {
		return nil, err
	}
	if !repo.CanReadContent() && rep.LostBlobs > 0 {
		rep.Notes = append(rep.Notes, "which files lost content needs the owner key")
	}
	if opts.DryRun || len(s.dropped) == 0 {
		return rep, nil
	}
	var err error
	if rep.IndexWritten, rep.IndexRemoved, err = prune.DropPacks(ctx, repo, s.dropped); err != nil {
		return rep, fmt.Errorf("rewrite index: %w", err)
	}
	rep.IndexWritten += min(len(rep.NewPacks), 1) // the new packs' fragment
	return rep, nil
}

// salvage is one repair's state.
type salvage struct {
	repo    *repository.Repository
	bad     map[blob.ID]bool // the damaged packs
	dropped map[blob.ID]bool // damaged packs dropped from the index (not kept)
	good    map[copyKey]bool // copies in dropped packs that opened and re-hashed
	lost    map[snapshot.Ref]bool
}

// run salvages each damaged pack: the blobs that open are copied into new
// packs (unless dry), unless a copy that serves the same snapshots is
// stored elsewhere; the new packs are indexed before any pack is dropped,
// so a killed repair leaves both copies indexed, never neither.
func (s *salvage) run(ctx context.Context, rep *Report, dry bool) error {
	byPack := map[blob.ID][]index.Entry{}
	s.repo.Index().Each(func(e index.Entry) bool {
		if s.bad[e.Pack] {
			byPack[e.Pack] = append(byPack[e.Pack], e)
		}
		return true
	})
	ids := make([]blob.ID, 0, len(s.bad))
	for id := range s.bad {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	rp := s.repo.NewRepacker() // salvaged blobs keep their pack's domain (R23)
	type repackKey struct {
		snapshot.Ref
		blob.Domain
	}
	repacked := map[repackKey]bool{}
	for _, id := range ids {
		entries := sortEntries(byPack[id])
		res := PackResult{Pack: id.String(), Blobs: len(entries)}
		fi, err := s.repo.Backend().Stat(ctx, backend.Handle{Type: backend.Data, Name: id.String()})
		switch {
		case errors.Is(err, backend.ErrNotFound):
			res.Missing = true
		case err != nil:
			return fmt.Errorf("pack %s: %w", id.Short(), err)
		case !s.canOpenAll(entries):
			// The server key opens manifest pages only: it cannot tell
			// good content blobs from damaged ones, and dropping the
			// pack would lose the good ones.
			res.Kept = true
			rep.Packs = append(rep.Packs, res)
			rep.Kept = append(rep.Kept, id.String())
			continue
		default:
			good, err := salvagePack(ctx, s.repo, id, fi.Size, entries, func(e index.Entry, sealed []byte) error {
				k := repackKey{snapshot.Ref{Type: e.Type, ID: e.ID}, e.Domain}
				if repacked[k] || s.servedElsewhere(e) {
					return nil
				}
				repacked[k] = true // one copy, however many damaged packs hold it
				rep.Repacked++
				if dry {
					return nil
				}
				return rp.Add(ctx, e, sealed)
			})
			if err != nil {
				return err
			}
			for k := range good {
				s.good[k] = true
			}
			res.Salvaged = len(good)
		}
		s.dropped[id] = true
		rep.Dropped = append(rep.Dropped, id.String())
		rep.Packs = append(rep.Packs, res)
	}
	if !dry {
		written, _, err := rp.Finish(ctx)
		if err != nil {
			return fmt.Errorf("store salvaged blobs: %w", err)
		}
		for _, id := range written {
			rep.NewPacks = append(rep.NewPacks, id.String())
		}
	}
	// Lost: a copy in a dropped pack that did not open, of a blob no
	// other copy stands for.
	s.lost = map[snapshot.Ref]bool{}
	for i := range rep.Packs {
		res := &rep.Packs[i]
		if res.Kept {
			continue
		}
		id, _ := blob.ParseID(res.Pack)
		for _, e := range sortEntries(byPack[id]) {
			if !s.good[keyOf(e)] && !s.servedElsewhere(e) {
				res.Lost++
				s.lost[snapshot.Ref{Type: e.Type, ID: e.ID}] = true
			}
		}
	}
	rep.LostBlobs = len(s.lost)
	return nil
}

func (s *salvage) canOpenAll(entries []index.Entry) bool {
	if s.repo.CanReadContent() {
		return true
	}
	for _, e := range entries {
		if e.Type != blob.ManifestPage {
			return false
		}
	}
	return true
}

// servedElsewhere reports whether a copy outside the damaged packs stands
// for everything copy e stands for: one of e's domain or the owner's
// (R23).
func (s *salvage) servedElsewhere(e index.Entry) bool {
	owner := s.repo.OwnerDomain()
	for _, o := range s.repo.Index().LookupAll(e.ID, e.Type) {
		if !s.bad[o.Pack] && (o.Domain == e.Domain || o.Domain == owner) {
			return true
		}
	}
	return false
}

// lostFor reports whether a read under ctx (repository.ReadFor a
// snapshot's signer) loses blob r with this repair: every copy it may
// use is in a dropped pack and did not open.
func (s *salvage) lostFor(ctx context.Context, r snapshot.Ref) bool {
	if !s.lost[r] {
		return false
	}
	copies := s.repo.Copies(ctx, r.Type, r.ID)
	for _, c := range copies {
		if !s.dropped[c.Pack] || s.good[keyOf(c)] {
			return false
		}
	}
	return len(copies) > 0
}

// affected names the snapshots that lose blobs and, with the owner key,
// their files and directories that do.
func (s *salvage) affected(ctx context.Context, rep *Report) error {
	if len(s.lost) == 0 {
		return nil
	}
	snaps, errs, err := s.repo.Snapshots(ctx)
	if err != nil {
		return err
	}
	for _, e := range errs {
		rep.Notes = append(rep.Notes, fmt.Sprintf("not examined: %v", e))
	}
	exp := walker.NewExpander(s.repo)
	for _, snap := range snaps {
		rctx := repository.ReadFor(ctx, snap.Signer())
		a := Affected{Snapshot: snap.ID.Short(), Time: snap.Time()}
		refs, err := s.repo.ManifestRefs(rctx, snap)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("snapshot %s: manifest unreadable, what it lost is unknown: %v", snap.ID.Short(), err))
		}
		for _, p := range snap.Meta.Pages {
			refs = append(refs, snapshot.Ref{Type: blob.ManifestPage, ID: p})
		}
		for _, r := range refs {
			if s.lostFor(rctx, r) {
				a.LostBlobs++
			}
		}
		if a.LostBlobs == 0 {
			continue
		}
		if s.repo.CanReadContent() {
			files, notes, err := s.lostFiles(rctx, exp, snap)
			if err != nil {
				return err
			}
			a.Files = files
			rep.Notes = append(rep.Notes, notes...)
		}
		rep.Snapshots = append(rep.Snapshots, a)
	}
	return nil
}

// lostFiles walks snap's trees (after checking that they expand within
// the walks' bound) and lists each directory whose tree is lost and each
// file that loses content, by path.
func (s *salvage) lostFiles(ctx context.Context, exp *walker.Expander, snap *repository.Snapshot) ([]LostFile, []string, error) {
	short := snap.ID.Short()
	root := snap.File.Statement.Root
	if s.lostFor(ctx, snapshot.Ref{Type: blob.Tree.Stored(), ID: root}) {
		return []LostFile{{Path: "/", Dir: true}}, nil, nil
	}
	if _, err := exp.Snapshot(ctx, snap); err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, []string{fmt.Sprintf("snapshot %s is refused by restore, ls and find, its files are not listed: %v", short, err)}, nil
	}
	var files []LostFile
	var notes []string
	err := walker.WalkLost(ctx, s.repo, root, func(p string, n *snapshot.Node) error {
		if n.Type == snapshot.TypeDir && n.Subtree != nil {
			if s.lostFor(ctx, snapshot.Ref{Type: blob.Tree.Stored(), ID: *n.Subtree}) {
				files = append(files, LostFile{Path: "/" + p, Dir: true})
				return walker.ErrSkipDir
			}
			return nil
		}
		lf := LostFile{Path: "/" + p, Blobs: len(n.Content)}
		for _, b := range n.Content {
			if s.lostFor(ctx, snapshot.Ref{Type: blob.Data, ID: b}) {
				lf.LostBlobs++
			}
		}
		if lf.LostBlobs > 0 {
			files = append(files, lf)
		}
		return nil
	}, func(p string, _ blob.ID, err error) error {
		notes = append(notes, fmt.Sprintf("snapshot %s: directory /%s was unreadable before this repair: %v", short, p, err))
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		notes = append(notes, fmt.Sprintf("snapshot %s: walk stopped, the files listed may be incomplete: %v", short, err))
	}
	return files, notes, nil
}
