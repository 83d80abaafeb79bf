// Command gen prepares and checks the benchmark data sets for bench/run.
// Everything it writes is a pure function of its flags (seeded), so two
// machines preparing the same data set get the same bytes.
//
//	gen tree     -kind T|tiny -out DIR [-seed N]
//	gen vimage   -out FILE -zeros N -tar FILE -tarbytes N -random N [-seed N]
//	gen pages    -file FILE [-count 256] [-size 4096] [-seed N]
//	gen append   -dir DIR -state FILE [-ext .c] [-every 300] [-max 100] [-revert]
//	gen manifest -dir DIR
//
// It is stdlib only and not imported by anything in the module.
package main

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "tree":
		err = cmdTree(args)
	case "vimage":
		err = cmdVImage(args)
	case "pages":
		err = cmdPages(args)
	case "append":
		err = cmdAppend(args)
	case "manifest":
		err = cmdManifest(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gen %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gen tree|vimage|pages|append|manifest [flags]")
	os.Exit(2)
}

// stream returns a deterministic pseudo-random byte stream: AES-256-CTR over
// zeros, keyed by SHA-256 of the seed and a purpose label.
func stream(seed uint64, purpose string) cipher.Stream {
	key := sha256.Sum256([]byte(fmt.Sprintf("cairn-bench/%d/%s", seed, purpose)))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err)
	}
	return cipher.NewCTR(block, make([]byte, aes.BlockSize))
}

func randomBytes(s cipher.Stream, p []byte) {
	clear(p)
	s.XORKeyStream(p, p)
}

// ---------------------------------------------------------------- tree

var words = strings.Fields(`static int void struct return if else for while
const unsigned long char size_t error buffer device driver kernel module
lock unlock mutex spin irq dma page memory alloc free init exit read write
open close flags mask offset length count index value state status config
node list head next prev entry table hash key data info ops priv dev ctx
ret err len tmp`)

// text returns n bytes of C-ish text from r: compressible, not trivially so.
func text(r *rand.Rand, header string, n int) []byte {
	var b bytes.Buffer
	b.Grow(n + 64)
	b.WriteString(header)
	col := 0
	for b.Len() < n {
		w := words[r.IntN(len(words))]
		b.WriteString(w)
		col += len(w) + 1
		if col > 60 || r.IntN(12) == 0 {
			b.WriteByte('\n')
			col = 0
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

var epoch = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)

type fileSpec struct {
	path string
	gen  func() []byte
}

func cmdTree(args []string) error {
	fl := flag.NewFlagSet("tree", flag.ExitOnError)
	kind := fl.String("kind", "T", "T (300,000 tiny files in 600 dirs) or tiny (~20 MB smoke-test tree)")
	out := fl.String("out", "", "output directory (must not exist)")
	seed := fl.Uint64("seed", 1, "seed")
	fl.Parse(args)
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("%s exists", *out)
	}
	// dirs[i] lists the files of directory i; each directory is generated from
	// its own seed so the result does not depend on scheduling.
	var dirs []string
	var files func(d int) []fileSpec
	switch *kind {
	case "T":
		for d := 0; d < 600; d++ {
			dirs = append(dirs, fmt.Sprintf("d%03d", d))
		}
		files = func(d int) []fileSpec {
			r := rand.New(rand.NewPCG(*seed, uint64(d)))
			list := make([]fileSpec, 500)
			for f := range list {
				n := 32 + r.IntN(2016)
				hdr := fmt.Sprintf("T %s/f%03d seed %d\n", dirs[d], f, *seed)
				sub := rand.New(rand.NewPCG(*seed^uint64(d)<<20, uint64(f)))
				list[f] = fileSpec{fmt.Sprintf("%s/f%03d", dirs[d], f), func() []byte { return text(sub, hdr, n) }}
			}
			return list
		}
	case "tiny":
		for a := 0; a < 4; a++ {
			for b := 0; b < 10; b++ {
				dirs = append(dirs, fmt.Sprintf("src/a%d/b%d", a, b))
			}
		}
		dirs = append(dirs, "img", "empty")
		files = func(d int) []fileSpec {
			switch dirs[d] {
			case "empty":
				return nil
			case "img":
				return []fileSpec{
					{"img/random.bin", func() []byte {
						p := make([]byte, 8<<20)
						randomBytes(stream(*seed, "tiny/random.bin"), p)
						return p
					}},
					{"img/zeros.bin", func() []byte { return make([]byte, 4<<20) }},
				}
			}
			r := rand.New(rand.NewPCG(*seed, uint64(d)))
			exts := []string{".c", ".c", ".h", ".txt"}
			list := make([]fileSpec, 25)
			for f := range list {
				name := fmt.Sprintf("%s/f%02d%s", dirs[d], f, exts[f%len(exts)])
				n := 256 + r.IntN(16<<10)
				hdr := fmt.Sprintf("/* %s seed %d */\n", name, *seed)
				sub := rand.New(rand.NewPCG(*seed^uint64(d)<<20, uint64(f)))
				list[f] = fileSpec{name, func() []byte { return text(sub, hdr, n) }}
			}
			return list
		}
	default:
		return fmt.Errorf("unknown kind %q", *kind)
	}

	tmp := *out + ".tmp"
	os.RemoveAll(tmp)
	work := make(chan int)
	errs := make(chan error, len(dirs))
	var wg sync.WaitGroup
	for w := 0; w < max(2, runtime.NumCPU()); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				errs <- writeDir(tmp, dirs[d], files(d), d)
			}
		}()
	}
	for d := range dirs {
		work <- d
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	if *kind == "tiny" {
		if err := os.Symlink("a0/b0/f00.c", filepath.Join(tmp, "src/link.c")); err != nil {
			return err
		}
	}
	// Fix directory mtimes bottom-up so the tree is byte-for-byte reproducible.
	var all []string
	filepath.WalkDir(tmp, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			all = append(all, p)
		}
		return err
	})
	for i := len(all) - 1; i >= 0; i-- {
		os.Chtimes(all[i], epoch, epoch)
	}
	return os.Rename(tmp, *out)
}

func writeDir(root, dir string, files []fileSpec, d int) error {
	if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
		return err
	}
	for i, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.WriteFile(p, f.gen(), 0o644); err != nil {
			return err
		}
		t := epoch.Add(time.Duration(d*1000+i) * time.Second)
		if err := os.Chtimes(p, t, t); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------- vimage

func cmdVImage(args []string) error {
	fl := flag.NewFlagSet("vimage", flag.ExitOnError)
	out := fl.String("out", "", "output file")
	zeros := fl.Int64("zeros", 1<<30, "bytes of zeros")
	tarFile := fl.String("tar", "", "compressible source (the uncompressed kernel tar), repeated/truncated")
	tarBytes := fl.Int64("tarbytes", 3<<29, "bytes taken from -tar")
	random := fl.Int64("random", 3<<29, "bytes of seeded random data")
	seed := fl.Uint64("seed", 1, "seed")
	fl.Parse(args)
	if *out == "" || (*tarBytes > 0 && *tarFile == "") {
		return fmt.Errorf("-out and -tar are required")
	}
	f, err := os.Create(*out + ".tmp")
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 4<<20)
	buf := make([]byte, 1<<20)
	// zeros
	for n := *zeros; n > 0; {
		k := min(n, int64(len(buf)))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	// compressible: the tar, repeated and truncated
	for left := *tarBytes; left > 0; {
		t, err := os.Open(*tarFile)
		if err != nil {
			return err
		}
		n, err := io.Copy(w, io.LimitReader(t, left))
		t.Close()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%s is empty", *tarFile)
		}
		left -= n
	}
	// random
	s := stream(*seed, "vimage/random")
	for n := *random; n > 0; {
		k := min(n, int64(len(buf)))
		randomBytes(s, buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(*out+".tmp", *out)
}

// ---------------------------------------------------------------- pages

func cmdPages(args []string) error {
	fl := flag.NewFlagSet("pages", flag.ExitOnError)
	file := fl.String("file", "", "file to modify in place")
	count := fl.Int("count", 256, "pages to overwrite")
	size := fl.Int64("size", 4096, "page size")
	seed := fl.Uint64("seed", 1, "seed")
	fl.Parse(args)
	f, err := os.OpenFile(*file, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pages := st.Size() / *size
	if pages < int64(*count) {
		return fmt.Errorf("%s has only %d pages", *file, pages)
	}
	r := rand.New(rand.NewPCG(*seed, 0x9a9e5))
	seen := map[int64]bool{}
	s := stream(*seed, "pages")
	page := make([]byte, *size)
	for len(seen) < *count {
		p := r.Int64N(pages)
		if seen[p] {
			continue
		}
		seen[p] = true
		randomBytes(s, page)
		if _, err := f.WriteAt(page, p**size); err != nil {
			return err
		}
	}
	return f.Close()
}

// ---------------------------------------------------------------- append

// cmdAppend appends a deterministic paragraph to every Nth file (sorted by
// path, byte order) with the given extension, at most max files. The state
// file records original sizes and mtimes first, so -revert restores the tree
// exactly (content and mtime).
func cmdAppend(args []string) error {
	fl := flag.NewFlagSet("append", flag.ExitOnError)
	dir := fl.String("dir", "", "tree")
	state := fl.String("state", "", "state file (written before modifying, removed by -revert)")
	ext := fl.String("ext", ".c", "extension of candidate files")
	every := fl.Int("every", 300, "take every Nth candidate (the Nth, 2Nth, ...)")
	maxN := fl.Int("max", 100, "at most this many files")
	revert := fl.Bool("revert", false, "undo a previous append using -state")
	fl.Parse(args)
	if *dir == "" || *state == "" {
		return fmt.Errorf("-dir and -state are required")
	}
	if *revert {
		return appendRevert(*dir, *state)
	}
	if _, err := os.Stat(*state); err == nil {
		return fmt.Errorf("%s exists: revert first", *state)
	}
	var cands []string
	err := filepath.WalkDir(*dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() && strings.HasSuffix(p, *ext) {
			rel, _ := filepath.Rel(*dir, p)
			cands = append(cands, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(cands)
	var pick []string
	for i := *every - 1; i < len(cands) && len(pick) < *maxN; i += *every {
		pick = append(pick, cands[i])
	}
	var st bytes.Buffer
	for _, rel := range pick {
		fi, err := os.Stat(filepath.Join(*dir, rel))
		if err != nil {
			return err
		}
		fmt.Fprintf(&st, "%d\t%d\t%s\n", fi.Size(), fi.ModTime().UnixNano(), rel)
	}
	if err := os.WriteFile(*state, st.Bytes(), 0o644); err != nil {
		return err
	}
	for i, rel := range pick {
		r := rand.New(rand.NewPCG(uint64(i), 0xa99e))
		para := text(r, fmt.Sprintf("\n/* cairn bench: appended paragraph %d */\n", i), 1024)
		f, err := os.OpenFile(filepath.Join(*dir, rel), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		_, err = f.Write(append(para, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	fmt.Printf("%d\n", len(pick))
	return nil
}

func appendRevert(dir, state string) error {
	b, err := os.ReadFile(state)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 {
			return fmt.Errorf("bad state line %q", line)
		}
		size, err1 := strconv.ParseInt(parts[0], 10, 64)
		mt, err2 := strconv.ParseInt(parts[1], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("bad state line %q", line)
		}
		p := filepath.Join(dir, parts[2])
		if err := os.Truncate(p, size); err != nil {
			return err
		}
		t := time.Unix(0, mt)
		if err := os.Chtimes(p, t, t); err != nil {
			return err
		}
	}
	return os.Remove(state)
}

// ---------------------------------------------------------------- manifest

// cmdManifest prints one sorted line per entry below dir (dir itself
// excluded): "d MODE PATH", "f MODE SIZE SHA256 PATH", "l TARGET PATH",
// "o MODE PATH". Two trees with equal manifests have equal content, names,
// permissions and symlinks.
func cmdManifest(args []string) error {
	fl := flag.NewFlagSet("manifest", flag.ExitOnError)
	dir := fl.String("dir", "", "tree")
	fl.Parse(args)
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	type entry struct {
		rel, line string
		file      string
		size      int64
		mode      fs.FileMode
	}
	var ents []*entry
	err := filepath.WalkDir(*dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == *dir {
			return nil
		}
		rel, _ := filepath.Rel(*dir, p)
		rel = filepath.ToSlash(rel)
		fi, err := e.Info()
		if err != nil {
			return err
		}
		perm := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		en := &entry{rel: rel, mode: perm}
		switch {
		case e.IsDir():
			en.line = fmt.Sprintf("d %v %s", perm, rel)
		case e.Type().IsRegular():
			en.file, en.size = p, fi.Size()
		case e.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			en.line = fmt.Sprintf("l %s %s", t, rel)
		default:
			en.line = fmt.Sprintf("o %v %s", fi.Mode(), rel)
		}
		ents = append(ents, en)
		return nil
	})
	if err != nil {
		return err
	}
	work := make(chan *entry)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < max(2, runtime.NumCPU()); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for en := range work {
				sum, err := hashFile(en.file, buf)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					continue
				}
				en.line = fmt.Sprintf("f %v %d %s %s", en.mode, en.size, sum, en.rel)
			}
		}()
	}
	for _, en := range ents {
		if en.file != "" {
			work <- en
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	slices.SortFunc(ents, func(a, b *entry) int { return strings.Compare(a.rel, b.rel) })
	w := bufio.NewWriter(os.Stdout)
	for _, en := range ents {
		fmt.Fprintln(w, en.line)
	}
	return w.Flush()
}

func hashFile(p string, buf []byte) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
