package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/repository"
)

// SnapshotFilter narrows snapshots (and what "latest" means): every
// command that picks snapshots takes its flags through addFilterFlags.
type SnapshotFilter = client.Filter

func addFilterFlags(c *cobra.Command, f *SnapshotFilter) {
	c.Flags().StringArrayVar(&f.Hosts, "host", nil, "only snapshots with the `HOST` label (repeatable: any of them)")
	c.Flags().StringArrayVar(&f.Tags, "tag", nil, "only snapshots with all of `TAG[,TAG...]` (repeatable: any of the lists)")
	c.Flags().StringArrayVar(&f.Paths, "path", nil, "only snapshots of `PATH` (owner key; repeatable: all of them)")
}

// loadSnapshots is client.LoadSnapshots, printing its warnings.
func loadSnapshots(ctx context.Context, g *GlobalOptions, repo *repository.Repository) ([]*repository.Snapshot, error) {
	return client.LoadSnapshots(ctx, repo, func(m string) { g.warnf("%s", m) })
}

// openSnapshotContent opens the repository for a command that reads
// snapshot content (ls, dump, restore): it needs the owner key (exit 11
// otherwise) and resolves arg ("latest", an ID or a prefix) to one snapshot.
func openSnapshotContent(ctx context.Context, g *GlobalOptions, verb, arg string, f *SnapshotFilter) (*repository.Repository, *repository.Snapshot, error) {
	repo, err := g.openRepo(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := client.NeedContent(repo, verb); err != nil {
		return nil, nil, err
	}
	snap, err := resolveSnapshot(ctx, g, repo, arg, f)
	if err != nil {
		return nil, nil, err
	}
	return repo, snap, nil
}

// resolveSnapshot loads the snapshot list and resolves arg (client.Find).
func resolveSnapshot(ctx context.Context, g *GlobalOptions, repo *repository.Repository, arg string, f *SnapshotFilter) (*repository.Snapshot, error) {
	snaps, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return nil, err
	}
	return client.Find(snaps, arg, f)
}

// splitSnapshotPath splits "SNAPSHOT:PATH".
func splitSnapshotPath(arg string) (string, string) {
	id, path, _ := strings.Cut(arg, ":")
	return id, path
}
