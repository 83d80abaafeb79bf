package repair

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/index"
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

// sortEntries sorts a pack's entries by offset and drops duplicates (a
// pack listed by two fragments lists each blob twice).
func sortEntries(es []index.Entry) []index.Entry {
	slices.SortFunc(es, func(a, b index.Entry) int { return cmp.Compare(a.Offset, b.Offset) })
	return slices.CompactFunc(es, func(a, b index.Entry) bool {
		return a.Offset == b.Offset && a.Length == b.Length && a.ID == b.ID && a.Type == b.Type
	})
}
