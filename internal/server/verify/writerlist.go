package verify

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"sort"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// WriterListRequest checks a writer list request for repoPath: signed by
// the writer key it names, over the path and a time within
// restapi.WriterListSkew of now (403 otherwise), so tenant credentials
// alone never get a writer's list.
func WriterListRequest(req *restapi.WriterListRequest, repoPath string, now time.Time) error {
	if len(req.Writer) != ed25519.PublicKeySize || !ed25519.Verify(req.Writer, restapi.WriterListMessage(repoPath, req.Time, req.Writer), req.Sig) {
		return refusef(http.StatusForbidden, restapi.CodeForbidden, "writer list request: not signed by the writer key it names")
	}
	if d := now.Sub(req.Time); d > restapi.WriterListSkew || d < -restapi.WriterListSkew {
		return refusef(http.StatusForbidden, restapi.CodeForbidden, "writer list request: its time is %v from the server's clock (more than %v)", d.Round(time.Second), restapi.WriterListSkew)
	}
	return nil
}

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
