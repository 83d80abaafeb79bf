package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/restorer"
	"github.com/cairnbackup/cairn/internal/ticker"
	"github.com/cairnbackup/cairn/internal/walker"
)

// RestoreOptions are restore's flags.
type RestoreOptions struct {
	Target  string
	Include []string
	Exclude []string
	Verify  bool
	// Overwrite is what to do with existing objects: always,
	// if-changed, if-newer or never (restorer.ParseOverwrite).
	Overwrite string
	NoFsync   bool
	Filter    SnapshotFilter

	Privileges restorer.Privileges
}

func newRestoreCommand(g *GlobalOptions) *cobra.Command {
	var opts RestoreOptions
	c := &cobra.Command{
		Use:   "restore SNAPSHOT[:PATH] --target DIR",
		Short: "Restore a snapshot, or a path in it, into a directory",
		Long: `Restore a snapshot (or the PATH inside it) below DIR. Paths in a snapshot are
absolute: backing up /srv/data and restoring it to /tmp/r gives /tmp/r/srv/data.
SNAPSHOT is an ID, a unique prefix of one, or "latest". Needs the owner key.

A snapshot signed by a writer is that machine's word: restoring it as root
recreates its setuid files, devices, capabilities and owners unless
--no-setid, --no-special-files, --no-xattrs and --no-owner refuse them (cairn
warns when they are missing). Anything that could not be set (an xattr, an
ACL, an owner, a mode) is a warning and makes the exit code 3.

Restoring over existing files is safe and resumable: each file is written
under a hidden temporary name and renamed into place when complete, so an
interrupted restore leaves no partial file under a real name, and running it
again finishes the job. --overwrite says what happens to what is already
there: if-changed (default) rewrites files whose size or content differs and
keeps identical ones, always rewrites, if-newer rewrites what is older than
the snapshot, never keeps everything. A directory is never replaced by a file,
and nothing is written through a symlink.`,
		Example: `  cairn restore latest --target /tmp/restore
  cairn restore 4f9c2a1e:/home/alice --target /tmp/alice --include '*.pdf' --verify
  cairn restore latest --host laptop --target /srv/r --no-setid --no-special-files
  cairn restore latest --target / --overwrite if-changed --verify`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error { return runRestore(c.Context(), g, opts, args) },
	}
	f := c.Flags()
	f.StringVarP(&opts.Target, "target", "t", "", "directory to restore into (required)")
	f.StringArrayVarP(&opts.Include, "include", "i", nil, "restore only paths matching this pattern (repeatable)")
	f.StringArrayVarP(&opts.Exclude, "exclude", "e", nil, "do not restore paths matching this pattern (repeatable)")
	f.BoolVar(&opts.Verify, "verify", false, "re-read restored and kept files and check them against the content identities sealed at backup")
	f.StringVar(&opts.Overwrite, "overwrite", "if-changed", "existing files: always, if-changed (size or content differs), if-newer (older than the snapshot) or never")
	f.BoolVar(&opts.NoFsync, "no-fsync", false, "do not flush the restored files to disk at the end (faster; after a crash or power loss a restored file may be empty or short)")
	addPrivilegeFlags(c, &opts.Privileges)
	addFilterFlags(c, &opts.Filter)
	return c
}

func runRestore(ctx context.Context, g *GlobalOptions, opts RestoreOptions, args []string) error {
	if opts.Target == "" {
		return usageError{errors.New("restore needs --target DIR")}
	}
	overwrite, err := restorer.ParseOverwrite(opts.Overwrite)
	if err != nil {
		return usageError{err}
	}
	id, sub := splitSnapshotPath(args[0])
	repo, snap, err := openSnapshotContent(ctx, g, "restoring", id, &opts.Filter)
	if err != nil {
		return err
	}
	warnWriterSnapshot(g, repo, snap, opts.Privileges)
	start := time.Now()
	prog := newProgress(g, "restore", "files")
	var report func(restorer.Progress)
	if prog.terminal || prog.json {
		report = func(p restorer.Progress) {
			prog.update(ticker.Counts{Items: p.Files, TotalItems: p.TotalFiles, Bytes: p.Bytes, TotalBytes: p.TotalBytes, Elapsed: p.Elapsed, Final: p.Final})
		}
	}
	res, err := restorer.Restore(ctx, repo, snap, strings.Trim(sub, "/"), restorer.Options{
		Target: opts.Target, Include: opts.Include, Exclude: opts.Exclude, Verify: opts.Verify, Overwrite: overwrite,
		Log: g.logger(), Privileges: opts.Privileges, Progress: report, NoFsync: opts.NoFsync,
	})
	prog.finish()
	if errors.Is(err, walker.ErrNotFound) {
		return withHint(fmt.Errorf("snapshot %s: %w", snap.ID.Short(), err), "list it with `cairn ls %s`", snap.ID.Short())
	}
	if errors.Is(err, walker.ErrTooLarge) {
		return refusedSnapshot(err)
	}
	if errors.Is(err, restorer.ErrTargetBusy) {
		return withHint(fmt.Errorf("restore refused: %w", err), "wait for it to end, or restore into another --target")
	}
	if err != nil {
		return fmt.Errorf("restore snapshot %s: %w", snap.ID.Short(), err)
	}
	for _, w := range res.Warnings {
		g.warnf("%s", displayText(w))
	}
	if !g.Quiet {
		for _, s := range res.Skipped {
			fmt.Fprintf(g.stderr, "cairn: note: %s\n", displayText(s))
		}
		if res.TempsRemoved > 0 {
			fmt.Fprintf(g.stderr, "cairn: note: removed %d temporary files an interrupted restore left in %s\n", res.TempsRemoved, displayText(opts.Target))
		}
	}
	if g.JSON {
		writeJSON(g.stdout, restoreSummaryJSON{MessageType: "summary", SnapshotID: snap.ID.String(), FilesRestored: res.Files,
			DirsRestored: res.Dirs, BytesRestored: res.Bytes, FilesVerified: res.Verified,
			Unchanged: res.Unchanged, BytesUnchanged: res.UnchangedBytes, Kept: res.Kept,
			TemporaryFilesRemoved: res.TempsRemoved, Errors: len(res.Warnings), TotalDuration: time.Since(start).Seconds()})
	} else {
		var extra strings.Builder
		if res.Unchanged > 0 {
			fmt.Fprintf(&extra, ", %d unchanged (%s)", res.Unchanged, formatBytes(res.UnchangedBytes))
		}
		if res.Kept > 0 {
			fmt.Fprintf(&extra, ", %d existing kept (--overwrite %s)", res.Kept, overwrite)
		}
		if opts.Verify {
			fmt.Fprintf(&extra, ", %d verified", res.Verified)
		}
		g.printf("restored snapshot %s to %s: %d files, %d dirs, %s%s\n", snap.ID.Short(), displayText(opts.Target), res.Files, res.Dirs, formatBytes(res.Bytes), extra.String())
	}
	if len(res.Warnings) > 0 {
		return withHint(fmt.Errorf("%d paths could not be restored in full: %w", len(res.Warnings), errPartial), "see the warnings above")
	}
	return nil
}
