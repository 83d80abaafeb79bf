package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
)

// BackupOptions are backup's flags.
type BackupOptions struct {
	Tags          []string
	Host          string
	Time          string
	Excludes      []string
	ExcludeFiles  []string
	OneFileSystem bool
	StdinCommand  bool
	StdinFilename string
	// command is what follows "--" with --stdin-from-command.
	command []string
}

func newBackupCommand(g *GlobalOptions) *cobra.Command {
	var opts BackupOptions
	c := &cobra.Command{
		Use:   "backup PATH... | backup --stdin-from-command [PATH...] -- CMD ARGS...",
		Short: "Make a snapshot of files and directories",
		Long: `Make a snapshot of PATHs. Unchanged files are not read again. With
--stdin-from-command the standard output of a command is stored as one file
(--stdin-filename) at the snapshot root; if the command fails, no snapshot is made.`,
		Example: `  cairn backup /home /etc --tag daily --exclude '*.tmp'
  cairn backup --stdin-from-command --stdin-filename db.sql -- pg_dump mydb
  cairn backup --key-file web1.key /srv/www`,
		RunE: func(c *cobra.Command, args []string) error {
			paths := args
			if dash := c.ArgsLenAtDash(); dash >= 0 {
				paths, opts.command = args[:dash], args[dash:]
			}
			if opts.StdinCommand && len(opts.command) == 0 {
				return usageError{errors.New("--stdin-from-command needs the command after --, e.g. -- pg_dump mydb")}
			}
			if !opts.StdinCommand && len(opts.command) > 0 {
				paths = args
			}
			if !opts.StdinCommand && len(paths) == 0 {
				return usageError{errors.New("nothing to back up: give at least one PATH")}
			}
			return runBackup(c.Context(), g, opts, paths)
		},
	}
	f := c.Flags()
	f.StringArrayVar(&opts.Tags, "tag", nil, "add a tag to the snapshot (repeatable)")
	f.StringVar(&opts.Host, "host", "", "host label to record (default the hostname)")
	f.StringVar(&opts.Time, "time", "", `time to record, "YYYY-MM-DD HH:MM:SS" local time (default now)`)
	f.StringArrayVarP(&opts.Excludes, "exclude", "e", nil, "exclude paths matching this pattern (repeatable)")
	f.StringArrayVar(&opts.ExcludeFiles, "exclude-file", nil, "read exclude patterns from this file, one a line (repeatable)")
	f.BoolVarP(&opts.OneFileSystem, "one-file-system", "x", false, "do not cross file system boundaries")
	f.BoolVar(&opts.StdinCommand, "stdin-from-command", false, "store the standard output of the command after --")
	f.StringVar(&opts.StdinFilename, "stdin-filename", "stdin", "file name for --stdin-from-command's output")
	return c
}

func readExcludeFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, withHint(fmt.Errorf("read exclude file: %w", err), "check --exclude-file")
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

func runBackup(ctx context.Context, g *GlobalOptions, opts BackupOptions, paths []string) error {
	aopts := archiver.Options{
		Excludes: append([]string(nil), opts.Excludes...), OneFileSystem: opts.OneFileSystem,
		Tags: opts.Tags, Host: opts.Host, Log: g.logger(), Program: "cairn",
	}
	for _, f := range opts.ExcludeFiles {
		ex, err := readExcludeFile(f)
		if err != nil {
			return err
		}
		aopts.Excludes = append(aopts.Excludes, ex...)
	}
	if opts.Time != "" {
		t, err := time.ParseInLocation("2006-01-02 15:04:05", opts.Time, time.Local)
		if err != nil {
			return usageError{fmt.Errorf(`--time %q: want "YYYY-MM-DD HH:MM:SS"`, opts.Time)}
		}
		aopts.Time = t
	}
	if opts.StdinCommand {
		if opts.StdinFilename == "" || strings.Contains(opts.StdinFilename, "/") {
			return usageError{fmt.Errorf("--stdin-filename %q: want a plain file name", opts.StdinFilename)}
		}
		aopts.StdinCommand = opts.command
		aopts.StdinFilename = opts.StdinFilename
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if err := checkEnrolled(repo); err != nil {
		return err
	}
	prog := newBackupProgress(g)
	aopts.Progress = prog.update
	res, err := archiver.Backup(ctx, repo, paths, aopts)
	prog.finish()
	if err != nil {
		if opts.StdinCommand && ctx.Err() == nil {
			return withHint(err, "check the command given after --")
		}
		return fmt.Errorf("backup failed, no snapshot saved: %w", err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(g.stderr, "cairn: warning: %s\n", displayText(w))
	}
	for _, s := range res.Skipped {
		if g.Verbose {
			fmt.Fprintf(g.stderr, "cairn: skipped %s\n", displayText(s))
		}
	}
	printBackupSummary(g, res)
	if res.Partial() {
		return withHint(fmt.Errorf("snapshot %s saved, but %d files or paths could not be read: %w", res.Snapshot.ID.Short(), res.Summary.Errors, errPartial), "see the warnings above")
	}
	return nil
}

func printBackupSummary(g *GlobalOptions, res *archiver.Result) {
	s := res.Summary
	if g.JSON {
		writeJSON(g.stdout, map[string]any{
			"message_type": "summary", "files_new": s.FilesNew, "files_changed": s.FilesChanged, "files_unmodified": s.FilesUnchanged,
			"dirs_new": s.DirsNew, "dirs_changed": s.DirsChanged, "dirs_unmodified": s.DirsUnchanged,
			"blobs_new": s.BlobsNew, "bytes_added": s.BytesAdded, "bytes_read": s.BytesRead, "total_bytes_processed": s.BytesTotal,
			"errors": s.Errors, "total_duration": res.Took.Seconds(),
			"snapshot_id": res.Snapshot.ID.String(), "short_id": res.Snapshot.ID.Short(), "tree": res.Snapshot.File.Statement.Root.String(),
		})
		return
	}
	if g.Quiet {
		return
	}
	w := g.stdout
	fmt.Fprintf(w, "Files:  %6d new, %d changed, %d unmodified\n", s.FilesNew, s.FilesChanged, s.FilesUnchanged)
	fmt.Fprintf(w, "Dirs:   %6d new, %d changed, %d unmodified\n", s.DirsNew, s.DirsChanged, s.DirsUnchanged)
	ratio := ""
	if s.BytesAdded > 0 && s.BytesRead > 0 {
		ratio = fmt.Sprintf(", %.1fx smaller", float64(s.BytesRead)/float64(s.BytesAdded))
	}
	fmt.Fprintf(w, "Added:  %s stored (%s read%s)\n", formatBytes(s.BytesAdded), formatBytes(s.BytesRead), ratio)
	rate := ""
	if secs := res.Took.Seconds(); secs > 0 {
		rate = fmt.Sprintf(" (%s/s)", formatBytes(uint64(float64(s.BytesTotal)/secs)))
	}
	fmt.Fprintf(w, "Took:   %s%s\n", formatDuration(res.Took), rate)
	fmt.Fprintf(w, "Snapshot %s saved\n", res.Snapshot.ID.Short())
}

// backupProgress draws one rewriting status line on a terminal, or prints
// JSON status lines with --json; nothing otherwise.
type backupProgress struct {
	g        *GlobalOptions
	terminal bool
	mu       sync.Mutex
	last     time.Time
	drawn    bool
}

func newBackupProgress(g *GlobalOptions) *backupProgress {
	return &backupProgress{g: g, terminal: !g.Quiet && !g.JSON && g.stderrIsTerminal()}
}

func (p *backupProgress) update(pr archiver.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.g.JSON:
		if time.Since(p.last) < time.Second {
			return
		}
		p.last = time.Now()
		writeJSON(p.g.stdout, map[string]any{
			"message_type": "status", "seconds_elapsed": int(pr.Elapsed.Seconds()), "files_done": pr.Files, "dirs_done": pr.Dirs,
			"bytes_done": pr.BytesDone, "total_bytes": pr.BytesTotal, "error_count": pr.ErrorsCounted, "current_files": []string{pr.CurrentFile},
		})
	case p.terminal:
		rate := ""
		if s := pr.Elapsed.Seconds(); s > 0 {
			rate = fmt.Sprintf(" %s/s", formatBytes(uint64(float64(pr.BytesDone)/s)))
		}
		line := fmt.Sprintf("[%s] %d files, %s of %s%s %s", formatDuration(pr.Elapsed), pr.Files,
			formatBytes(pr.BytesDone), formatBytes(pr.BytesTotal), rate, displayText(pr.CurrentFile))
		if len(line) > 120 {
			line = line[:117] + "..."
		}
		fmt.Fprintf(p.g.stderr, "\r\033[K%s", line)
		p.drawn = true
	}
}

func (p *backupProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.g.stderr, "\r\033[K")
	}
}

// checkEnrolled refuses a backup by a writer key that is not in the
// current roster (revoked, or never enrolled): its snapshot would be
// refused by the server and by every reader anyway.
func checkEnrolled(repo *repository.Repository) error {
	k := repo.Keys()
	if k.Role != crypto.RoleWriter {
		return nil
	}
	for _, w := range repo.Roster().Writers {
		if bytes.Equal(w.ID, k.SignerID()) {
			return nil
		}
	}
	return withHint(fmt.Errorf("this writer key (%x) is not in the repository's roster: it was revoked or never enrolled", k.SignerID()[:4]),
		"ask the owner for a new writer key (`cairn key add --role writer --export FILE`)")
}
