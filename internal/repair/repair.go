package repair

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/prune"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/snapshot"
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

// Report says what a repair did (or, dry, would do).
type Report struct {
	DryRun       bool       `json:"dry_run"`
	Dropped      []string   `json:"dropped_packs"`
	LostBlobs    int        `json:"lost_blobs"`
	IndexWritten int        `json:"index_written"`
	IndexRemoved int        `json:"index_removed"`
	Snapshots    []Affected `json:"snapshots"`
	Notes        []string   `json:"notes"`
}

// Run drops the packs named in packs (hex IDs, as a check reports them in
// BadPacks) from repo's index and reports what was lost (see the package
// doc).
func Run(ctx context.Context, repo *repository.Repository, packs []string, opts Options) (*Report, error) {
	if !repo.CanReadMetadata() || repo.Keys().CoordSign == nil {
		return nil, fmt.Errorf("repairing %w", crypto.ErrNeedsMetadata)
	}
	rep := &Report{DryRun: opts.DryRun, Dropped: []string{}, Snapshots: []Affected{}, Notes: []string{}}
	bad := map[blob.ID]bool{}
	for _, n := range packs {
		id, err := blob.ParseID(n)
		if err != nil {
			return nil, fmt.Errorf("pack %q: %w", n, err)
		}
		bad[id] = true
		rep.Dropped = append(rep.Dropped, n)
	}
	sort.Strings(rep.Dropped)
	if len(bad) == 0 {
		return rep, nil
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return nil, err
	}
	lost := lostBlobs(repo.Index(), bad)
	rep.LostBlobs = len(lost)
	if err := affected(ctx, repo, lost, rep); err != nil {
		return nil, err
	}
	if !repo.CanReadContent() {
		rep.Notes = append(rep.Notes, "which files lost content needs the owner key")
	}
	if opts.DryRun {
		return rep, nil
	}
	var err error
	if rep.IndexWritten, rep.IndexRemoved, err = prune.DropPacks(ctx, repo, bad); err != nil {
		return rep, fmt.Errorf("rewrite index: %w", err)
	}
	return rep, nil
}

// lostBlobs returns the blobs of bad packs with no indexed copy elsewhere.
func lostBlobs(idx *index.Concurrent, bad map[blob.ID]bool) map[snapshot.Ref]bool {
	lost := map[snapshot.Ref]bool{}
	idx.Each(func(e index.Entry) bool {
		if !bad[e.Pack] {
			return true
		}
		for _, o := range idx.LookupAll(e.ID, e.Type) {
			if !bad[o.Pack] {
				return true
			}
		}
		lost[snapshot.Ref{Type: e.Type, ID: e.ID}] = true
		return true
	})
	return lost
}

func affected(ctx context.Context, repo *repository.Repository, lost map[snapshot.Ref]bool, rep *Report) error {
	snaps, errs, err := repo.Snapshots(ctx)
	if err != nil {
		return err
	}
	for _, e := range errs {
		rep.Notes = append(rep.Notes, fmt.Sprintf("not examined: %v", e))
	}
	for _, s := range snaps {
		a := Affected{Snapshot: s.ID.Short(), Time: s.Time()}
		refs, err := repo.ManifestRefs(ctx, s)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("snapshot %s: manifest unreadable, what it lost is unknown: %v", s.ID.Short(), err))
		}
		for _, p := range s.Meta.Pages {
			refs = append(refs, snapshot.Ref{Type: blob.ManifestPage, ID: p})
		}
		for _, r := range refs {
			if lost[r] {
				a.LostBlobs++
			}
		}
		if a.LostBlobs == 0 {
			continue
		}
		if repo.CanReadContent() {
			w := &walker{repo: repo, lost: lost}
			if err := w.walk(ctx, s.File.Statement.Root, "/", 0); err != nil {
				return err
			}
			sort.Slice(w.files, func(i, j int) bool { return w.files[i].Path < w.files[j].Path })
			a.Files = w.files
			rep.Notes = append(rep.Notes, w.notes...)
		}
		rep.Snapshots = append(rep.Snapshots, a)
	}
	return nil
}

type walker struct {
	repo  *repository.Repository
	lost  map[snapshot.Ref]bool
	files []LostFile
	notes []string
}

func (w *walker) walk(ctx context.Context, id blob.ID, path string, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.lost[snapshot.Ref{Type: blob.Tree.Stored(), ID: id}] { // lost is keyed by stored type
		w.files = append(w.files, LostFile{Path: path, Dir: true})
		return nil
	}
	if depth > restorer.MaxDepth {
		return nil
	}
	t, err := restorer.LoadTree(ctx, w.repo, id)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		w.notes = append(w.notes, fmt.Sprintf("directory %s: %v", path, err))
		return nil
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := strings.TrimSuffix(path, "/") + "/" + n.Name
		if n.Type == snapshot.TypeDir && n.Subtree != nil {
			if err := w.walk(ctx, *n.Subtree, p, depth+1); err != nil {
				return err
			}
			continue
		}
		lf := LostFile{Path: p, Blobs: len(n.Content)}
		for _, b := range n.Content {
			if w.lost[snapshot.Ref{Type: blob.Data, ID: b}] {
				lf.LostBlobs++
			}
		}
		if lf.LostBlobs > 0 {
			w.files = append(w.files, lf)
		}
	}
	return nil
}
