package restorer

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/fsmeta"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/ticker"
	"github.com/cairnbackup/cairn/internal/walker"
)

// Options configure a restore.
type Options struct {
	Target    string
	Include   []string // restore only paths matching (or below a match)
	Exclude   []string
	Verify    bool      // re-read restored and kept files and compare with their recorded content identity (snapshot.ContentDigest)
	Overwrite Overwrite // what to do with objects already there (overwrite.go)
	Workers   int
	Progress  func(Progress)
	Log       *slog.Logger

	// Privileges refuses a snapshot's privileged objects (privileges.go).
	Privileges Privileges

	// NoFsync skips the flush at the end (sync.go): after a power loss,
	// files a restore reported done may be empty or short.
	NoFsync bool
}

// Progress counts a running restore. The totals grow while the walk
// finds files.
type Progress struct {
	Files, Bytes, TotalBytes uint64
	TotalFiles               uint64
	Elapsed                  time.Duration
	// Final marks the last report, made when the restore ends.
	Final bool
}

// Result is a finished restore.
type Result struct {
	Files, Dirs, Links, Special uint64
	Bytes                       uint64
	Verified                    uint64
	// Unchanged counts existing objects found identical to the
	// snapshot's (OverwriteIfChanged), which only got its metadata;
	// UnchangedBytes is the size of such files.
	Unchanged, UnchangedBytes uint64
	// Kept counts existing objects the policy left as they are.
	Kept uint64
	// TempsRemoved counts temporary files of an earlier, killed restore
	// that this one removed.
	TempsRemoved uint64
	Warnings     []string
	// Skipped are objects left out on purpose (Privileges): not failures.
	Skipped []string
}

type fileJob struct {
	comps   []string
	node    *snapshot.Node
	write   bool // checkFile found the file is to be written
	replace bool // the file may replace an object at its path (checkFile)
	// fresh: the file's directory did not exist when the restore reached
	// it (newDirs), so nothing is at the file's path to weigh.
	fresh bool
}

type restore struct {
	ctx   context.Context // the restore's: after it ends, failures are not warned about
	repo  *repository.Repository
	fs    *fsmeta.Restorer
	opts  Options
	res   Result
	mu    sync.Mutex
	bytes atomic.Uint64
	files atomic.Uint64
	total atomic.Uint64 // bytes of the files found so far
	found atomic.Uint64 // files found so far
	bufs  sync.Pool     // *repository.BlobBuffers for pack reads
	held  atomic.Int64  // plaintext assemblies hold (holdBudget)
	wb    writeback     // background flushes (sync.go)

	// Counts for Result, of objects already there (overwrite.go).
	verified, unchanged, unchangedBytes, kept atomic.Uint64
}

func (r *restore) warn(path string, err error) {
	r.mu.Lock()
	r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("%s: %v", path, err))
	r.mu.Unlock()
	if r.opts.Log != nil {
		// Debug: the caller reports Result.Warnings; a second line for
		// each at the default level would say everything twice.
		r.opts.Log.Debug("restore warning", "path", path, "err", err)
	}
}

// Restore restores subpath of snap (the whole snapshot when empty) below
// opts.Target. A directory's contents go directly into the target; a file
// is restored as target/name. The walk's errors come back wrapped:
// walker.ErrNotFound when subpath is not in the snapshot, walker.ErrTooLarge
// when its trees expand too far (nothing is written).
func Restore(ctx context.Context, repo *repository.Repository, snap *repository.Snapshot, subpath string, opts Options) (*Result, error) {
	if !repo.CanReadContent() {
		return nil, fmt.Errorf("restoring %w", crypto.ErrNeedsOwner)
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return nil, err
	}
	ctx = repository.ReadFor(ctx, snap.Signer()) // R23
	// A tree DAG bomb is refused before anything is created.
	if err := walker.CheckSize(ctx, repo, snap); err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	start := time.Now()
	_, err := os.Lstat(opts.Target)
	targetNew := errors.Is(err, fs.ErrNotExist)
	if err := os.MkdirAll(opts.Target, 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockTarget(opts.Target)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r := &restore{ctx: ctx, repo: repo, opts: opts}
	fsr, err := fsmeta.NewRestorer(opts.Target, r.fsOptions())
	if err != nil {
		return nil, err
	}
	defer fsr.Close()
	r.fs = fsr
	defer r.wb.wait() // before fsr.Close: a background flush uses its descriptor
	include, err := fsmeta.NewExcluder(opts.Include)
	if err != nil {
		return nil, fmt.Errorf("--include: %w", err)
	}
	exclude, err := fsmeta.NewExcluder(opts.Exclude)
	if err != nil {
		return nil, fmt.Errorf("--exclude: %w", err)
	}
	startNode, err := walker.FindNode(ctx, repo, snap.File.Statement.Root, subpath)
	if err != nil {
		return nil, err
	}
	base := strings.Trim(subpath, "/")
	// newDirs are the directories (by path below the target) this restore
	// made that did not exist before it: nothing but what it puts there is
	// in them, so it neither looks for an earlier run's temporary files in
	// them nor at what is at each file's path (a stat per file, a third
	// of the calls checkFile makes in an empty target). A file committed
	// there replaces nothing (RENAME_NOREPLACE): whatever appeared
	// meanwhile is kept and reported. The walk alone uses it.
	newDirs := map[string]bool{}
	if targetNew {
		newDirs[""] = true
	} else {
		r.removeTemps(nil)
	}
	var links []fileJob
	var dirs []fileJob
	// MkdirAll returns at once for a directory its cache holds open.
	ensureDir := func(comps []string) error {
		if len(comps) == 0 {
			return nil
		}
		return r.fs.MkdirAll(comps)
	}
	// Files are restored while the walk goes on: every restoreBatch files
	// found go to the workers, grouped by pack. A backup stores files in
	// walk order, so a batch boundary splits at most a pack or two into
	// two reads.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(wctx)
	g.SetLimit(r.opts.Workers)
	var batch []fileJob
	flush := func() error {
		r.queueFiles(gctx, g, batch)
		batch = nil
		return gctx.Err()
	}
	stop := r.startProgress(start)
	defer stop()
	visit := func(rel string, n *snapshot.Node) error {
		full := "/" + rel
		if base != "" {
			full = "/" + base + "/" + rel
		}
		isDir := n.Type == snapshot.TypeDir
		if exclude.Excluded(full, isDir) {
			return walker.ErrSkipDir
		}
		comps := strings.Split(rel, "/")
		if len(opts.Include) > 0 && !matchesOrBelow(include, full, isDir) {
			return nil // a descendant may still match
		}
		if err := fsmeta.ValidPath(comps); err != nil {
			return fmt.Errorf("refusing to restore %q: %w", rel, err)
		}
		switch n.Type {
		case snapshot.TypeDir:
			isNew := newDirs[strings.Join(comps[:len(comps)-1], "/")]
			if !isNew {
				_, err := r.fs.Lstat(comps)
				isNew = errors.Is(err, fs.ErrNotExist)
			}
			if err := ensureDir(comps); err != nil {
				return r.notDir(rel, err, walker.ErrSkipDir)
			}
			if isNew {
				newDirs[rel] = true
			} else {
				r.removeTemps(comps)
			}
			dirs = append(dirs, fileJob{comps: comps, node: n})
		case snapshot.TypeFile:
			if err := ensureDir(comps[:len(comps)-1]); err != nil {
				return r.notDir(rel, err, nil)
			}
			if n.HardLinkTo != "" {
				links = append(links, fileJob{comps: comps, node: n})
				return nil
			}
			r.total.Add(n.Size)
			r.found.Add(1)
			fresh := newDirs[strings.Join(comps[:len(comps)-1], "/")]
			if batch = append(batch, fileJob{comps: comps, node: n, fresh: fresh}); len(batch) >= restoreBatch {
				return flush()
			}
		default:
			if r.skipSpecial(comps, n) {
				return nil
			}
			if err := ensureDir(comps[:len(comps)-1]); err != nil {
				return r.notDir(rel, err, nil)
			}
			if n.HardLinkTo != "" {
				links = append(links, fileJob{comps: comps, node: n})
				return nil
			}
			r.special(comps, n)
		}
		return nil
	}
	if startNode.Type == snapshot.TypeDir {
		err = walker.WalkLost(ctx, repo, *startNode.Subtree, visit, func(rel string, _ blob.ID, err error) error {
			r.warn(cmp.Or(rel, "."), walker.LostDir(err)) // the rest is restored
			return nil
		})
	} else {
		err = visit(startNode.Name, startNode)
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		cancel()
		if werr := g.Wait(); werr != nil && ctx.Err() == nil && !errors.Is(werr, context.Canceled) {
			err = werr
		}
		return nil, err
	}
	err = g.Wait()
	stop()
	if err == nil {
		// Workers stop on cancellation without an error of their own:
		// the files they were writing are gone, not half there.
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		r.hardlink(l, base)
	}
	// Directories last, deepest first.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := r.fs.SetMetadata(d.comps, withATime(d.node)); err != nil {
			r.warn(strings.Join(d.comps, "/"), err)
		}
		r.res.Dirs++
	}
	if err := r.flush(); err != nil {
		return nil, err
	}
	r.res.Bytes = r.bytes.Load()
	r.res.Files = r.files.Load()
	r.res.Verified = r.verified.Load()
	r.res.Unchanged = r.unchanged.Load()
	r.res.UnchangedBytes = r.unchangedBytes.Load()
	r.res.Kept = r.kept.Load()
	return &r.res, nil
}

// notDir handles err from making the directory for rel (or its parent): a
// non-directory in the way (one the never policy keeps) is a warning and
// skip is returned, so the restore goes on without what would be below
// it; anything else stops the restore.
func (r *restore) notDir(rel string, err, skip error) error {
	if !errors.Is(err, unix.ENOTDIR) {
		return err
	}
	r.warn(rel, err)
	return skip
}

// removeTemps removes what an earlier restore killed while writing left
// in the directory at comps (fsmeta.Restorer.RemoveTemps).
func (r *restore) removeTemps(comps []string) {
	n, err := r.fs.RemoveTemps(comps)
	if err != nil {
		r.warn(strings.Join(comps, "/"), err)
	}
	r.mu.Lock()
	r.res.TempsRemoved += uint64(n)
	r.mu.Unlock()
}

// matchesOrBelow reports whether path or one of its ancestors matches.
func matchesOrBelow(ex *fsmeta.Excluder, path string, isDir bool) bool {
	if ex.Excluded(path, isDir) {
		return true
	}
	for p := path; p != "/" && p != ""; {
		i := strings.LastIndexByte(p, '/')
		if i <= 0 {
			break
		}
		p = p[:i]
		if ex.Excluded(p, true) {
			return true
		}
	}
	return false
}

func withATime(n *snapshot.Node) snapshot.Node {
	c := *n
	if c.ATime.IsZero() {
		c.ATime = c.MTime
	}
	return c
}

func (r *restore) special(comps []string, n *snapshot.Node) {
	path := strings.Join(comps, "/")
	if n.Type == snapshot.TypeSocket || r.checkOther(comps, n) {
		return
	}
	var err error
	switch n.Type {
	case snapshot.TypeSymlink:
		err = r.fs.Symlink(comps, n.LinkTarget)
	case snapshot.TypeSocket:
		return // sockets are not restored; a new server makes its own
	default:
		err = r.fs.Mknod(comps, *n)
	}
	if err != nil {
		r.warn(path, err)
		return
	}
	if err := r.fs.SetMetadata(comps, withATime(n)); err != nil {
		r.warn(path, err)
	}
	r.mu.Lock()
	r.res.Special++
	r.mu.Unlock()
}

func (r *restore) hardlink(l fileJob, base string) {
	target := strings.TrimPrefix(l.node.HardLinkTo, "/")
	if base != "" {
		if !strings.HasPrefix(target, base+"/") {
			r.warn(strings.Join(l.comps, "/"), fmt.Errorf("hard link to %s, outside the restored path", target))
			return
		}
		target = strings.TrimPrefix(target, base+"/")
	}
	existing, err := fsmeta.SplitPath(target)
	if err == nil {
		if r.checkLink(l.comps, existing, l.node) {
			return
		}
		err = r.fs.Hardlink(l.comps, existing)
	}
	if err != nil {
		r.warn(strings.Join(l.comps, "/"), err)
		return
	}
	r.mu.Lock()
	r.res.Links++
	r.mu.Unlock()
}

// restoreBatch is how many files the walk finds before it hands them to
// the workers. A batch's read of a pack bridges gaps of up to maxGap, and
// the blobs of later batches in such a gap are read again by theirs. A
// restore of the Linux source (78,579 files, 268 MiB stored) from S3 made
// 170 requests and downloaded 324 MiB with batches of 1024 files; 96 and
// 298 MiB with 4096 in the same memory; 85 and 296 MiB with 8192 and 24
// MiB more memory, more files being assembled at once (bench/restore.sh,
// one round each). A file of several blobs may be open from its first blob
// to its last, so batches are not made larger still: 4096 files stay
// within the smallest common hard limit of open descriptors (4096), to
// which Go raises the soft one. A variable so a test can make it small.
var restoreBatch = 4096

// queueFiles hands files to g's workers. What is at each file's path is
// weighed first (checkFile), so an identical file costs no read. Then
// every blob the batch needs is grouped by the pack it is read from, and
// each pack's needed stretches are read once, every blob going to every
// file that needs it: a file of one blob is written whole, a file of
// several is assembled (assemble.go). A file one of whose blobs is not in
// the index, and an empty one, are restored by restoreLarge. It waits
// while every worker is busy.
func (r *restore) queueFiles(ctx context.Context, g *errgroup.Group, files []fileJob) {
	r.checkFiles(files)
	plans := map[blob.ID]*packPlan{}
	var packs []*packPlan
	planFor := func(e index.Entry) *packPlan {
		p := plans[e.Pack]
		if p == nil {
			p = &packPlan{id: e.Pack, byBlob: map[blob.ID]*blobUse{}}
			plans[e.Pack] = p
			packs = append(packs, p)
		}
		u := p.byBlob[e.ID]
		if u == nil {
			u = &blobUse{}
			p.byBlob[e.ID] = u
			p.entries = append(p.entries, e)
		}
		return p
	}
	var large []int
	for i, f := range files {
		if !f.write {
			continue
		}
		n := f.node
		if len(n.Content) == 1 && n.Extents == nil {
			if e, ok := r.repo.Locate(ctx, blob.Data, n.Content[0]); ok {
				u := planFor(e).byBlob[e.ID]
				u.files = append(u.files, i)
				continue
			}
		}
		entries := make([]index.Entry, 0, len(n.Content))
		for _, id := range n.Content {
			e, ok := r.repo.Locate(ctx, blob.Data, id)
			if !ok {
				break
			}
			entries = append(entries, e)
		}
		if len(entries) == 0 || len(entries) < len(n.Content) {
			large = append(large, i)
			continue
		}
		a := newAssembly(f)
		for _, e := range entries {
			p := planFor(e)
			u := p.byBlob[e.ID]
			if len(u.asms) > 0 && u.asms[len(u.asms)-1] == a {
				continue // a repeat of a blob of this file
			}
			u.asms = append(u.asms, a)
			if len(p.asms) == 0 || p.asms[len(p.asms)-1] != a {
				p.asms = append(p.asms, a)
				a.pending++
			}
		}
	}
	for _, p := range packs {
		g.Go(func() error { return r.restorePack(ctx, p, files) })
	}
	for _, i := range large {
		g.Go(func() error {
			r.restoreLarge(ctx, files[i], nil)
			return nil
		})
	}
}

// checkFiles runs checkFile for every file of a batch, in parallel, and
// records in each whether to write it and whether it may replace what is
// there. A file in a directory this restore made costs nothing.
func (r *restore) checkFiles(files []fileJob) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.opts.Workers)
	for i := range files {
		if files[i].fresh {
			files[i].write = true
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			files[i].write, files[i].replace = r.checkFile(files[i])
			<-sem
		}()
	}
	wg.Wait()
}

// packPlan is what a batch reads from one pack.
type packPlan struct {
	id      blob.ID
	entries []index.Entry // one per blob, in the order first needed
	byBlob  map[blob.ID]*blobUse
	asms    []*assembly // the files of several blobs it delivers to
}

// blobUse is who needs a blob of a pack: single-blob files (by index in
// the batch) and assemblies.
type blobUse struct {
	files []int
	asms  []*assembly
}

// maxGap is the most of a pack a restore reads and throws away rather than
// making another request.
const maxGap = 1 << 20

// restorePack reads what p needs of its pack and hands each blob to the
// files that need it. When it ends, however it ends, the assemblies it
// delivered to hear of it (packDone): the last read of a file finishes it.
func (r *restore) restorePack(ctx context.Context, p *packPlan, files []fileJob) error {
	defer func() {
		for _, a := range p.asms {
			r.packDone(ctx, a)
		}
	}()
	entries := p.entries
	sort.Slice(entries, func(a, b int) bool { return entries[a].Offset < entries[b].Offset })
	bufs := r.getBufs()
	defer r.bufs.Put(bufs)
	give := func(e index.Entry, plain []byte, err error) {
		u := p.byBlob[e.ID]
		for _, i := range u.files {
			if err != nil {
				r.writeLost(ctx, files[i], e.ID, err)
				continue
			}
			r.writeWhole(files[i], plain)
		}
		for _, a := range u.asms {
			r.deliver(a, e.ID, plain, err)
		}
	}
	// One request per stretch of the pack without a large gap: the blobs
	// stream through one at a time, so its length costs no memory.
	for len(entries) > 0 {
		j := 1
		end := entries[0].Offset + entries[0].Length
		for j < len(entries) && entries[j].Offset <= end+maxGap {
			end = max(end, entries[j].Offset+entries[j].Length)
			j++
		}
		run := entries[:j]
		entries = entries[j:]
		delivered := 0
		err := r.repo.LoadPackRange(ctx, p.id, run[0].Offset, end, run, bufs, func(e index.Entry, plain []byte, err error) error {
			delivered++
			if err != nil {
				// This copy is damaged or false (a hostile upload under
				// the blob's ID): another copy may be good (R23).
				plain, err = r.otherCopy(ctx, e, err)
			}
			give(e, plain, err)
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			for _, e := range run[delivered:] {
				plain, err := r.otherCopy(ctx, e, err)
				give(e, plain, err)
			}
		}
	}
	return nil
}

// otherCopy loads a blob whose copy e failed with err through every copy
// the read may use; it returns err if none opens.
func (r *restore) otherCopy(ctx context.Context, e index.Entry, err error) ([]byte, error) {
	if len(r.repo.Copies(ctx, e.Type, e.ID)) < 2 {
		return nil, err
	}
	if r.opts.Log != nil {
		r.opts.Log.Warn("a stored copy of a blob is damaged or false; trying another", "err", err)
	}
	plain, err2 := r.repo.LoadBlob(ctx, e.Type, e.ID)
	if err2 != nil {
		return nil, err
	}
	return plain, nil
}

// restoreLarge restores a file checkFile said to write, blob by blob: a
// few blobs at a time are loaded and decrypted in parallel, then written in
// order. It restores the files the pack reads cannot: empty ones, those a
// blob of which is not in the index, and those a blob of which could not
// be read there. The blobs in lost are not read again: they failed with
// the error given (after every copy was tried).
//
// A blob that cannot be read does not stop the file: the blobs before it
// are written where they belong, the rest are still read, and those after
// the last unreadable one are placed from the end of the file (their
// lengths are known by then). What lies between stays zeros and is
// reported (lossError); the file is complete in size and metadata.
func (r *restore) restoreLarge(ctx context.Context, job fileJob, lost map[blob.ID]error) {
	r.writeFile(job, func(f *fsmeta.File) (bool, error) {
		n := job.node
		w := &contentWriter{f: f, ext: n.Extents}
		var losses []blobLoss
		var lengths []int64 // of each blob after the first lost one
		last := -1          // the last lost blob
		// Each slot of the window reuses its memory from batch to batch:
		// a fresh 4 MiB buffer per blob costs more, in clearing it and in
		// the collector giving it back, than decrypting it.
		const window = 4
		plains := make([][]byte, window)
		errs := make([]error, window)
		var bufs [window]repository.BlobBuffers
		for start := 0; start < len(n.Content); start += window {
			batch := n.Content[start:min(start+window, len(n.Content))]
			var wg sync.WaitGroup
			for i, id := range batch {
				if err, ok := lost[id]; ok {
					errs[i] = err
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					plains[i], errs[i] = r.repo.LoadBlobInto(ctx, blob.Data, id, &bufs[i])
				}()
			}
			wg.Wait()
			if err := ctx.Err(); err != nil {
				return false, err
			}
			for i, id := range batch {
				if errs[i] != nil && lengths == nil {
					lengths = make([]int64, len(n.Content))
				}
				switch {
				case errs[i] != nil:
					losses = append(losses, blobLoss{id: id, err: errs[i]})
					last = start + i
				case lengths != nil:
					lengths[start+i] = int64(len(plains[i]))
				default:
					if err := w.write(plains[i]); err != nil {
						return false, err
					}
				}
				plains[i], errs[i] = nil, nil
			}
		}
		if losses == nil {
			return false, nil
		}
		loss := &lossError{from: w.pos, to: logicalSize(n), blobs: losses}
		var suffix int64
		for _, l := range lengths[last+1:] {
			suffix += l
		}
		if tail := loss.to - suffix; tail >= loss.from {
			w.seek(tail)
			for _, id := range n.Content[last+1:] {
				plain, err := r.repo.LoadBlobInto(ctx, blob.Data, id, &bufs[0])
				if err != nil {
					if ctx.Err() != nil {
						return false, err
					}
					loss.blobs = append(loss.blobs, blobLoss{id: id, err: err})
					break
				}
				if err := w.write(plain); err != nil {
					return false, err
				}
			}
			if len(loss.blobs) == len(losses) {
				loss.to = tail
			}
		}
		r.warn(strings.Join(job.comps, "/"), loss)
		return true, nil
	})
}

// writeLost writes job's file, whose only blob id could not be read (err),
// as zeros of its size, and reports the loss.
func (r *restore) writeLost(ctx context.Context, job fileJob, id blob.ID, err error) {
	if ctx.Err() != nil {
		return
	}
	r.writeFile(job, func(*fsmeta.File) (bool, error) {
		r.warn(strings.Join(job.comps, "/"), &lossError{to: logicalSize(job.node), blobs: []blobLoss{{id: id, err: err}}})
		return true, nil
	})
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// writeFile creates the file at its full size, lets write fill it and
// sets its metadata (see fillFile).
func (r *restore) writeFile(job fileJob, write func(*fsmeta.File) (lost bool, err error)) {
	r.fillFile(job, true, write)
}

// writeWhole writes a file whose whole content is plain. When plain is as
// long as the node says (anything else is a damaged or hostile tree, and
// gets the general path) the file is created empty and written once: no
// ftruncate before or after, two of the dozen system calls a small file
// costs.
func (r *restore) writeWhole(job fileJob, plain []byte) {
	write := func(f *fsmeta.File) (bool, error) {
		_, err := f.Write(plain)
		return false, err
	}
	r.fillFile(job, uint64(len(plain)) != job.node.Size, write)
}

// fillFile writes job's file under a temporary name in its directory
// (createFile), lets write fill it, and puts it in place (finishFile).
// write reports whether it lost content (and warned about it).
func (r *restore) fillFile(job fileJob, sized bool, write func(*fsmeta.File) (lost bool, err error)) {
	f, ok := r.createFile(job, sized)
	if !ok {
		return
	}
	lost, err := write(f)
	r.finishFile(job, f, sized, lost, err)
}

// createFile creates job's file under a temporary name in its directory,
// at its full size when sized (so what is not written is a hole, and the
// size is set again at the end). A failure is reported.
func (r *restore) createFile(job fileJob, sized bool) (*fsmeta.File, bool) {
	var size int64
	if sized {
		size = int64(job.node.Size)
	}
	f, err := r.fs.CreateTemp(job.comps, size)
	if err != nil {
		r.warn(strings.Join(job.comps, "/"), err)
		return nil, false
	}
	return f, true
}

// finishFile ends the writing of job's file f (createFile), whose content
// writing failed with err or is complete, and closes it. A complete file
// is verified if asked (unless lost: what content was lost is reported
// already), gets its metadata through the descriptor, and only then is
// renamed to its name. A file whose writing failed or was interrupted
// never appears under its name; the temporary one is removed. The restore
// flushes everything it wrote once, at its end (flush).
func (r *restore) finishFile(job fileJob, f *fsmeta.File, sized, lost bool, err error) {
	path := strings.Join(job.comps, "/")
	if err == nil && sized {
		err = f.Truncate(int64(job.node.Size))
	}
	if err == nil && r.opts.Verify && !lost {
		err = r.verifyFile(f, job.node)
		if err == nil {
			r.verified.Add(1)
		}
	}
	// Metadata after the content (and its verification), through the
	// descriptor still open.
	var metaErr error
	if err == nil {
		metaErr = r.fs.SetFileMetadata(f, job.comps, withATime(job.node))
	}
	if err == nil {
		err = f.Commit(job.replace)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if r.ctx.Err() == nil {
			r.warn(path, err)
		}
		return
	}
	if metaErr != nil {
		r.warn(path, metaErr)
	}
	r.files.Add(1)
	r.bytes.Add(job.node.Size)
	r.wrote(job.node.Size)
}

// verifyFile re-reads what was written and compares it with the content
// identity recorded at backup time.
func (r *restore) verifyFile(f *fsmeta.File, n *snapshot.Node) error {
	ok, err := r.contentMatches(f, n)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if !ok {
		return errVerify
	}
	return nil
}

// startProgress reports progress until the returned function is called
// (more than once is fine), which reports a last time. TotalBytes grows
// while the walk finds files.
func (r *restore) startProgress(start time.Time) func() {
	if r.opts.Progress == nil {
		return func() {}
	}
	report := func(final bool) {
		r.opts.Progress(Progress{Files: r.files.Load(), Bytes: r.bytes.Load(), TotalBytes: r.total.Load(), TotalFiles: r.found.Load(), Elapsed: time.Since(start), Final: final})
	}
	stop := ticker.Every(ticker.Interval, func() { report(false) })
	return sync.OnceFunc(func() {
		stop()
		report(true)
	})
}

// Dump writes a file's content to w; holes of a sparse file as zeros.
func Dump(ctx context.Context, repo *repository.Repository, n *snapshot.Node, w io.Writer) error {
	if !repo.CanReadContent() {
		return fmt.Errorf("dumping %w", crypto.ErrNeedsOwner)
	}
	if n.Type != snapshot.TypeFile {
		return fmt.Errorf("%s is a %s, not a file", n.Name, n.Type)
	}
	if n.HardLinkTo != "" {
		return fmt.Errorf("%s is a hard link to %s; dump that path", n.Name, n.HardLinkTo)
	}
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	var pos int64
	zeros := func(upto int64) error {
		for pos < upto {
			k := min(upto-pos, 1<<20)
			if _, err := w.Write(make([]byte, k)); err != nil {
				return err
			}
			pos += k
		}
		return nil
	}
	ext := n.Extents
	extIdx, extOff := 0, int64(0)
	for _, id := range n.Content {
		plain, err := repo.LoadBlob(ctx, blob.Data, id)
		if err != nil {
			return err
		}
		for len(plain) > 0 {
			k := int64(len(plain))
			if ext != nil {
				if extIdx >= len(ext) {
					return errors.New("content longer than its extents")
				}
				if err := zeros(ext[extIdx].Offset + extOff); err != nil {
					return err
				}
				k = min(k, ext[extIdx].Length-extOff)
			}
			if _, err := w.Write(plain[:k]); err != nil {
				return err
			}
			pos += k
			plain = plain[k:]
			if ext != nil {
				extOff += k
				if extOff == ext[extIdx].Length {
					extIdx++
					extOff = 0
				}
			}
		}
	}
	return zeros(int64(n.Size))
}
