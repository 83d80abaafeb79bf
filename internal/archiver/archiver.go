package archiver

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/chunker"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/fsmeta"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/ticker"
)

// Options configure a backup.
type Options struct {
	Excludes      []string
	OneFileSystem bool
	// IExcludes are exclude patterns matched without regard to case.
	IExcludes []string
	// ExcludeIfPresent leaves out directories holding a file of this
	// name: "NAME", or "NAME:HEADER" for one whose content starts with
	// HEADER (CacheDirTag is --exclude-caches).
	ExcludeIfPresent []string
	// ExcludeLargerThan leaves out regular files larger than this many
	// bytes; 0 is no limit.
	ExcludeLargerThan uint64
	IncludeVirtual    bool
	Tags              []string
	Host              string    // host label; default the hostname
	Time              time.Time // claimed time; default now
	// StdinCommand, when set, runs a command and stores its standard
	// output as the file StdinFilename at the snapshot root; its failure
	// fails the backup.
	StdinCommand  []string
	StdinFilename string
	// Stdin, when set, is stored as the file StdinFilename at the
	// snapshot root, as StdinCommand's output is (--stdin).
	Stdin io.Reader
	// Parent, when set, is the snapshot whose files count as the last
	// backup's (--parent): a file with the same size, mtime and ctime at
	// the same path is not read again. It needs the owner key.
	Parent *repository.Snapshot
	// DryRun reads and chunks as a backup does but stores nothing and
	// makes no snapshot: Result.Snapshot is nil and Summary's BlobsNew
	// and BytesAdded count what would be added, before compression.
	DryRun bool
	// Compression is how hard stored blobs are compressed (--compression);
	// the zero value is crypto.CompressAuto.
	Compression crypto.Compression
	// OnItem, when set, is called for every file and directory once its
	// status is known (-vv); calls come from several goroutines.
	OnItem   func(Item)
	Workers  int
	Progress func(Progress)
	Log      *slog.Logger
	Program  string
	// BeforeCommit, when set, is called once every blob of the backup is
	// uploaded and indexed, just before the snapshot is committed, with
	// the backup's summary so far; an error fails the backup and commits
	// nothing (backup --commit-gate). Uploaded data stays for a later
	// backup to reuse, or a prune to remove.
	BeforeCommit func(ctx context.Context, sum snapshot.Summary) error
}

// Progress is a snapshot of a running backup's counters.
type Progress struct {
	Files, Dirs   uint64
	BytesDone     uint64
	BytesTotal    uint64 // bytes of files seen so far
	CurrentFile   string
	Elapsed       time.Duration
	ErrorsCounted uint64
}

// Item is one file or directory of a backup and what it was to the last
// backup.
type Item struct {
	Path   string
	Dir    bool
	Status string // "new", "changed" or "unmodified"
	Size   uint64 // a file's size
}

// Item statuses.
const (
	StatusNew        = "new"
	StatusChanged    = "changed"
	StatusUnmodified = "unmodified"
)

// Result is a finished backup.
type Result struct {
	Snapshot *repository.Snapshot // nil for a dry run
	DryRun   bool
	Summary  snapshot.Summary
	Warnings []string // files that could not be read or changed while read
	Skipped  []string // directories not descended into, with the reason
	Took     time.Duration
}

// Partial reports whether some files were skipped (exit code 3).
func (r *Result) Partial() bool { return r.Summary.Errors > 0 }

// future is a node whose content or subtree is still being saved.
type future struct {
	node snapshot.Node
	done chan struct{}
	err  error
	path string // for messages
	// seen: the last backup had this path (a file in the file cache, a
	// directory whose tree was stored or that held a seen entry).
	seen bool
}

type pendingDir struct {
	self     *future
	children []*future
}

type archiver struct {
	repo   *repository.Repository
	sess   blobStore
	known  repository.Known // what was stored before this backup
	opts   Options
	filter *fsmeta.Filter
	ex     *excludes
	cap    *fsmeta.Capturer
	ahead  *readAhead       // lists directories ahead of the walk
	capNoX *fsmeta.Capturer // lstat without xattrs, for the parallel walk
	links  *fsmeta.HardLinks
	fc     *fileCache
	params chunker.Params
	cdcKey [32]byte

	roots map[string]struct{}
	jobs  chan *fileJob

	sealSem chan struct{} // bounds chunks sealed off their reader's goroutine
	// maxBufs are buffers of Params.Max for the chunks of files of more
	// than one chunk: the chunker fills one and a sealer takes it over.
	maxBufs *repository.BufferList
	dirs    chan *pendingDir

	mu       sync.Mutex
	refs     map[snapshot.Ref]struct{}
	warnings []string
	skipped  []string
	sum      snapshot.Summary

	files, dirsN, bytesDone, bytesTotal, errorsN atomic.Uint64
	bytesRead                                    atomic.Uint64
	current                                      atomic.Value
}

type fileJob struct {
	f    *future
	path string
	key  cacheKey
}

// Backup backs up paths into repo and commits a snapshot.
func Backup(ctx context.Context, repo *repository.Repository, paths []string, opts Options) (*Result, error) {
	start := time.Now()
	if len(paths) == 0 && !opts.stdin() {
		return nil, errors.New("nothing to back up: give at least one path")
	}
	if opts.Workers <= 0 {
		opts.Workers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Time.IsZero() {
		opts.Time = repo.Now()
	}
	host, _ := os.Hostname()
	opts.Host = hostLabel(repo, host, opts.Host, opts.Log)
	// A path that does not exist is a warning (the snapshot holds the
	// others, exit 3), as an unreadable file is; only when none exists is
	// there nothing to back up. The snapshot records every path given, so
	// its path group stays that of the backups before.
	var roots, given []string
	var missing []string
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		given = append(given, abs)
		if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, abs)
			continue
		} else if err != nil {
			return nil, fmt.Errorf("backup source: %w", err)
		}
		roots = append(roots, abs)
	}
	if len(roots) == 0 && len(missing) > 0 && !opts.stdin() {
		return nil, fmt.Errorf("backup source: %s: %w", strings.Join(missing, ", "), fs.ErrNotExist)
	}
	sort.Strings(roots)
	sort.Strings(given)
	filter, err := fsmeta.NewFilter(fsmeta.FilterOptions{Excludes: opts.Excludes, OneFileSystem: opts.OneFileSystem, IncludeVirtual: opts.IncludeVirtual}, roots)
	if err != nil {
		return nil, err
	}
	ex, err := newExcludes(opts)
	if err != nil {
		return nil, err
	}
	if opts.Parent != nil && !repo.CanReadContent() {
		return nil, errors.New("--parent needs the owner key: only it reads a snapshot's files")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var known repository.Known
	var index *indexLoad
	if repo.CanReadMetadata() {
		// The index loads while the walk starts; the first dedup
		// question waits for it (a no-change backup of K spent 0.16 s
		// of its 1.2 s loading it before looking at a file).
		index = loadIndex(ctx, repo, cancel)
		known = index
	} else {
		set, err := writerKnown(ctx, repo, opts.Log)
		if err != nil {
			return nil, fmt.Errorf("own last snapshot: %w", err)
		}
		known = set
	}
	if known == nil {
		known = nothingKnown{}
	}
	var sess *repository.Session
	var store blobStore
	if opts.DryRun {
		// No session: it would take a lease and open a journal.
		store = newDryRunStore(repo, known)
	} else {
		sess, err = repo.NewSession(ctx, known)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && errors.Is(err, context.Canceled) {
				err = cause // the index load failed meanwhile: say why
			}
			return nil, err
		}
		sess.SetCompression(opts.Compression)
		store = sess
	}
	committed := false
	defer func() {
		if !committed && sess != nil {
			sess.Abort()
		}
	}()
	a := &archiver{repo: repo, sess: store, known: known, opts: opts, filter: filter, ex: ex,
		cap: fsmeta.NewCapturer(fsmeta.CaptureOptions{}), links: fsmeta.NewHardLinks(),
		capNoX: fsmeta.NewCapturer(fsmeta.CaptureOptions{NoXattrs: true}),
		fc:     loadFileCache(repo), params: repo.ChunkerParams(), cdcKey: repo.DedupKeys().CDC,
		jobs: make(chan *fileJob, 256), dirs: make(chan *pendingDir, 1024), refs: map[snapshot.Ref]struct{}{}}
	a.ahead = newReadAhead(a, runtime.GOMAXPROCS(0))
	for _, m := range missing {
		a.warn(m, errors.New("does not exist; not in the snapshot"))
	}
	if opts.Parent != nil {
		// The parent asked for replaces what the cache remembers.
		if err := a.fc.seedFromSnapshot(ctx, repo, opts.Parent, index.wait); err != nil {
			return nil, fmt.Errorf("parent snapshot %s: %w", opts.Parent.ID.Short(), err)
		}
	} else if err := a.fc.seedFromParent(ctx, repo, given, host, opts.Host, index.wait, opts.Log); err != nil {
		opts.Log.Warn("reading the parent snapshot; every file will be read", "err", err)
	}
	a.current.Store("")
	a.sealSem = make(chan struct{}, runtime.GOMAXPROCS(0))
	// One buffer per sealer and one for the chunk being read are kept; a
	// backup that reads no large file makes none. Keeping one for every
	// worker as well raised the peak RSS of K's initial backup from 118
	// to 134 MiB for no CPU measurably saved.
	a.maxBufs = repository.NewBufferList(a.params.Max, cap(a.sealSem)+1)
	a.roots = map[string]struct{}{}
	for _, r := range roots {
		a.roots[r] = struct{}{}
	}

	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() { defer wg.Done(); a.worker(ctx) }()
	}
	asmDone := make(chan error, 1)
	go func() { asmDone <- a.assembler(ctx) }()
	stopProgress := a.startProgress(start)

	root, walkErr := a.walkRoots(ctx, roots)
	a.ahead.close()
	close(a.jobs)
	close(a.dirs)
	asmErr := <-asmDone
	wg.Wait()
	stopProgress()
	if walkErr != nil {
		return nil, walkErr
	}
	if asmErr != nil {
		return nil, asmErr
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	<-root.done
	if root.err != nil {
		return nil, root.err
	}
	if err := index.wait(); err != nil {
		return nil, err
	}
	refs := make([]snapshot.Ref, 0, len(a.refs))
	for r := range a.refs {
		refs = append(refs, r)
	}
	a.sum.Errors = a.errorsN.Load()
	a.sum.BytesRead = a.bytesRead.Load()
	a.sum.BytesTotal = a.bytesTotal.Load()
	if opts.DryRun {
		d := store.(*dryRunStore)
		a.sum.BlobsNew, a.sum.BytesAdded = d.blobs.Load(), d.bytes.Load()
		return &Result{DryRun: true, Summary: a.sum, Warnings: a.warnings, Skipped: a.skipped, Took: time.Since(start)}, nil
	}
	st := sess.Stats()
	a.sum.BlobsNew, a.sum.BytesAdded = st.Blobs, st.StoredBytes
	if opts.BeforeCommit != nil {
		if err := sess.Flush(ctx); err != nil {
			return nil, err
		}
		if err := opts.BeforeCommit(ctx, a.sum); err != nil {
			return nil, err
		}
	}
	user := os.Getenv("USER")
	snap, err := sess.Commit(ctx, repository.CommitInput{
		Root: *root.node.Subtree, Refs: refs, Time: opts.Time,
		Meta:  snapshot.MetaHeader{HostLabel: opts.Host, Tags: opts.Tags, PathGroup: repo.PathGroup(rootsOrStdin(given, opts))},
		Owner: snapshot.OwnerHeader{Paths: rootsOrStdin(given, opts), Hostname: host, Username: user, Excludes: opts.Excludes, Program: opts.Program, Time: opts.Time, Summary: a.sum},
	})
	if err != nil {
		return nil, err
	}
	committed = true
	if err := sess.Close(); err != nil {
		opts.Log.Warn("closing session", "err", err)
	}
	if err := a.fc.save(); err != nil {
		opts.Log.Warn("saving file cache", "err", err)
	}
	return &Result{Snapshot: snap, Summary: a.sum, Warnings: a.warnings, Skipped: a.skipped, Took: time.Since(start)}, nil
}

// stdin reports whether the backup stores a stream (--stdin,
// --stdin-from-command) as a file at the snapshot root.
func (o Options) stdin() bool { return len(o.StdinCommand) > 0 || o.Stdin != nil }

func rootsOrStdin(roots []string, o Options) []string {
	if o.stdin() {
		return append(append([]string(nil), roots...), "/"+o.StdinFilename)
	}
	return roots
}

func (a *archiver) warn(path string, err error) {
	a.errorsN.Add(1)
	msg := fmt.Sprintf("%s: %v", path, err)
	a.mu.Lock()
	a.warnings = append(a.warnings, msg)
	a.mu.Unlock()
	// Result.Warnings carries it to the caller, which reports it once.
	a.opts.Log.Debug("skipped", "path", path, "err", err)
}

func (a *archiver) addRef(t blob.Type, id blob.ID) {
	a.mu.Lock()
	a.refs[snapshot.Ref{Type: t, ID: id}] = struct{}{}
	a.mu.Unlock()
}

func resolved(n snapshot.Node) *future {
	f := &future{node: n, done: make(chan struct{})}
	close(f.done)
	return f
}

// walkRoots builds the snapshot's root: the roots' absolute paths as a tree
// of directories, each synthesized directory carrying its real metadata.
func (a *archiver) walkRoots(ctx context.Context, roots []string) (*future, error) {
	type trie struct {
		kids   map[string]*trie
		isRoot bool
	}
	top := &trie{kids: map[string]*trie{}}
	for _, r := range roots {
		t := top
		for _, c := range strings.Split(strings.Trim(r, "/"), "/") {
			if c == "" {
				continue
			}
			if t.kids[c] == nil {
				t.kids[c] = &trie{kids: map[string]*trie{}}
			}
			t = t.kids[c]
		}
		t.isRoot = true
	}
	var build func(path string, t *trie) (*future, error)
	build = func(path string, t *trie) (*future, error) {
		if t.isRoot {
			return a.walk(ctx, path, relOf(path))
		}
		n, err := a.cap.Lstat(path)
		if err != nil {
			return nil, err
		}
		if path == "/" {
			n.Name = "/"
		}
		names := make([]string, 0, len(t.kids))
		for k := range t.kids {
			names = append(names, k)
		}
		sort.Strings(names)
		pd := &pendingDir{self: &future{node: n, done: make(chan struct{}), path: path}}
		for _, k := range names {
			f, err := build(filepath.Join(path, k), t.kids[k])
			if err != nil {
				return nil, err
			}
			pd.children = append(pd.children, f)
		}
		if path == "/" && a.opts.stdin() {
			f, err := a.stdinFile(ctx)
			if err != nil {
				return nil, err
			}
			pd.children = append(pd.children, f)
			sort.SliceStable(pd.children, func(i, j int) bool { return pd.children[i].node.Name < pd.children[j].node.Name })
		}
		if err := a.sendDir(ctx, pd); err != nil {
			return nil, err
		}
		return pd.self, nil
	}
	if top.isRoot { // backing up "/" itself
		return a.walk(ctx, "/", "")
	}
	return build("/", top)
}

func (a *archiver) isRoot(path string) bool {
	_, ok := a.roots[path]
	return ok
}

func relOf(path string) string { return strings.TrimPrefix(path, "/") }

func (a *archiver) sendDir(ctx context.Context, pd *pendingDir) error {
	select {
	case a.dirs <- pd:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// walk captures path and, for a directory, everything below it. rel is the
// path relative to the snapshot root, used for hard links.
func (a *archiver) walk(ctx context.Context, path, rel string) (*future, error) {
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	n, err := a.cap.Lstat(path)
	if err != nil {
		return nil, err
	}
	if path == "/" {
		n.Name = "/"
	}
	return a.walkNode(ctx, path, rel, n)
}

// walkNode handles one captured entry: a directory is walked, a file is
// handed to the content workers, anything else is complete as captured.
func (a *archiver) walkNode(ctx context.Context, path, rel string, n snapshot.Node) (*future, error) {
	switch n.Type {
	case snapshot.TypeDir:
		return a.walkDir(ctx, path, rel, n)
	case snapshot.TypeFile:
		a.files.Add(1)
		a.bytesTotal.Add(n.Size)
		if to, ok := a.links.Link(n, rel); ok {
			n.HardLinkTo = to
			n.Size = 0
			return resolved(n), nil
		}
		f := &future{node: n, done: make(chan struct{}), path: path}
		select {
		case a.jobs <- &fileJob{f: f, path: path, key: a.fc.keyOf(path)}:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		return f, nil
	default:
		if to, ok := a.links.Link(n, rel); ok {
			n.HardLinkTo = to
		}
		return resolved(n), nil
	}
}

func (a *archiver) walkDir(ctx context.Context, path, rel string, n snapshot.Node) (*future, error) {
	a.dirsN.Add(1)
	pd := &pendingDir{self: &future{node: n, done: make(chan struct{}), path: path}}
	l := a.ahead.take(path, n)
	if l.skipErr != nil {
		a.warn(path, l.skipErr)
	}
	if l.reason != "" {
		a.mu.Lock()
		a.skipped = append(a.skipped, fmt.Sprintf("%s (%s)", path, l.reason))
		a.mu.Unlock()
		return pd.self, a.sendDir(ctx, pd)
	}
	if l.readErr != nil {
		a.warn(path, l.readErr)
		return pd.self, a.sendDir(ctx, pd)
	}
	names, nodes, errs := l.names, l.nodes, l.errs
	// Paths once; excluded entries get "" and subdirectories go to the
	// read-ahead before the walk descends into the first of them.
	paths := make([]string, len(names))
	for i, name := range names {
		if errs[i] == nil {
			isDir := nodes[i].Type == snapshot.TypeDir
			if p := filepath.Join(path, name); !a.filter.Excluded(p, isDir) && !a.ex.excluded(p, &nodes[i]) {
				paths[i] = p
				if isDir {
					a.ahead.queue(p, nodes[i])
				}
			}
		}
	}
	for i, name := range names {
		if errs[i] != nil {
			a.warn(filepath.Join(path, name), errs[i])
			continue
		}
		child := paths[i]
		if child == "" {
			continue // excluded
		}
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		f, err := a.walkNode(ctx, child, childRel, nodes[i])
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			a.warn(child, err)
			continue
		}
		pd.children = append(pd.children, f)
	}
	return pd.self, a.sendDir(ctx, pd)
}

// lstatAll captures a directory's entries, several at a time: on a
// no-change backup the walk is nothing but these system calls, and they
// run in parallel on every core while the order of the result stays that
// of names.
func (a *archiver) lstatAll(dir *fsmeta.Dir, names []string) ([]snapshot.Node, []error) {
	nodes := make([]snapshot.Node, len(names))
	errs := make([]error, len(names))
	stat := func(i int) {
		// Regular files get their xattrs in the content worker, from the
		// file cache when the file is unchanged (a changed xattr changes
		// ctime); everything else here.
		if nodes[i], errs[i] = a.capNoX.LstatAt(dir, names[i]); errs[i] == nil && nodes[i].Type != snapshot.TypeFile {
			nodes[i].Xattrs, errs[i] = fsmeta.ListXattrs(filepath.Join(dir.Path(), names[i]))
		}
	}
	par := min(len(names)/8, 2*runtime.GOMAXPROCS(0))
	if par < 2 {
		for i := range names {
			stat(i)
		}
		return nodes, errs
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
				stat(i)
			}
		}()
	}
	wg.Wait()
	return nodes, errs
}

// assembler saves trees in post-order as their children complete.
func (a *archiver) assembler(ctx context.Context) error {
	for pd := range a.dirs {
		tree := snapshot.Tree{Nodes: make([]snapshot.Node, 0, len(pd.children))}
		childSeen := false
		for _, c := range pd.children {
			select {
			case <-c.done:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			if c.err != nil {
				if ctx.Err() != nil {
					// Failed because the backup is cancelled: not a
					// file to report as skipped.
					return context.Cause(ctx)
				}
				a.warn(c.path, c.err)
				continue
			}
			tree.Nodes = append(tree.Nodes, c.node)
			childSeen = childSeen || c.seen
		}
		buf, err := tree.Encode()
		if err != nil {
			return fmt.Errorf("tree of %s: %w", pd.self.path, err)
		}
		// A tree stored before this backup is an unmodified directory;
		// one stored now is changed if the last backup had any of its
		// entries, else new (two empty directories in a first backup
		// share a tree, and both are new).
		id := a.repo.BlobID(blob.Tree, buf)
		stored := a.known.Has(id, blob.Tree)
		if _, err := a.sess.SaveBlobID(ctx, blob.Tree, id, buf); err != nil {
			return err
		}
		status := StatusNew
		a.mu.Lock()
		switch {
		case stored:
			a.sum.DirsUnchanged++
			status = StatusUnmodified
		case childSeen:
			a.sum.DirsChanged++
			status = StatusChanged
		default:
			a.sum.DirsNew++
		}
		a.mu.Unlock()
		pd.self.seen = stored || childSeen
		if a.opts.OnItem != nil && pd.self.path != "" {
			a.opts.OnItem(Item{Path: pd.self.path, Dir: true, Status: status})
		}
		a.addRef(blob.Tree, id)
		pd.self.node.Subtree = &id
		close(pd.self.done)
	}
	return nil
}

func (a *archiver) worker(ctx context.Context) {
	ch := chunker.New(nil, a.cdcKey, a.params)
	var small []byte
	for job := range a.jobs {
		if ctx.Err() != nil {
			job.f.err = context.Cause(ctx)
			close(job.f.done)
			continue
		}
		a.current.Store(job.path)
		job.f.err = a.saveFile(ctx, job, ch, &small)
		close(job.f.done)
	}
}

// smallBuf returns the worker's buffer for a file of at most Params.Min
// bytes, which is one chunk; it grows to the largest such file seen.
// Larger files are chunked into buffers from archiver.maxBufs, so a
// worker that reads only small files, or none (a backup where nothing
// changed), holds no buffer of Params.Max.
func (a *archiver) smallBuf(small *[]byte, size uint64) []byte {
	if uint64(cap(*small)) <= size {
		// One byte more than the size, so a file that stays the same
		// fits and one that grew shows it without reallocating.
		*small = make([]byte, min(2*size+1, uint64(a.params.Min)))
	}
	return *small
}

func (a *archiver) saveFile(ctx context.Context, job *fileJob, ch *chunker.Chunker, small *[]byte) error {
	n := &job.f.node
	if c, ok := a.fc.lookup(job.key, n); ok && a.allKnown(c.Content) {
		n.Extents, n.Xattrs = c.Extents, c.Xattrs
		n.SetContent(c.Content, c.Hash)
		for _, id := range c.Content {
			a.addRef(blob.Data, id)
		}
		a.mu.Lock()
		a.sum.FilesUnchanged++
		a.mu.Unlock()
		a.bytesDone.Add(n.Size)
		a.fc.record(job.key, n)
		job.f.seen = true
		a.item(job.path, StatusUnmodified, n.Size)
		return nil
	}
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		changed, err := a.readFile(ctx, job, ch, small)
		if err != nil {
			return err
		}
		if !changed {
			_, known := a.fc.old(job.key)
			status := StatusNew
			a.mu.Lock()
			if known {
				a.sum.FilesChanged++
				status = StatusChanged
			} else {
				a.sum.FilesNew++
			}
			a.mu.Unlock()
			a.fc.record(job.key, n)
			job.f.seen = known
			a.item(job.path, status, n.Size)
			return nil
		}
		lastErr = errors.New("file changed while it was read")
	}
	// Stored as last read, but reported: a torn copy is never silent.
	a.warn(job.path, fmt.Errorf("%w; stored as read, may be inconsistent", lastErr))
	a.errorsN.Add(^uint64(0)) // warn counted it; a changed file is still in the snapshot
	a.mu.Lock()
	a.warnings[len(a.warnings)-1] = "warning: " + a.warnings[len(a.warnings)-1]
	a.mu.Unlock()
	return nil
}

func (a *archiver) allKnown(ids []blob.ID) bool {
	for _, id := range ids {
		if !a.sess.Has(blob.Data, id) {
			return false
		}
	}
	return true
}

// readFile chunks and saves a file's content; it reports whether the file
// changed while being read.
func (a *archiver) readFile(ctx context.Context, job *fileJob, ch *chunker.Chunker, small *[]byte) (bool, error) {
	f, err := fsmeta.OpenContent(job.path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	before := f.Before()
	n := &job.f.node
	if n.Xattrs == nil {
		if n.Xattrs, err = f.Xattrs(); err != nil {
			return false, err
		}
	}
	var src io.Reader = f
	extents, err := f.Extents()
	if err != nil {
		return false, err
	}
	if extents != nil && len(extents) == 0 {
		// All hole: one empty extent at the end keeps "sparse, no data"
		// apart from "dense" through the tree encoding.
		extents = []snapshot.Extent{{Offset: int64(before.Size)}}
	}
	if extents != nil {
		readers := make([]io.Reader, len(extents))
		for i, e := range extents {
			readers[i] = io.NewSectionReader(f, e.Offset, e.Length)
		}
		src = io.MultiReader(readers...)
	}
	var buf []byte // nil: saveStream takes buffers from maxBufs
	if before.Size <= uint64(a.params.Min) {
		buf = a.smallBuf(small, before.Size)
	}
	content, _, h, err := a.saveStream(ctx, src, ch, buf)
	if err != nil {
		return false, err
	}
	after, err := f.After()
	if err != nil {
		return false, err
	}
	n.Extents = extents
	n.SetContent(content, h)
	if fsmeta.Changed(before, after) || after.Size != n.Size || !after.MTime.Equal(n.MTime) {
		n.Size, n.MTime, n.CTime = after.Size, after.MTime, after.CTime
		return true, nil
	}
	return false, nil
}

// saveStream chunks src and saves every chunk as a data blob, returning
// the blob IDs in order, the byte count and the SHA-256 of the stream.
// With buf, for a file of one chunk, the chunk is read into buf and saved
// here. With buf nil (a file larger than the smallest chunk) every chunk
// is read into a buffer of maxBufs, which goes with it to another
// goroutine to be sealed, at most a few at a time across the whole
// backup, while this one reads on: one large file then uses every core,
// and no chunk is copied on its way.
func (a *archiver) saveStream(ctx context.Context, src io.Reader, ch *chunker.Chunker, buf []byte) ([]blob.ID, uint64, blob.ID, error) {
	parallel := buf == nil
	// The content hash: inline for a small file, beside the chunker for
	// one large enough to be sealed in parallel.
	var (
		hash  = sha256.New()
		async *asyncHasher
	)
	if parallel {
		async = newAsyncHasher()
		ch.Reset(io.TeeReader(src, async))
	} else {
		ch.Reset(io.TeeReader(src, hash))
	}
	var (
		ids      []*blob.ID
		size     uint64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	save := func(data []byte, dst *blob.ID) error {
		id, _, err := a.sess.SaveBlob(ctx, blob.Data, data)
		if err != nil {
			return err
		}
		a.addRef(blob.Data, id)
		*dst = id
		return nil
	}
	var err error
	for {
		var bp *[]byte // the chunk's buffer from maxBufs, if parallel
		if parallel {
			bp = a.maxBufs.Get()
			buf = *bp
		}
		var c chunker.Chunk
		c, err = ch.Next(buf)
		if err != nil {
			if bp != nil {
				a.maxBufs.Put(bp)
			}
			if err == io.EOF {
				err = nil
			}
			break
		}
		size += uint64(c.Length)
		a.bytesDone.Add(uint64(c.Length))
		a.bytesRead.Add(uint64(c.Length))
		dst := new(blob.ID)
		ids = append(ids, dst)
		if !parallel {
			if err = save(c.Data, dst); err != nil {
				break
			}
			continue
		}
		a.sealSem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// c.Data lies in *bp: Next fills a buffer of Params.Max in place.
			if err := save(c.Data, dst); err != nil {
				mu.Lock()
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
			}
			a.maxBufs.Put(bp)
			<-a.sealSem
		}()
	}
	wg.Wait()
	var h blob.ID
	if async != nil {
		h = async.sum()
	} else {
		hash.Sum(h[:0])
	}
	if err = cmp.Or(err, firstErr); err != nil {
		return nil, 0, blob.ID{}, err
	}
	out := make([]blob.ID, len(ids))
	for i, id := range ids {
		out[i] = *id
	}
	return out, size, h, nil
}

// stdinFile stores --stdin, or runs the stdin command and stores its
// output, as a file.
func (a *archiver) stdinFile(ctx context.Context) (*future, error) {
	if a.opts.Stdin != nil {
		n, err := a.streamFile(ctx, a.opts.Stdin)
		if err != nil {
			return nil, fmt.Errorf("--stdin: %w", err)
		}
		return resolved(n), nil
	}
	cmd := exec.CommandContext(ctx, a.opts.StdinCommand[0], a.opts.StdinCommand[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("--stdin-from-command: %w", err)
	}
	n, err := a.streamFile(ctx, out)
	if err != nil {
		_ = cmd.Wait()
		return nil, err
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("--stdin-from-command %s failed: %w; no snapshot was made", a.opts.StdinCommand[0], err)
	}
	return resolved(n), nil
}

// streamFile stores r as the file StdinFilename.
func (a *archiver) streamFile(ctx context.Context, r io.Reader) (snapshot.Node, error) {
	n := snapshot.Node{Name: a.opts.StdinFilename, Type: snapshot.TypeFile, Mode: 0o600, MTime: a.opts.Time, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	ch := chunker.New(nil, a.cdcKey, a.params)
	content, size, h, err := a.saveStream(ctx, r, ch, nil)
	if err != nil {
		return snapshot.Node{}, err
	}
	n.Size = size
	n.SetContent(content, h)
	a.files.Add(1)
	a.bytesTotal.Add(size)
	a.mu.Lock()
	a.sum.FilesNew++
	a.mu.Unlock()
	a.item("/"+n.Name, StatusNew, size)
	return n, nil
}

// item reports a file's status to OnItem.
func (a *archiver) item(path, status string, size uint64) {
	if a.opts.OnItem != nil {
		a.opts.OnItem(Item{Path: path, Status: status, Size: size})
	}
}

func (a *archiver) startProgress(start time.Time) func() {
	if a.opts.Progress == nil {
		return func() {}
	}
	return ticker.Every(250*time.Millisecond, func() {
		a.opts.Progress(Progress{Files: a.files.Load(), Dirs: a.dirsN.Load(), BytesDone: a.bytesDone.Load(),
			BytesTotal: a.bytesTotal.Load(), CurrentFile: a.current.Load().(string), Elapsed: time.Since(start), ErrorsCounted: a.errorsN.Load()})
	})
}
