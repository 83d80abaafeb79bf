package repair

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
	"github.com/cairnbackup/cairn/internal/pack"
	"github.com/cairnbackup/cairn/internal/repository"
)

// copyKey names one copy of a blob: the pack it is in and where.
type copyKey struct {
	pack   blob.ID
	offset uint32
	typ    blob.Type
	id     blob.ID
}

func keyOf(e index.Entry) copyKey { return copyKey{e.Pack, e.Offset, e.Type, e.ID} }

// salvagePack reads the stored bytes of damaged pack id (size bytes) and
// opens each of its entries, which must be sorted by offset: every blob
// that decrypts and re-hashes to its ID is good (AEAD per blob: damage
// elsewhere in the pack does not touch it), and keep is called with its
// sealed bytes. It returns the good copies. A pack cut short leaves the
// blobs past its end unread; any other read error is returned.
func salvagePack(ctx context.Context, repo *repository.Repository, id blob.ID, size int64, entries []index.Entry, keep func(index.Entry, []byte) error) (map[copyKey]bool, error) {
	good := map[copyKey]bool{}
	var readable []index.Entry
	for _, e := range entries {
		if int64(e.Offset)+int64(e.Length) <= size {
			readable = append(readable, e)
		}
	}
	if len(readable) == 0 {
		return good, nil
	}
	start, end := readable[0].Offset, readable[len(readable)-1].Offset+readable[len(readable)-1].Length
	h := backend.Handle{Type: backend.Data, Name: id.String()}
	done := 0 // entries handled, across retries of the load
	var keepErr error
	var sealed []byte
	err := repo.Backend().Load(ctx, h, int(end-start), int64(start), func(rd io.Reader) error {
		pos := start
		for i, e := range readable {
			if e.Offset < pos { // overlaps the one before: a false index
				continue
			}
			if _, err := io.CopyN(io.Discard, rd, int64(e.Offset-pos)); err != nil {
				return err
			}
			if cap(sealed) < int(e.Length) {
				sealed = make([]byte, e.Length)
			}
			sealed = sealed[:e.Length]
			if _, err := io.ReadFull(rd, sealed); err != nil {
				return err
			}
			pos = e.Offset + e.Length
			if i < done {
				continue
			}
			done = i + 1
			if _, err := repo.OpenBlob(e, sealed); err != nil {
				continue // damaged (or false): lost unless a copy is elsewhere
			}
			good[keyOf(e)] = true
			if err := keep(e, sealed); err != nil {
				keepErr = err
				return err
			}
		}
		return nil
	})
	if keepErr != nil {
		return nil, keepErr
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read damaged pack %s: %w", id.Short(), err)
	}
	return good, nil
}

// repacker copies sealed blobs verbatim, with their key slots, into new
// packs of one domain each: a salvaged blob goes into its damaged pack's
// domain (R23), signed by the coordinator key as prune's repack is, so it
// stands for exactly what the damaged copy stood for.
type repacker struct {
	repo    *repository.Repository
	target  int
	writers map[blob.Domain]*pack.Writer
	written []pack.IndexPack
}

func newRepacker(repo *repository.Repository) *repacker {
	target := repo.Config().PackSize
	if target <= 0 {
		target = repository.DefaultPackSize
	}
	return &repacker{repo: repo, target: target, writers: map[blob.Domain]*pack.Writer{}}
}

func (r *repacker) add(ctx context.Context, e index.Entry, sealed []byte) error {
	w := r.writers[e.Domain]
	if w == nil {
		w = pack.NewWriter(r.target + 1<<20)
		r.writers[e.Domain] = w
	}
	if err := r.repo.CopySealed(w, e, sealed); err != nil {
		return err
	}
	if w.Size() >= r.target {
		return r.flush(ctx, e.Domain)
	}
	return nil
}

func (r *repacker) flush(ctx context.Context, dom blob.Domain) error {
	w := r.writers[dom]
	delete(r.writers, dom)
	if w == nil || w.Count() == 0 {
		return nil
	}
	ip, err := r.repo.SavePack(ctx, w, dom)
	if err != nil {
		return err
	}
	r.written = append(r.written, ip)
	return nil
}

// finish stores the packs still being filled and one index fragment
// listing every new pack, and returns the new packs.
func (r *repacker) finish(ctx context.Context) ([]pack.IndexPack, error) {
	doms := make([]blob.Domain, 0, len(r.writers))
	for d := range r.writers {
		doms = append(doms, d)
	}
	slices.SortFunc(doms, func(a, b blob.Domain) int { return bytes.Compare(a[:], b[:]) })
	for _, d := range doms {
		if err := r.flush(ctx, d); err != nil {
			return nil, err
		}
	}
	if len(r.written) > 0 {
		if _, err := r.repo.WriteIndexFragment(ctx, r.written); err != nil {
			return nil, err
		}
	}
	return r.written, nil
}

// sortEntries sorts a pack's entries by offset and drops duplicates (a
// pack listed by two fragments lists each blob twice).
func sortEntries(es []index.Entry) []index.Entry {
	slices.SortFunc(es, func(a, b index.Entry) int { return cmp.Compare(a.Offset, b.Offset) })
	return slices.CompactFunc(es, func(a, b index.Entry) bool {
		return a.Offset == b.Offset && a.Length == b.Length && a.ID == b.ID && a.Type == b.Type
	})
}
