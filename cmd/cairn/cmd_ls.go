package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// LsOptions are ls's flags.
type LsOptions struct {
	Long   bool
	Filter SnapshotFilter
}

func newLsCommand(g *GlobalOptions) *cobra.Command {
	var opts LsOptions
	c := &cobra.Command{
		Use:   "ls SNAPSHOT [PATH]",
		Short: "List the files in a snapshot",
		Long:  `List every path in a snapshot, or below PATH in it. Needs the owner key.`,
		Example: `  cairn ls latest
  cairn ls --long 4f9c2a1e /home/alice`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error { return runLs(c.Context(), g, opts, args) },
	}
	c.Flags().BoolVarP(&opts.Long, "long", "l", false, "show mode, owner, size and time like ls -l")
	addFilterFlags(c, &opts.Filter)
	return c
}

type nodeJSON struct {
	Path       string    `json:"path"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Mode       string    `json:"mode"`
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	User       string    `json:"user,omitempty"`
	Group      string    `json:"group,omitempty"`
	Size       uint64    `json:"size"`
	MTime      time.Time `json:"mtime"`
	LinkTarget string    `json:"link_target,omitempty"`
	HardLinkTo string    `json:"hardlink_to,omitempty"`
}

func runLs(ctx context.Context, g *GlobalOptions, opts LsOptions, args []string) error {
	repo, snap, err := openSnapshotContent(ctx, g, "listing files", args[0], &opts.Filter)
	if err != nil {
		return err
	}
	ctx = repository.ReadFor(ctx, snap.Signer())
	if err := restorer.CheckSize(ctx, repo, snap); err != nil {
		return refusedSnapshot(err)
	}
	sub := ""
	if len(args) == 2 {
		sub = strings.Trim(args[1], "/")
	}
	start, err := restorer.FindNode(ctx, repo, snap.File.Statement.Root, sub)
	if err != nil {
		return withHint(fmt.Errorf("snapshot %s: %w", snap.ID.Short(), err), "list the whole snapshot with `cairn ls %s`", snap.ID.Short())
	}
	var out []nodeJSON
	long := newLongListing(ctx, repo, snap.File.Statement.Root)
	emit := func(p string, n *snapshot.Node) error {
		full := "/" + p
		if g.JSON {
			out = append(out, nodeJSON{Path: full, Name: n.Name, Type: n.Type.String(), Mode: lsMode(n), UID: n.UID, GID: n.GID,
				User: n.User, Group: n.Group, Size: long.size(p, n), MTime: n.MTime, LinkTarget: n.LinkTarget, HardLinkTo: n.HardLinkTo})
			return nil
		}
		if !opts.Long {
			fmt.Fprintln(g.stdout, displayText(full))
			return nil
		}
		long.add(p, full, n)
		return nil
	}
	if start.Type == snapshot.TypeDir && start.Subtree != nil {
		prefix := sub
		err = restorer.Walk(ctx, repo, *start.Subtree, func(p string, n *snapshot.Node) error {
			if prefix != "" {
				p = prefix + "/" + p
			}
			return emit(p, n)
		})
	} else {
		err = emit(sub, start)
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", snap.ID.Short(), err)
	}
	if g.JSON {
		if out == nil {
			out = []nodeJSON{}
		}
		return writeJSON(g.stdout, out)
	}
	return long.flush(g.stdout)
}
