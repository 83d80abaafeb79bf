package verify

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"sort"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// WriterList is the writer's own snapshot list (R16): its statements, and
// the refs of its last snapshot, read through the commit check's index.
func (s *Verifier) WriterList(ctx context.Context, cr *Repo, be backend.Backend, writer ed25519.PublicKey) (*restapi.WriterList, error) {
	repo, err := cr.Open(ctx, be)
	if err != nil {
		return nil, err
	}
	snaps, _, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := repo.ApplyReceipts(ctx, snaps); err != nil {
		return nil, err
	}
	list := &restapi.WriterList{Snapshots: []restapi.WriterStatement{}}
	last := -1
	for i, sn := range snaps {
		st := sn.File.Statement
		if !writer.Equal(ed25519.PublicKey(st.Writer[:])) {
			continue
		}
		h := st.Hash()
		list.Snapshots = append(list.Snapshots, restapi.WriterStatement{ID: sn.ID.String(), Seq: st.Seq, Time: sn.ModTime, StatementHash: hex.EncodeToString(h[:])})
		if last < 0 || st.Seq > snaps[last].File.Statement.Seq {
			last = i
		}
	}
	sort.Slice(list.Snapshots, func(i, j int) bool { return list.Snapshots[i].Seq < list.Snapshots[j].Seq })
	if last >= 0 {
		// The commit check's index, followed to now, rather than a load
		// of the whole index per request.
		cr.idxMu.Lock()
		idx, err := cr.followIndex(ctx, be)
		var refs []snapshot.Ref
		if err == nil {
			refs, err = idx.ManifestRefs(ctx, snaps[last])
		}
		cr.idxMu.Unlock()
		if err != nil {
			return nil, err
		}
		refs = snapshot.SortRefs(refs)
		list.LastRefs = make([]byte, 0, restapi.WriterRefSize*len(refs))
		for _, r := range refs {
			list.LastRefs = append(list.LastRefs, byte(r.Type))
			list.LastRefs = append(list.LastRefs, r.ID[:]...)
		}
	}
	return list, nil
}
