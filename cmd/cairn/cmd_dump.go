package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/walker"
)

// DumpOptions are dump's flags.
type DumpOptions struct {
	Filter SnapshotFilter
}

func newDumpCommand(g *GlobalOptions) *cobra.Command {
	var opts DumpOptions
	c := &cobra.Command{
		Use:   "dump SNAPSHOT PATH",
		Short: "Write one file's content from a snapshot to standard output",
		Example: `  cairn dump latest /etc/fstab
  cairn dump 4f9c2a1e /db.sql | psql mydb`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error { return runDump(c.Context(), g, opts, args) },
	}
	addFilterFlags(c, &opts.Filter)
	return c
}

func runDump(ctx context.Context, g *GlobalOptions, opts DumpOptions, args []string) error {
	repo, snap, err := openSnapshotContent(ctx, g, "dumping files", args[0], &opts.Filter)
	if err != nil {
		return err
	}
	ctx = repository.ReadFor(ctx, snap.Signer())
	p := strings.Trim(args[1], "/")
	if p == "" {
		return withHint(errors.New("/ is a directory; dump writes one file"), "use `cairn restore` for directories")
	}
	n, err := walker.FindNode(ctx, repo, snap.File.Statement.Root, p)
	if err != nil {
		return withHint(fmt.Errorf("snapshot %s: %w", snap.ID.Short(), err), "list it with `cairn ls %s`", snap.ID.Short())
	}
	if n.HardLinkTo != "" {
		if n, err = walker.FindNode(ctx, repo, snap.File.Statement.Root, n.HardLinkTo); err != nil {
			return fmt.Errorf("snapshot %s: hard link target: %w", snap.ID.Short(), err)
		}
	}
	if n.Type != snapshot.TypeFile {
		return withHint(fmt.Errorf("/%s in snapshot %s is a %s, not a file", displayText(p), snap.ID.Short(), n.Type),
			"dump writes one file's content; use `cairn restore %s:/%s --target DIR` for a directory", snap.ID.Short(), displayText(p))
	}
	w := bufio.NewWriterSize(g.stdout, 1<<20)
	if err := restorer.Dump(ctx, repo, n, w); err != nil {
		return fmt.Errorf("dump /%s from snapshot %s: %w", displayText(p), snap.ID.Short(), err)
	}
	return w.Flush()
}
