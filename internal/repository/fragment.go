package repository

import (
	"context"
	"crypto/ed25519"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/pack"
)

// maxFragmentBytes bounds the pack headers one index fragment carries,
// a session's or maintenance's. A server takes index files of up to 64 MiB (server run
// --max-meta-upload), and the headers of a session of millions of tiny
// blobs take hundreds of MiB (issue 17: 130 MiB at 1.6 M blobs).
const maxFragmentBytes = 16 << 20

// fragmentBatches splits packs into index fragments of at most maxBytes of
// headers (a larger header alone in one) and MaxIndexPacks/16 packs.
func fragmentBatches(packs []pack.IndexPack, maxBytes int) [][]pack.IndexPack {
	var out [][]pack.IndexPack
	for len(packs) > 0 {
		n, size := 0, 0
		for n < len(packs) && n < pack.MaxIndexPacks/16 {
			sz := 36 + len(packs[n].Header) // pack ID, length, header
			if n > 0 && size+sz > maxBytes {
				break
			}
			size += sz
			n++
		}
		out = append(out, packs[:n])
		packs = packs[n:]
	}
	return out
}

// writeFragments stores packs' headers as index fragments signed by
// signer, split by fragmentBatches, and returns the name of the fragment
// listing each pack (names[i] lists packs[i]).
func (r *Repository) writeFragments(ctx context.Context, packs []pack.IndexPack, signer ed25519.PrivateKey) (names []string, err error) {
	limit := r.fragmentBytes
	if limit <= 0 {
		limit = maxFragmentBytes
	}
	for _, batch := range fragmentBatches(packs, limit) {
		sealed, err := crypto.Seal(pack.SignIndex(batch, r.keys.RepoID, signer), r.keys.MetaRecipient)
		if err != nil {
			return nil, err
		}
		if err := saveNamed(ctx, r.be, backend.Index, sealed); err != nil {
			return nil, err
		}
		name := backend.NameOf(sealed)
		ids := make([]blob.ID, len(batch))
		for i, p := range batch {
			names = append(names, name)
			ids[i] = p.Pack
		}
		r.noteFragment(name, ids)
	}
	return names, nil
}
