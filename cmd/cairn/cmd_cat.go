package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/walker"
)

// CatOptions are cat's flags.
type CatOptions struct {
	Filter SnapshotFilter
}

func newCatCommand(g *GlobalOptions) *cobra.Command {
	var opts CatOptions
	c := &cobra.Command{
		Use:   "cat config|roster|snapshot ID|tree ID|blob ID|index|pack ID",
		Short: "Print a repository object as JSON, for debugging",
		Long: `Print one repository object as the key in use can read it, as JSON:

  config           the verified config (any key)
  roster           the verified roster: writers, servers, revocations (any key)
  snapshot ID      the signed statement (any key), the metadata header (owner or
                   server key) and the owner header (owner key); ID may be
                   "latest" or a unique prefix
  tree ID          a tree: ID is a tree blob ID (64 hex digits) or
                   SNAPSHOT[:PATH] for the tree of a directory (owner key)
  blob ID          a data blob's plaintext, raw (owner key); refused on a
                   terminal, use a pipe or a file, or --json (base64)
  index            every index fragment with its packs' headers (owner or
                   server key)
  pack ID          a pack's header: domain, signer, key slots, blobs (owner or
                   server key)

IDs and hashes are lowercase hex. Names that are not UTF-8 also appear as
base64 in name_raw / link_target_raw.`,
		Example: `  cairn cat config
  cairn cat snapshot latest
  cairn cat tree latest:/etc
  cairn cat blob 3f9a… > chunk.bin`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error { return runCat(c.Context(), g, opts, args) },
	}
	addFilterFlags(c, &opts.Filter)
	return c
}

// catArgs says which objects take an ID.
var catArgs = map[string]bool{"config": false, "roster": false, "index": false, "snapshot": true, "tree": true, "blob": true, "pack": true}

func runCat(ctx context.Context, g *GlobalOptions, opts CatOptions, args []string) error {
	kind := args[0]
	needsID, ok := catArgs[kind]
	if !ok {
		return usageError{fmt.Errorf("cannot cat %q; want one of config, roster, snapshot, tree, blob, index, pack", kind)}
	}
	if needsID != (len(args) == 2) {
		if needsID {
			return usageError{fmt.Errorf("cat %s needs an ID", kind)}
		}
		return usageError{fmt.Errorf("cat %s takes no ID", kind)}
	}
	if kind == "blob" && !g.JSON && isTerminal(g.stdout) {
		return withHint(errors.New("a blob is binary and standard output is a terminal"), "redirect it to a file or a pipe (`| xxd`), or use --json for base64")
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	var v any
	switch kind {
	case "config":
		v = repo.Config()
	case "roster":
		v = repo.Roster()
	case "snapshot":
		snap, err := resolveSnapshot(ctx, g, repo, args[1], &opts.Filter)
		if err != nil {
			return err
		}
		if v, err = catSnapshot(snap); err != nil {
			return err
		}
	case "tree":
		if err := client.NeedContent(repo, "reading trees"); err != nil {
			return err
		}
		if v, err = catTree(ctx, g, repo, args[1], &opts.Filter); err != nil {
			return err
		}
	case "blob":
		if err := client.NeedContent(repo, "reading blobs"); err != nil {
			return err
		}
		id, err := parseBlobID(args[1])
		if err != nil {
			return err
		}
		if err := repo.LoadIndex(ctx); err != nil {
			return err
		}
		plain, err := repo.LoadBlob(ctx, blob.Data, id)
		if err != nil {
			return fmt.Errorf("data blob %s: %w", id.Short(), err)
		}
		if !g.JSON {
			_, err := g.stdout.Write(plain)
			return err
		}
		v = catBlobJSON{MessageType: "cat_blob", ID: id.String(), Type: blob.Data.String(), Size: len(plain), Data: plain}
	case "index":
		if err := client.NeedMetadata(repo, "reading the index"); err != nil {
			return err
		}
		if v, err = catIndex(ctx, g, repo); err != nil {
			return err
		}
	case "pack":
		if err := client.NeedMetadata(repo, "reading pack headers"); err != nil {
			return err
		}
		id, err := parseBlobID(args[1])
		if err != nil {
			return err
		}
		h, _, err := repo.StoredPackHeader(ctx, id)
		if err != nil {
			return fmt.Errorf("pack %s: %w", id.Short(), err)
		}
		v = catPackMessage(repository.ViewPackHeader(id, h))
	}
	return writeCatJSON(g.stdout, v)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func parseBlobID(s string) (blob.ID, error) {
	id, err := blob.ParseID(strings.ToLower(s))
	if err != nil {
		return blob.ID{}, usageError{fmt.Errorf("%q is not an ID (64 hex digits)", s)}
	}
	return id, nil
}

// writeCatJSON writes v indented. Strings are exact; C1 controls, which
// encoding/json leaves raw, are written as \u00XX escapes (the same JSON
// value), so no name in the output is a terminal control sequence.
func writeCatJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	var out strings.Builder
	for _, r := range buf.String() {
		if r >= 0x80 && r <= 0x9f {
			fmt.Fprintf(&out, `\u%04x`, r)
			continue
		}
		out.WriteRune(r)
	}
	_, err := io.WriteString(w, out.String())
	return err
}

type catMetaJSON struct {
	HostLabel string    `json:"host_label"`
	Tags      []string  `json:"tags"`
	PathGroup string    `json:"path_group"`
	Pages     []string  `json:"pages"`
	Blobs     uint64    `json:"blobs"`
	NewBlobs  uint64    `json:"new_blobs"`
	NewBytes  uint64    `json:"new_bytes"`
	Time      time.Time `json:"time"`
}

func catSnapshot(s *repository.Snapshot) (catSnapshotJSON, error) {
	st := s.File.Statement
	out := catSnapshotJSON{MessageType: "cat_snapshot", ID: s.ID.String(), Statement: catStatementJSON{
		RepoID: hex.EncodeToString(st.RepoID[:]), Writer: hex.EncodeToString(st.Writer[:]), Seq: st.Seq,
		Prev: hex.EncodeToString(st.Prev[:]), Tree: st.Root.String(), ManifestRoot: hex.EncodeToString(st.ManifestRoot[:]),
		Time: st.Time, DedupGen: st.DedupGen, Hash: fmt.Sprintf("%x", st.Hash()),
	}, Signer: s.Standing.Signer.String(), Sealed: []string{}}
	if m := s.Meta; m != nil {
		cm := catMetaJSON{HostLabel: m.HostLabel, Tags: m.Tags, PathGroup: m.PathGroup, Pages: []string{}, Blobs: m.Blobs,
			NewBlobs: m.NewBlobs, NewBytes: m.NewBytes, Time: m.Time}
		if cm.Tags == nil {
			cm.Tags = []string{}
		}
		for _, p := range m.Pages {
			cm.Pages = append(cm.Pages, p.String())
		}
		out.Meta = &cm
	} else {
		out.Sealed = append(out.Sealed, "meta")
	}
	if s.Owner != nil {
		raw, err := json.Marshal(s.Owner)
		if err != nil {
			return catSnapshotJSON{}, err
		}
		out.Owner = raw
	} else {
		out.Sealed = append(out.Sealed, "owner")
	}
	if len(s.File.DedupSealed) > 0 {
		out.Sealed = append(out.Sealed, "dedup")
	}
	return out, nil
}

type catNodeJSON struct {
	Name          string          `json:"name"`
	NameRaw       []byte          `json:"name_raw,omitempty"`
	Type          string          `json:"type"`
	Mode          string          `json:"mode"`
	UID           uint32          `json:"uid"`
	GID           uint32          `json:"gid"`
	User          string          `json:"user,omitempty"`
	Group         string          `json:"group,omitempty"`
	MTime         time.Time       `json:"mtime"`
	CTime         time.Time       `json:"ctime"`
	Size          uint64          `json:"size"`
	Links         uint64          `json:"links,omitempty"`
	Rdev          uint64          `json:"rdev,omitempty"`
	LinkTarget    string          `json:"link_target,omitempty"`
	LinkTargetRaw []byte          `json:"link_target_raw,omitempty"`
	Xattrs        []catXattrJSON  `json:"xattrs,omitempty"`
	Extents       []catExtentJSON `json:"extents,omitempty"`
	HardLinkTo    string          `json:"hardlink_to,omitempty"`
	Content       []string        `json:"content,omitempty"`
	Subtree       string          `json:"subtree,omitempty"`
	ContentHash   string          `json:"content_hash,omitempty"`
}

type catXattrJSON struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

type catExtentJSON struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

func catNode(n *snapshot.Node) catNodeJSON {
	j := catNodeJSON{Name: n.Name, Type: n.Type.String(), Mode: fmt.Sprintf("%04o", n.Mode), UID: n.UID, GID: n.GID,
		User: n.User, Group: n.Group, MTime: n.MTime, CTime: n.CTime, Size: n.Size, Links: n.Links, Rdev: n.Rdev,
		LinkTarget: n.LinkTarget, HardLinkTo: n.HardLinkTo}
	if !utf8.ValidString(n.Name) {
		j.NameRaw = []byte(n.Name)
	}
	if !utf8.ValidString(n.LinkTarget) {
		j.LinkTargetRaw = []byte(n.LinkTarget)
	}
	for _, x := range n.Xattrs {
		j.Xattrs = append(j.Xattrs, catXattrJSON{Name: x.Name, Value: x.Value})
	}
	for _, e := range n.Extents {
		j.Extents = append(j.Extents, catExtentJSON{Offset: e.Offset, Length: e.Length})
	}
	for _, c := range n.Content {
		j.Content = append(j.Content, c.String())
	}
	if n.Subtree != nil {
		j.Subtree = n.Subtree.String()
	}
	if n.ContentHash != nil {
		j.ContentHash = n.ContentHash.String()
	}
	return j
}

// catTree loads the tree arg names: a tree ID, or SNAPSHOT[:PATH], the
// snapshot's size checked first (walker.CheckSize) like every walk.
func catTree(ctx context.Context, g *GlobalOptions, repo *repository.Repository, arg string, f *SnapshotFilter) (any, error) {
	var id blob.ID
	if len(arg) == 64 && !strings.Contains(arg, ":") {
		var err error
		if id, err = parseBlobID(arg); err != nil {
			return nil, err
		}
		if err := repo.LoadIndex(ctx); err != nil {
			return nil, err
		}
	} else {
		sid, p := splitSnapshotPath(arg)
		snap, err := resolveSnapshot(ctx, g, repo, sid, f)
		if err != nil {
			return nil, err
		}
		ctx = repository.ReadFor(ctx, snap.Signer())
		if err := walker.CheckSize(ctx, repo, snap); err != nil {
			return nil, refusedSnapshot(err)
		}
		n, err := walker.FindNode(ctx, repo, snap.File.Statement.Root, p)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", snap.ID.Short(), err)
		}
		if n.Subtree == nil {
			return nil, withHint(fmt.Errorf("/%s in snapshot %s is a %s, not a directory", displayText(strings.Trim(p, "/")), snap.ID.Short(), n.Type),
				"cat the tree of its directory")
		}
		id = *n.Subtree
	}
	t, err := walker.LoadTree(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	nodes := make([]catNodeJSON, 0, len(t.Nodes))
	for i := range t.Nodes {
		nodes = append(nodes, catNode(&t.Nodes[i]))
	}
	return catTreeJSON{MessageType: "cat_tree", ID: id.String(), Nodes: nodes}, nil
}

// catIndex loads every fragment; one that does not verify is reported in
// the output, not fatal (it is what one debugs).
func catIndex(ctx context.Context, g *GlobalOptions, repo *repository.Repository) (any, error) {
	var names []string
	if err := repo.Backend().List(ctx, backend.Index, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, err
	}
	out := []catIndexFragmentJSON{}
	for _, n := range names {
		f, err := repo.LoadIndexFile(ctx, n)
		if err != nil {
			fmt.Fprintf(g.stderr, "cairn: warning: %s\n", displayText(err.Error()))
			out = append(out, catIndexFragmentJSON{Name: n, Error: err.Error(), Packs: []catPackHeadJSON{}})
			continue
		}
		fj := catIndexFragmentJSON{Name: n, Signer: hex.EncodeToString(f.Signer[:]), Packs: []catPackHeadJSON{}}
		for _, p := range f.Packs {
			fj.Packs = append(fj.Packs, catPackHead(repository.ViewPackHeader(p.Pack, p.Parsed)))
		}
		out = append(out, fj)
	}
	return catIndexJSON{MessageType: "cat_index", Fragments: out}, nil
}
