package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/backend/location"
	"github.com/cairnbackup/cairn/internal/fusefs"
)

// MountOptions are mount's flags.
type MountOptions struct {
	AllowOther bool
}

func newMountCommand(g *GlobalOptions) *cobra.Command {
	var opts MountOptions
	c := &cobra.Command{
		Use:   "mount MOUNTPOINT",
		Short: "Serve the repository as a read-only file system (FUSE)",
		Long: `Mount the repository read-only at MOUNTPOINT (an existing directory):

  snapshots/TIME/…        every snapshot by its time (local), latest -> the newest
  hosts/HOST/TIME/…       by host label, each with latest
  tags/TAG/TIME/…         by tag, each with latest
  ids/ID/…                by short snapshot ID

Names, sizes, modes, owners, times, symlinks, devices and xattrs are the
snapshot's; file content is read on demand, each chunk fetched, decrypted and
verified when a read reaches it. The snapshot list is the one at mount time.
A snapshot whose trees expand too far (see ls) shows an empty, unreadable
directory. Owner key only. Runs until SIGINT/SIGTERM (Ctrl-C) or
` + "`fusermount -u MOUNTPOINT`" + `, then unmounts and exits 0.`,
		Example: `  cairn mount /mnt/cairn
  cp /mnt/cairn/snapshots/latest/etc/fstab /tmp/`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error { return runMount(c.Context(), g, opts, args[0]) },
	}
	c.Flags().BoolVar(&opts.AllowOther, "allow-other", false, "let other users read the mount (needs user_allow_other in /etc/fuse.conf)")
	return c
}

func runMount(ctx context.Context, g *GlobalOptions, opts MountOptions, dir string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usageError{fmt.Errorf("mount point %s is not a directory", displayText(dir))}
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := needContent(repo, "mounting a repository"); err != nil {
		return err
	}
	snaps, err := loadSnapshots(ctx, g, repo)
	if err != nil {
		return err
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	warn := func(m string) { fmt.Fprintf(g.stderr, "cairn: warning: %s\n", displayText(m)) }
	fsys := fusefs.New(repo, snaps, warn)
	ttl := time.Minute // nothing below the mount ever changes
	server, err := fs.Mount(dir, fsys.Root(), &fs.Options{
		MountOptions: fuse.MountOptions{FsName: "cairn:" + location.Redact(g.Repo), Name: "cairn", AllowOther: opts.AllowOther,
			// nosuid, nodev: a writer's setuid file or device node in a
			// snapshot is shown, never honoured (docs/threat-model.md R18).
			Options: []string{"ro", "nosuid", "nodev"}, Debug: g.Debug, MaxReadAhead: 1 << 20},
		EntryTimeout: &ttl, AttrTimeout: &ttl, NegativeTimeout: &ttl,
	})
	if err != nil {
		return withHint(fmt.Errorf("mount %s: %w", displayText(dir), err), "check that /dev/fuse and fusermount are available and the directory is not mounted already")
	}
	if g.JSON {
		n := len(snaps)
		writeJSON(g.stdout, mountJSON{MessageType: "mounted", Mountpoint: dir, Snapshots: &n})
	} else {
		g.printf("repository mounted at %s (%d snapshots); Ctrl-C or `fusermount -u %s` unmounts\n", displayText(dir), len(snaps), displayText(dir))
	}
	done := make(chan struct{})
	go func() {
		server.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil // unmounted from outside
	case <-ctx.Done():
	}
	if err := server.Unmount(); err != nil {
		return withHint(fmt.Errorf("unmount %s: %w", displayText(dir), err), "the mount is gone with this process; close what uses it, then `fusermount -u -z %s`", displayText(dir))
	}
	<-done
	if g.JSON {
		return writeJSON(g.stdout, mountJSON{MessageType: "unmounted", Mountpoint: dir})
	}
	g.printf("unmounted %s\n", displayText(dir))
	return nil
}
