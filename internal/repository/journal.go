package repository

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/cairnbackup/cairn/internal/atomicfile"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/pack"
)

// Journal: each backup session records, for each pack it has stored, the
// pack's name and plaintext header, fsynced before the pack counts as
// stored. A session killed before it wrote its index fragments leaves its
// packs in its journal; a later session indexes them instead of uploading
// again.
//
// Every session has a journal file of its own, journals/<random>.journal,
// and holds an exclusive flock on it while it lives. A session adopts only
// journals whose lock it can take, so two backups running at once with one
// cache never index each other's packs (a pack indexed by both would be
// listed twice), and never remove each other's journals. The lock dies
// with its process, so a killed session's journal is adopted by the next.
// The single "journal" file of earlier versions is adopted the same way.
//
// Record: pack id [32] | header length u32 | header.
type journal struct {
	mu   sync.Mutex
	f    *os.File   // this session's journal, locked; nil without a cache
	path string     // its path
	held []*os.File // adopted journals of dead sessions, locked
}

const journalDir = "journals"

// openJournal creates and locks this session's journal. The file is locked
// under a temporary name and only then renamed to a name adopters look at,
// so no other session can take it for a dead one's.
func (c *Cache) openJournal() (*journal, error) {
	if c.dir == "" {
		return &journal{}, nil
	}
	dir := filepath.Join(c.dir, journalDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	f, err := os.CreateTemp(dir, ".new-*")
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("lock journal: %w", err)
	}
	var rnd [12]byte
	rand.Read(rnd[:])
	p := filepath.Join(dir, hex.EncodeToString(rnd[:])+".journal")
	if err := os.Rename(f.Name(), p); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &journal{f: f, path: p}, nil
}

func (j *journal) add(id blob.ID, hdr []byte) error {
	if j.f == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	rec := make([]byte, 0, 36+len(hdr))
	rec = append(rec, id[:]...)
	rec = binary.LittleEndian.AppendUint32(rec, uint32(len(hdr)))
	rec = append(rec, hdr...)
	if _, err := j.f.Write(rec); err != nil {
		return err
	}
	return j.f.Sync()
}

// adoptDead locks and reads the journals of sessions that are gone (their
// lock is free), keeping them locked until done or release.
func (c *Cache) adoptDead(j *journal) ([]pack.IndexPack, error) {
	if c.dir == "" {
		return nil, nil
	}
	paths := []string{filepath.Join(c.dir, "journal")} // written by earlier versions
	ents, err := os.ReadDir(filepath.Join(c.dir, journalDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".journal") {
			paths = append(paths, filepath.Join(c.dir, journalDir, e.Name()))
		}
	}
	var out []pack.IndexPack
	for _, p := range paths {
		if p == j.path {
			continue
		}
		f, ok, err := lockIfDead(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		recs, err := readJournalRecords(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		j.mu.Lock()
		j.held = append(j.held, f)
		j.mu.Unlock()
		out = append(out, recs...)
	}
	return out, nil
}

// lockIfDead opens p and takes its lock without waiting. It reports false
// if a live session holds it, or if p was removed or replaced meanwhile (a
// session that adopted it and finished).
func lockIfDead(p string) (*os.File, bool, error) {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock journal %s: %w", p, err)
	}
	held, err1 := f.Stat()
	now, err2 := os.Stat(p)
	if err1 != nil || err2 != nil || !os.SameFile(held, now) {
		f.Close()
		return nil, false, nil
	}
	return f, true, nil
}

// readJournalRecords returns the packs recorded in a journal; a torn last
// record (a crash mid-append) is ignored.
func readJournalRecords(f *os.File) ([]pack.IndexPack, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	rd := bufio.NewReader(f)
	var out []pack.IndexPack
	for {
		var head [36]byte
		if _, err := io.ReadFull(rd, head[:]); err != nil {
			return out, nil
		}
		l := binary.LittleEndian.Uint32(head[32:])
		if l > pack.MaxHeaderSize {
			return out, nil
		}
		hdr := make([]byte, l)
		if _, err := io.ReadFull(rd, hdr); err != nil {
			return out, nil
		}
		var p pack.IndexPack
		copy(p.Pack[:], head[:32])
		p.Header = hdr
		out = append(out, p)
	}
}

// done removes this session's journal and the adopted ones once their
// packs are indexed, then lets their locks go.
func (j *journal) done() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var errs []error
	for _, f := range j.held {
		if err := os.Remove(f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		f.Close()
	}
	j.held = nil
	if j.f != nil {
		if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		errs = append(errs, j.f.Close())
		j.f = nil
	}
	return errors.Join(errs...)
}

// release lets every lock go and keeps the journals, for the next session.
func (j *journal) release() {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, f := range j.held {
		f.Close()
	}
	j.held = nil
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}
