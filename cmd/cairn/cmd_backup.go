package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cairnbackup/cairn/internal/archiver"
	"github.com/cairnbackup/cairn/internal/atomicfile"
	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/fsmeta"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// BackupOptions are backup's flags.
type BackupOptions struct {
	Tags              []string
	Host              string
	Time              string
	Excludes          []string
	ExcludeFiles      []string
	IExcludes         []string
	IExcludeFiles     []string
	ExcludeCaches     bool
	ExcludeIfPresent  []string
	ExcludeLargerThan string
	FilesFrom         []string
	FilesFromVerbatim []string
	FilesFromRaw      []string
	OneFileSystem     bool
	Stdin             bool
	StdinCommand      bool
	StdinFilename     string
	DryRun            bool
	Parent            string
	Compression       string
	SummaryFile       string
	// CommitGate is the descriptor of the commit gate (backup_gate.go),
	// when gated is set.
	CommitGate int
	gated      bool
	// KeyFD is the descriptor of a key handed over (backup_keyfd.go),
	// when handed is set.
	KeyFD  int
	handed bool
	// Session is a server backup session the caller holds (--session).
	Session string
	// command is what follows "--" with --stdin-from-command.
	command []string
}

func newBackupCommand(g *GlobalOptions) *cobra.Command {
	var opts BackupOptions
	c := &cobra.Command{
		Use:   "backup PATH... | backup --stdin-from-command [PATH...] -- CMD ARGS...",
		Short: "Make a snapshot of files and directories",
		Long: `Make a snapshot of PATHs, and of the paths listed in --files-from files.
Unchanged files are not read again: those of the last backup of the same
paths from this host, or of --parent. With --stdin the standard input, and
with --stdin-from-command the standard output of a command, is stored as one
file (--stdin-filename) at the snapshot root; if the command fails, no
snapshot is made.

-v lists every new and changed file and directory, -vv also the unmodified
ones. --dry-run (-n) reads and chunks as a backup does but stores nothing.
Sizes (--exclude-larger-than) are powers of 1024: 1G, 1GB and 1GiB are the same.`,
		Example: `  cairn backup /home /etc --tag daily --exclude '*.tmp' --exclude-caches
  cairn backup --files-from /etc/cairn/paths --exclude-larger-than 2G -v
  find /srv -newer /var/run/last -print0 | cairn backup --files-from-raw -
  pg_dump mydb | cairn backup --stdin --stdin-filename db.sql
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
			opts.gated = c.Flags().Changed("commit-gate")
			opts.handed = c.Flags().Changed("key-fd")
			return runBackup(c.Context(), g, opts, paths)
		},
	}
	f := c.Flags()
	f.StringArrayVar(&opts.Tags, "tag", nil, "add `TAG` to the snapshot (repeatable)")
	f.StringVar(&opts.Host, "host", "", "`HOST` label to record (default the hostname)")
	f.StringVar(&opts.Time, "time", "", "`TIME` to record, \"YYYY-MM-DD HH:MM:SS\" local time (default now)")
	f.StringArrayVarP(&opts.Excludes, "exclude", "e", nil, "exclude paths matching `PATTERN` (repeatable)")
	f.StringArrayVar(&opts.ExcludeFiles, "exclude-file", nil, "read exclude patterns from `FILE`, one a line (repeatable)")
	f.StringArrayVar(&opts.IExcludes, "iexclude", nil, "like --exclude `PATTERN`, ignoring case (repeatable)")
	f.StringArrayVar(&opts.IExcludeFiles, "iexclude-file", nil, "like --exclude-file `FILE`, ignoring case (repeatable)")
	f.BoolVar(&opts.ExcludeCaches, "exclude-caches", false, "leave out directories holding a CACHEDIR.TAG file (bford.info/cachedir)")
	f.StringArrayVar(&opts.ExcludeIfPresent, "exclude-if-present", nil, "leave out directories holding a file NAME, or one that starts with HEADER: `NAME[:HEADER]` (repeatable)")
	f.StringVar(&opts.ExcludeLargerThan, "exclude-larger-than", "", "leave out files larger than `SIZE`, e.g. 2G (powers of 1024)")
	f.StringArrayVar(&opts.FilesFrom, "files-from", nil, "back up the paths in `FILE`, one a line; globs are expanded, # starts a comment, - is standard input (repeatable)")
	f.StringArrayVar(&opts.FilesFromVerbatim, "files-from-verbatim", nil, "back up the paths in `FILE`, one a line, taken as they are (repeatable)")
	f.StringArrayVar(&opts.FilesFromRaw, "files-from-raw", nil, "back up the paths in `FILE`, each ended by a NUL byte (find -print0; repeatable)")
	f.BoolVarP(&opts.OneFileSystem, "one-file-system", "x", false, "do not cross file system boundaries")
	f.BoolVar(&opts.Stdin, "stdin", false, "store the standard input (a pipe) as the file --stdin-filename")
	f.BoolVar(&opts.StdinCommand, "stdin-from-command", false, "store the standard output of the command after --")
	f.StringVar(&opts.StdinFilename, "stdin-filename", "stdin", "`NAME` of the file for --stdin's or --stdin-from-command's data")
	f.BoolVarP(&opts.DryRun, "dry-run", "n", false, "read and chunk as a backup does, but store nothing and make no snapshot")
	f.StringVar(&opts.Parent, "parent", "", "compare with `SNAPSHOT` (an ID or latest) instead of the last backup of the same paths (owner key)")
	f.StringVar(&opts.Compression, "compression", "auto", "how hard to compress new data: `LEVEL` auto, fastest, default (auto's level), max or off")
	f.StringVar(&opts.SummaryFile, "summary-file", "", "also write the summary to `FILE` as --json's summary object, whatever the output (for scripts and the agent)")
	f.StringVar(&opts.Session, "session", "", "use the server backup session `ID` the caller opened and keeps (the agent holding its queue slot): heartbeat it, do not open, queue for or end one")
	f.IntVar(&opts.KeyFD, "key-fd", 0, "unlock with the key file's key read from descriptor `FD` (a pipe), not a password: how the agent runs its backups")
	f.IntVar(&opts.CommitGate, "commit-gate", 0, "before committing, ask on descriptor `FD` (a socket) and commit only on the answer commit (for a parent that checks consistency, e.g. the agent)")
	return c
}

func readExcludeFile(flag, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, withHint(fmt.Errorf("read exclude file: %w", err), "check --%s", flag)
	}
	defer f.Close()
	return fsmeta.ReadPatterns(f)
}

// checkFutureTime refuses a --time in the future for the owner, whose
// claimed time is its snapshot's policy time: the snapshot would stay
// "latest" and be kept by every --keep rule until that day came. A
// writer's claim never counts beyond when storage received the snapshot
// (R14), so for a writer it is only a warning.
func checkFutureTime(g *GlobalOptions, repo *repository.Repository, t time.Time, given string) error {
	if t.IsZero() || !t.After(time.Now().Add(time.Minute)) {
		return nil
	}
	if repo.Keys().Role == crypto.RoleOwner {
		return usageError{fmt.Errorf("--time %q is in the future; the owner's snapshot would stay `latest` and be kept by every --keep rule until then", given)}
	}
	g.warnf("--time %q is in the future; a writer's snapshot is ordered by when storage received it, not by this time", given)
	return nil
}

// backupArchiverOptions turns backup's flags into archiver options and
// the full list of paths (PATHs and --files-from lists).
func backupArchiverOptions(g *GlobalOptions, opts BackupOptions, paths []string) (archiver.Options, []string, error) {
	aopts := archiver.Options{
		Excludes: append([]string(nil), opts.Excludes...), IExcludes: append([]string(nil), opts.IExcludes...),
		ExcludeIfPresent: opts.ExcludeIfPresent, OneFileSystem: opts.OneFileSystem,
		Tags: opts.Tags, Host: opts.Host, Log: g.logger(), Program: "cairn", DryRun: opts.DryRun,
	}
	c, err := crypto.ParseCompression(opts.Compression)
	if err != nil {
		return aopts, nil, usageError{fmt.Errorf("--compression: %w", err)}
	}
	aopts.Compression = c
	for _, f := range opts.ExcludeFiles {
		ex, err := readExcludeFile("exclude-file", f)
		if err != nil {
			return aopts, nil, err
		}
		aopts.Excludes = append(aopts.Excludes, ex...)
	}
	for _, f := range opts.IExcludeFiles {
		ex, err := readExcludeFile("iexclude-file", f)
		if err != nil {
			return aopts, nil, err
		}
		aopts.IExcludes = append(aopts.IExcludes, ex...)
	}
	if opts.ExcludeCaches {
		aopts.ExcludeIfPresent = append(slices.Clone(aopts.ExcludeIfPresent), archiver.CacheDirTag)
	}
	if opts.ExcludeLargerThan != "" {
		n, err := parseSizeFlag("exclude-larger-than", opts.ExcludeLargerThan)
		if err != nil {
			return aopts, nil, err
		}
		if n == 0 {
			return aopts, nil, usageError{fmt.Errorf("--exclude-larger-than %q: give a size above zero, such as 2G", opts.ExcludeLargerThan)}
		}
		aopts.ExcludeLargerThan = n
	}
	if opts.Time != "" {
		t, err := time.ParseInLocation("2006-01-02 15:04:05", opts.Time, time.Local)
		if err != nil {
			return aopts, nil, usageError{fmt.Errorf(`--time %q: want "YYYY-MM-DD HH:MM:SS"`, opts.Time)}
		}
		aopts.Time = t
	}
	if opts.Stdin && opts.StdinCommand {
		return aopts, nil, usageError{errors.New("--stdin and --stdin-from-command both given; pass one")}
	}
	if opts.Stdin || opts.StdinCommand {
		if opts.StdinFilename == "" || strings.Contains(opts.StdinFilename, "/") || opts.StdinFilename == "." || opts.StdinFilename == ".." {
			return aopts, nil, usageError{fmt.Errorf("--stdin-filename %q: want a plain file name", opts.StdinFilename)}
		}
		aopts.StdinFilename = opts.StdinFilename
		aopts.StdinCommand = opts.command
	}
	listsStdin := 0
	for _, l := range [][]string{opts.FilesFrom, opts.FilesFromVerbatim, opts.FilesFromRaw} {
		listsStdin += slices.Index(l, "-") + 1
	}
	if opts.Stdin {
		if len(paths) > 0 || len(opts.FilesFrom)+len(opts.FilesFromVerbatim)+len(opts.FilesFromRaw) > 0 {
			return aopts, nil, usageError{errors.New("--stdin stores the standard input alone: give no PATH and no --files-from")}
		}
		if f, ok := g.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return aopts, nil, usageError{errors.New("--stdin: the standard input is a terminal; pipe the data in, e.g. pg_dump mydb | cairn backup --stdin --stdin-filename db.sql")}
		}
		aopts.Stdin = g.stdin
		return aopts, nil, nil
	}
	paths = slices.Clone(paths)
	for _, src := range []struct {
		flag   string
		files  []string
		format archiver.ListFormat
	}{{"files-from", opts.FilesFrom, archiver.ListGlobs}, {"files-from-verbatim", opts.FilesFromVerbatim, archiver.ListVerbatim}, {"files-from-raw", opts.FilesFromRaw, archiver.ListRaw}} {
		for _, name := range src.files {
			listed, unmatched, err := readPathList(g, src.flag, name, src.format)
			if err != nil {
				return aopts, nil, err
			}
			for _, u := range unmatched {
				g.warnf("--%s %s: pattern %s matches no file", src.flag, displayText(name), displayText(u))
			}
			paths = append(paths, listed...)
		}
	}
	if len(paths) == 0 && !opts.StdinCommand {
		if len(opts.FilesFrom)+len(opts.FilesFromVerbatim)+len(opts.FilesFromRaw) > 0 {
			return aopts, nil, usageError{errors.New("nothing to back up: the --files-from lists name no path")}
		}
		return aopts, nil, usageError{errors.New("nothing to back up: give at least one PATH, --files-from, or --stdin")}
	}
	return aopts, paths, nil
}

// readPathList reads a --files-from list; "-" is the standard input.
func readPathList(g *GlobalOptions, flag, name string, format archiver.ListFormat) ([]string, []string, error) {
	r := g.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, withHint(fmt.Errorf("read --%s list: %w", flag, err), "check the file name")
		}
		defer f.Close()
		r = f
	}
	paths, unmatched, err := archiver.ReadPathList(r, format)
	if err != nil {
		return nil, nil, fmt.Errorf("read --%s %s: %w", flag, name, err)
	}
	return paths, unmatched, nil
}

// itemPrinter lists files and directories as the backup decides their
// status: -v the new and changed ones, -vv all. Words as restic's: new,
// modified, unchanged.
type itemPrinter struct {
	g    *GlobalOptions
	prog *backupProgress
	mu   sync.Mutex
}

func newItemPrinter(g *GlobalOptions, prog *backupProgress) *itemPrinter {
	return &itemPrinter{g: g, prog: prog}
}

func (p *itemPrinter) print(it archiver.Item) {
	if it.Status == archiver.StatusUnmodified && p.g.Verbose < 2 {
		return
	}
	action := map[string]string{archiver.StatusNew: "new", archiver.StatusChanged: "modified", archiver.StatusUnmodified: "unchanged"}[it.Status]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.g.JSON {
		writeJSON(p.g.stdout, backupVerboseJSON{MessageType: "verbose_status", Action: action, Item: itemPath(it), DataSize: it.Size})
		return
	}
	p.prog.clear()
	fmt.Fprintf(p.g.stdout, "%-9s  %s\n", action, displayText(itemPath(it)))
}

// itemPath is a directory's path with a trailing "/", as restic lists it.
func itemPath(it archiver.Item) string {
	if it.Dir && !strings.HasSuffix(it.Path, "/") {
		return it.Path + "/"
	}
	return it.Path
}

func runBackup(ctx context.Context, g *GlobalOptions, opts BackupOptions, paths []string) error {
	if opts.handed {
		// First, before anything could run a command.
		h, err := readKeyFD(opts.KeyFD)
		if err != nil {
			return err
		}
		defer h.Clear()
		g.handoff, g.handoffFD = h, opts.KeyFD
	}
	aopts, paths, err := backupArchiverOptions(g, opts, paths)
	if err != nil {
		return err
	}
	if opts.Session != "" {
		if !restapi.ValidSessionID(opts.Session) {
			return usageError{fmt.Errorf("--session %q: want a session ID, 32 lowercase hex digits", opts.Session)}
		}
		ctx = backend.WithHeldLease(ctx, opts.Session)
	}
	if opts.gated {
		if opts.DryRun {
			return usageError{errors.New("--commit-gate with --dry-run: a dry run commits nothing to gate")}
		}
		gate, err := openCommitGate(opts.CommitGate)
		if err != nil {
			return err
		}
		defer gate.Close()
		aopts.BeforeCommit = func(ctx context.Context, sum snapshot.Summary) error { return commitGate(ctx, gate, sum) }
	}
	repo, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	if repo.Keys().Sign == nil {
		// A server key reads metadata but signs no snapshot (exit 11).
		return roleError{Verb: "backing up", Need: "the owner key or a writer key", Have: repo.Keys().Role, Base: crypto.ErrNeedsOwner}
	}
	if err := checkEnrolled(repo); err != nil {
		return err
	}
	if err := checkFutureTime(g, repo, aopts.Time, opts.Time); err != nil {
		return err
	}
	if opts.Parent != "" {
		if err := client.NeedContent(repo, "--parent"); err != nil {
			return err
		}
		if aopts.Parent, err = resolveSnapshot(ctx, g, repo, opts.Parent, &SnapshotFilter{}); err != nil {
			return err
		}
	}
	prog := newBackupProgress(g)
	aopts.Progress = prog.update
	if g.Verbose > 0 && !g.Quiet {
		aopts.OnItem = newItemPrinter(g, prog).print
	}
	res, err := archiver.Backup(backend.WithQueueWatcher(ctx, prog.queued), repo, paths, aopts)
	prog.finish()
	if err != nil {
		if opts.StdinCommand && ctx.Err() == nil && !errors.Is(err, errGateAbort) {
			return withHint(err, "check the command given after --")
		}
		return fmt.Errorf("backup failed, no snapshot saved: %w", err)
	}
	for _, w := range res.Warnings {
		g.warnf("%s", displayText(w))
	}
	for _, s := range res.Skipped {
		if g.Verbose > 0 {
			fmt.Fprintf(g.stderr, "cairn: skipped %s\n", displayText(s))
		}
	}
	printBackupSummary(g, res)
	if opts.SummaryFile != "" {
		var b bytes.Buffer
		writeJSON(&b, backupSummaryMessage(res))
		if err := atomicfile.WriteFile(opts.SummaryFile, b.Bytes(), 0o600); err != nil {
			g.warnf("--summary-file: %v", err)
		}
	}
	if res.Partial() && res.DryRun {
		return withHint(fmt.Errorf("dry run: %d files or paths could not be read: %w", res.Summary.Errors, errPartial), "see the warnings above")
	}
	if res.Partial() {
		return withHint(fmt.Errorf("snapshot %s saved, but %d files or paths could not be read: %w", res.Snapshot.ID.Short(), res.Summary.Errors, errPartial), "see the warnings above")
	}
	return nil
}

func printBackupSummary(g *GlobalOptions, res *archiver.Result) {
	s := res.Summary
	if g.JSON {
		writeJSON(g.stdout, backupSummaryMessage(res))
		return
	}
	if g.Quiet {
		return
	}
	w := g.stdout
	fmt.Fprintf(w, "Files:  %6d new, %d changed, %d unmodified\n", s.FilesNew, s.FilesChanged, s.FilesUnchanged)
	fmt.Fprintf(w, "Dirs:   %6d new, %d changed, %d unmodified\n", s.DirsNew, s.DirsChanged, s.DirsUnchanged)
	ratio := ""
	// Only a real saving is worth a word: tiny files store more than
	// they read (a tree, a pack header), and "0.4x smaller" says nothing.
	if s.BytesAdded > 0 && float64(s.BytesRead) >= 1.1*float64(s.BytesAdded) {
		ratio = fmt.Sprintf(", %.1fx smaller", float64(s.BytesRead)/float64(s.BytesAdded))
	}
	if res.DryRun {
		fmt.Fprintf(w, "Would add: %s before compression (%s read)\n", formatBytes(s.BytesAdded), formatBytes(s.BytesRead))
	} else {
		fmt.Fprintf(w, "Added:  %s stored (%s read%s)\n", formatBytes(s.BytesAdded), formatBytes(s.BytesRead), ratio)
	}
	fmt.Fprintf(w, "Took:   %s\n", tookText(res.Took, s.BytesTotal))
	if res.DryRun {
		fmt.Fprintln(w, "Dry run: nothing stored, no snapshot saved")
		return
	}
	fmt.Fprintf(w, "Snapshot %s saved\n", res.Snapshot.ID.Short())
}

// backupSummaryMessage is the summary of --json and --summary-file.
func backupSummaryMessage(res *archiver.Result) backupSummaryJSON {
	s := res.Summary
	m := backupSummaryJSON{
		MessageType: "summary", FilesNew: s.FilesNew, FilesChanged: s.FilesChanged, FilesUnmodified: s.FilesUnchanged,
		DirsNew: s.DirsNew, DirsChanged: s.DirsChanged, DirsUnmodified: s.DirsUnchanged,
		BlobsNew: s.BlobsNew, BytesAdded: s.BytesAdded, BytesRead: s.BytesRead, TotalBytesProcessed: s.BytesTotal,
		Errors: s.Errors, TotalDuration: res.Took.Seconds(), DryRun: res.DryRun,
	}
	if res.Snapshot != nil {
		m.SnapshotID, m.ShortID, m.Tree = res.Snapshot.ID.String(), res.Snapshot.ID.Short(), res.Snapshot.File.Statement.Root.String()
	}
	return m
}

// tookText is the duration of a run and its rate: "0:07 (186 MiB/s)",
// "0.4s" for one under a second, no rate when nothing was processed.
func tookText(took time.Duration, bytes uint64) string {
	d := formatDuration(took)
	if took < time.Second {
		d = fmt.Sprintf("%.1fs", took.Seconds())
	}
	if secs := took.Seconds(); secs > 0 && bytes > 0 {
		d += fmt.Sprintf(" (%s/s)", formatBytes(uint64(float64(bytes)/secs)))
	}
	return d
}

// backupProgress draws one rewriting status line on a terminal, or prints
// JSON status lines with --json; nothing otherwise.
type backupProgress struct {
	g        *GlobalOptions
	terminal bool
	line     statusLine
	mu       sync.Mutex
	last     time.Time
	waited   bool // queued by the server at least once (backup_queue.go)
	position int
}

func newBackupProgress(g *GlobalOptions) *backupProgress {
	return &backupProgress{g: g, terminal: !g.Quiet && !g.JSON && g.stderrIsTerminal(), line: statusLine{g: g}}
}

func (p *backupProgress) update(pr archiver.Progress) {
	switch {
	case p.g.JSON:
		p.mu.Lock()
		defer p.mu.Unlock()
		if time.Since(p.last) < time.Second {
			return
		}
		p.last = time.Now()
		writeJSON(p.g.stdout, backupStatusJSON{
			MessageType: "status", SecondsElapsed: int64(pr.Elapsed.Seconds()), FilesDone: pr.Files, DirsDone: pr.Dirs,
			BytesDone: pr.BytesDone, TotalBytes: pr.BytesTotal, ErrorCount: pr.ErrorsCounted, CurrentFiles: []string{pr.CurrentFile},
		})
	case p.terminal:
		p.line.draw(fmt.Sprintf("[%s] %d files, %s of %s%s %s", formatDuration(pr.Elapsed), pr.Files,
			formatBytes(pr.BytesDone), formatBytes(pr.BytesTotal), rateText(pr.BytesDone, pr.Elapsed), displayText(pr.CurrentFile)))
	}
}

func (p *backupProgress) finish() { p.line.clear() }

// clear erases the status line, so a line printed next stands alone; the
// next update draws it again.
func (p *backupProgress) clear() { p.line.clear() }

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
