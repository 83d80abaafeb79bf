// Command largerepo makes and measures the large repository of issue 17
// (bench/large.sh runs it).
//
//	largerepo gen -r LOCATION -n BLOBS [--key-file F] [--cache-dir D]
//	largerepo index -r LOCATION [--key-file F] [--cache-dir D]
//
// gen stores one snapshot of n files of one tiny unique data blob each
// (64 bytes of text), 1,000 files a directory, through the repository
// package: real packs with signed headers, index fragments, trees,
// manifest pages and a signed snapshot, so every cairn command treats it
// as a backup. Run against a rest: URL it goes through `cairn server`,
// which validates every upload and the commit.
//
// index opens the repository, loads its index and prints the heap the
// index took (runtime.MemStats after a GC, before and after LoadIndex)
// per blob.
//
// The password comes from CAIRN_PASSWORD_FILE or CAIRN_PASSWORD.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/client"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// filesPerDir is how many files each generated directory holds.
const filesPerDir = 1000

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	loc := fs.String("r", os.Getenv("CAIRN_REPOSITORY"), "repository location")
	keyFile := fs.String("key-file", "", "key file (the owner key of a repository on a server)")
	cacheDir := fs.String("cache-dir", "", "cache directory (empty: none)")
	n := fs.Int("n", 1_000_000, "gen: number of files (= data blobs)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "gen: goroutines sealing blobs")
	seed := fs.Uint64("seed", 1, "gen: makes the blobs unique to this repository")
	_ = fs.Parse(os.Args[2:])
	if *loc == "" {
		fatal(errors.New("no repository: pass -r"))
	}
	ctx := context.Background()
	repo, err := client.Open(ctx, client.Options{Location: *loc, KeyFile: *keyFile, CacheDir: *cacheDir, Password: password})
	if err != nil {
		fatal(err)
	}
	switch cmd {
	case "gen":
		err = gen(ctx, repo, *n, *workers, *seed)
	case "index":
		err = measureIndex(ctx, repo)
	default:
		usage()
	}
	if err != nil {
		fatal(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: largerepo gen|index -r LOCATION [-n BLOBS] [-key-file F] [-cache-dir D]")
	os.Exit(2)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "largerepo:", err)
	os.Exit(1)
}

func password() ([]byte, error) {
	if f := os.Getenv("CAIRN_PASSWORD_FILE"); f != "" {
		b, err := os.ReadFile(f)
		return bytes.TrimRight(b, "\r\n"), err
	}
	if p, ok := os.LookupEnv("CAIRN_PASSWORD"); ok {
		return []byte(p), nil
	}
	return nil, errors.New("set CAIRN_PASSWORD_FILE or CAIRN_PASSWORD")
}

// content is file i's content: 64 bytes, unique per seed and i.
func content(seed uint64, i int) []byte {
	b := fmt.Appendf(nil, "large repository %d file %012d ", seed, i)
	for len(b) < 63 {
		b = append(b, '.')
	}
	return append(b[:63], '\n')
}

// gen stores one snapshot of n files in directories of filesPerDir.
func gen(ctx context.Context, repo *repository.Repository, n, workers int, seed uint64) error {
	start := time.Now()
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	sess, err := repo.NewSession(ctx, nil)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			sess.Abort()
		}
	}()
	ndirs := (n + filesPerDir - 1) / filesPerDir
	dirs := make([]blob.ID, ndirs)
	refs := make([]snapshot.Ref, 0, n+ndirs+1)
	var mu sync.Mutex
	var done atomic.Int64
	mtime := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	next := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]snapshot.Ref, 0, filesPerDir+1)
			for d := range next {
				t := &snapshot.Tree{}
				local = local[:0]
				for i := d * filesPerDir; i < min(n, (d+1)*filesPerDir); i++ {
					c := content(seed, i)
					id, _, err := sess.SaveBlob(ctx, blob.Data, c)
					if err != nil {
						errc <- err
						return
					}
					nd := snapshot.Node{Name: fmt.Sprintf("f%07d", i-d*filesPerDir), Type: snapshot.TypeFile,
						Mode: 0o644, MTime: mtime, CTime: mtime, Size: uint64(len(c)), Links: 1}
					nd.SetContent([]blob.ID{id}, sha256.Sum256(c))
					t.Nodes = append(t.Nodes, nd)
					local = append(local, snapshot.Ref{Type: blob.Data, ID: id})
				}
				enc, err := t.Encode()
				if err != nil {
					errc <- err
					return
				}
				tid, _, err := sess.SaveBlob(ctx, blob.Tree, enc)
				if err != nil {
					errc <- err
					return
				}
				local = append(local, snapshot.Ref{Type: blob.Tree, ID: tid})
				mu.Lock()
				dirs[d] = tid
				refs = append(refs, local...)
				mu.Unlock()
				if k := done.Add(int64(len(local) - 1)); k/1_000_000 != (k-int64(len(local)-1))/1_000_000 {
					fmt.Fprintf(os.Stderr, "largerepo: %d files stored, %s\n", k, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	var genErr error
feed:
	for d := range ndirs {
		select {
		case next <- d:
		case genErr = <-errc:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if genErr == nil {
		select {
		case genErr = <-errc:
		default:
		}
	}
	if genErr != nil {
		return genErr
	}

	root := &snapshot.Tree{}
	for d, id := range dirs {
		root.Nodes = append(root.Nodes, snapshot.Node{Name: fmt.Sprintf("d%06d", d), Type: snapshot.TypeDir,
			Mode: 0o755, MTime: mtime, CTime: mtime, Links: 2, Subtree: &id})
	}
	top := &snapshot.Tree{Nodes: []snapshot.Node{{Name: "large", Type: snapshot.TypeDir, Mode: 0o755, MTime: mtime, CTime: mtime, Links: 2}}}
	for _, t := range []*snapshot.Tree{root, top} {
		enc, err := t.Encode()
		if err != nil {
			return err
		}
		id, _, err := sess.SaveBlob(ctx, blob.Tree, enc)
		if err != nil {
			return err
		}
		refs = append(refs, snapshot.Ref{Type: blob.Tree, ID: id})
		if t == root {
			top.Nodes[0].Subtree = &id
		} else {
			paths := []string{"/large"}
			now := time.Now()
			host, _ := os.Hostname()
			snap, err := sess.Commit(ctx, repository.CommitInput{Root: id, Refs: refs, Time: now,
				Meta: snapshot.MetaHeader{HostLabel: host, PathGroup: repo.PathGroup(paths)},
				Owner: snapshot.OwnerHeader{Paths: paths, Hostname: host, Program: "largerepo", Time: now,
					Summary: snapshot.Summary{FilesNew: uint64(n), DirsNew: uint64(ndirs + 2), BlobsNew: uint64(len(refs)), BytesRead: 64 * uint64(n), BytesTotal: 64 * uint64(n)}}})
			if err != nil {
				return err
			}
			committed = true
			_ = sess.Close()
			fmt.Printf("snapshot %s: %d files, %d directories, %d blobs, %s\n", snap.ID, n, ndirs, len(refs), time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

// measureIndex prints the heap LoadIndex keeps, per blob.
func measureIndex(ctx context.Context, repo *repository.Repository) error {
	before := heap()
	start := time.Now()
	if err := repo.LoadIndex(ctx); err != nil {
		return err
	}
	took := time.Since(start)
	after := heap()
	blobs := repo.Index().Len()
	fmt.Printf("index: %d blobs, %d packs, loaded in %s, heap %d bytes, %.1f B/blob\n",
		blobs, len(repo.Index().Packs()), took.Round(time.Millisecond), after-before, float64(after-before)/float64(max(blobs, 1)))
	runtime.KeepAlive(repo)
	return nil
}

func heap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
