package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/walker"
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
		Long: `List every path in a snapshot, or below PATH in it. Needs the owner key.

A directory whose tree is lost (its pack was damaged and dropped by
` + "`cairn repair`" + `) and a file whose content is not all in the index are
warnings: everything else is still listed, and the exit code is 3.`,
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
	// Lost says what of the node is gone: a directory's tree (and so
	// everything below it), or some of a file's content.
	Lost string `json:"lost,omitempty"`
}

func runLs(ctx context.Context, g *GlobalOptions, opts LsOptions, args []string) error {
	repo, snap, err := openSnapshotContent(ctx, g, "listing files", args[0], &opts.Filter)
	if err != nil {
		return err
	}
	ctx = repository.ReadFor(ctx, snap.Signer())
	if err := walker.CheckSize(ctx, repo, snap); err != nil {
		return refusedSnapshot(err)
	}
	sub := ""
	if len(args) == 2 {
		sub = strings.Trim(args[1], "/")
	}
	start, err := walker.FindNode(ctx, repo, snap.File.Statement.Root, sub)
	if err != nil {
		return withHint(fmt.Errorf("snapshot %s: %w", snap.ID.Short(), err), "list the whole snapshot with `cairn ls %s`", snap.ID.Short())
	}
	var out []nodeJSON
	lost := 0
	warnLost := func(full string, err error) {
		lost++
		g.warnf("%s: %s", displayText(full), displayText(err.Error()))
	}
	long := newLongListing(ctx, repo, snap.File.Statement.Root)
	emit := func(p string, n *snapshot.Node) error {
		full := "/" + p
		var lostContent error
		if m := walker.MissingContent(ctx, repo, n); m > 0 {
			lostContent = walker.LostContent(n, m)
			warnLost(full, lostContent)
		}
		if g.JSON {
			nj := nodeJSON{Path: full, Name: n.Name, Type: n.Type.String(), Mode: lsMode(n), UID: n.UID, GID: n.GID,
				User: n.User, Group: n.Group, Size: long.size(p, n), MTime: n.MTime, LinkTarget: n.LinkTarget, HardLinkTo: n.HardLinkTo}
			if lostContent != nil {
				nj.Lost = lostContent.Error()
			}
			out = append(out, nj)
			return nil
		}
		if !opts.Long {
			fmt.Fprintln(g.stdout, displayText(full))
			return nil
		}
		long.add(p, full, n)
		return nil
	}
	join := func(p string) string {
		switch {
		case sub == "":
			return p
		case p == "":
			return sub
		}
		return sub + "/" + p
	}
	if start.Type == snapshot.TypeDir && start.Subtree != nil {
		err = walker.WalkLost(ctx, repo, *start.Subtree, func(p string, n *snapshot.Node) error {
			return emit(join(p), n)
		}, func(p string, _ blob.ID, err error) error {
			full := "/" + join(p)
			err = walker.LostDir(err)
			warnLost(full, err)
			// The walk visited the directory's node just before.
			if k := len(out) - 1; k >= 0 && out[k].Path == full {
				out[k].Lost = err.Error()
			}
			return nil
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
		err = writeJSON(g.stdout, lsMessages(out))
	} else {
		err = long.flush(g.stdout)
	}
	if err == nil && lost > 0 {
		err = lostError{fmt.Errorf("snapshot %s: %d paths lost (warnings above); everything else was listed", snap.ID.Short(), lost)}
	}
	return err
}

// lostError ends a walk that went on past lost directories or content,
// each reported as a warning: the output is complete but for them (exit
// 3).
type lostError struct{ err error }

func (e lostError) Error() string        { return e.err.Error() }
func (e lostError) Unwrap() error        { return e.err }
func (e lostError) Is(target error) bool { return target == errPartial }
