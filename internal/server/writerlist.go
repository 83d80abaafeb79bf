package server

// A writer's own snapshot list (R16). A writer cannot read the index or
// other snapshots' headers, so in server mode it asks the server for its
// dedup scope: the statements it signed (seq, arrival time on the
// server's clock, statement hash) and the blob-ID set of its last one,
// which the server reads from the reference manifest with its metadata
// identity. The request is signed with the writer's key over the
// repository path and a timestamp, and only statements signed by that
// key are returned; tenant credentials alone are not enough, so one
// writer of a client never learns another writer's blob IDs.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// WriterListQuery is the query of POST /{client}/{repo}/?writer-snapshots.
const WriterListQuery = "writer-snapshots"

// Writer-list limits.
const (
	writerListSkew  = 5 * time.Minute // how far a request's time may be from the server's
	writerListEvery = 2 * time.Second // at most one request per client this often
)

// WriterListRequest asks for the snapshots Writer signed; Sig is Writer's
// signature over writerListMessage(repo path, Time, Writer).
type WriterListRequest struct {
	Writer ed25519.PublicKey `json:"writer"`
	Time   time.Time         `json:"time"`
	Sig    []byte            `json:"sig"`
}

func writerListMessage(repo string, t time.Time, writer ed25519.PublicKey) []byte {
	var b bytes.Buffer
	b.WriteString("cairn writer snapshot list v1\x00")
	b.WriteString(repo)
	b.WriteByte(0)
	b.WriteString(t.UTC().Format(time.RFC3339Nano))
	b.WriteByte(0)
	b.Write(writer)
	return b.Bytes()
}

// WriterStatement is one of the writer's stored snapshots.
type WriterStatement struct {
	ID            string    `json:"id"`
	Seq           uint64    `json:"seq"`
	Time          time.Time `json:"time"` // receipt time (server clock), else the storage's time
	StatementHash string    `json:"statement_hash"`
}

// WriterList is the answer: the writer's statements, oldest seq first,
// and the blob IDs its last snapshot reaches (33 bytes each: type ‖ ID,
// sorted).
type WriterList struct {
	Snapshots []WriterStatement `json:"snapshots"`
	LastRefs  []byte            `json:"last_refs"`
}

// Refs decodes LastRefs.
func (l *WriterList) Refs() ([]snapshot.Ref, error) {
	if len(l.LastRefs)%33 != 0 {
		return nil, fmt.Errorf("writer list: blob-ID set of %d bytes is not a multiple of 33", len(l.LastRefs))
	}
	refs := make([]snapshot.Ref, len(l.LastRefs)/33)
	for i := range refs {
		b := l.LastRefs[i*33:]
		refs[i].Type = blob.Type(b[0])
		copy(refs[i].ID[:], b[1:33])
	}
	return refs, nil
}

// writerLimiter allows each client one writer list per writerListEvery.
type writerLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (l *writerLimiter) allow(client string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	if t, ok := l.last[client]; ok && now.Sub(t) < writerListEvery {
		return writerListEvery - now.Sub(t), false
	}
	l.last[client] = now
	return 0, true
}

func (s *Server) serveWriterList(q *request) {
	ctx, repoPath := q.r.Context(), q.path.RepoPath()
	if wait, ok := s.writerLists.allow(q.client.Name, s.opts.Now()); !ok {
		q.w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		q.refuse(http.StatusTooManyRequests, restapi.CodeTooOften, "client %s may ask for a writer's snapshot list once every %v", q.client.Name, writerListEvery)
		return
	}
	var req WriterListRequest
	if err := json.NewDecoder(io.LimitReader(q.r.Body, 4<<10)).Decode(&req); err != nil {
		q.refuse(http.StatusBadRequest, restapi.CodeBadRequest, "writer list request: %v", err)
		return
	}
	if len(req.Writer) != ed25519.PublicKeySize || !ed25519.Verify(req.Writer, writerListMessage(repoPath, req.Time, req.Writer), req.Sig) {
		q.refuse(http.StatusForbidden, restapi.CodeForbidden, "writer list request: not signed by the writer key it names")
		return
	}
	if d := s.opts.Now().Sub(req.Time); d > writerListSkew || d < -writerListSkew {
		q.refuse(http.StatusForbidden, restapi.CodeForbidden, "writer list request: its time is %v from the server's clock (more than %v)", d.Round(time.Second), writerListSkew)
		return
	}
	be, err := s.repos.get(ctx, repoPath)
	if err != nil {
		q.fail("writer list", err)
		return
	}
	cr, err := s.cairnRepo(ctx, repoPath, be)
	if err != nil {
		q.fail("writer list", err)
		return
	}
	if cr == nil {
		q.refuse(http.StatusNotFound, restapi.CodeNotFound, "%s is not a cairn repository", repoPath)
		return
	}
	list, err := s.writerList(ctx, cr, be, req.Writer)
	if err != nil {
		q.fail("writer list", err)
		return
	}
	body, _ := json.Marshal(list)
	q.log.Info("writer snapshot list", "client", q.client.Name, "repo", repoPath, "writer", hex.EncodeToString(req.Writer[:6]),
		"snapshots", len(list.Snapshots), "last_refs", len(list.LastRefs)/33)
	q.w.Header().Set("Content-Type", "application/json")
	q.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.w.WriteHeader(http.StatusOK)
	q.w.Write(body)
}

func (s *Server) writerList(ctx context.Context, cr *cairnRepo, be backend.Backend, writer ed25519.PublicKey) (*WriterList, error) {
	repo, err := cr.open(ctx, be)
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
	list := &WriterList{Snapshots: []WriterStatement{}}
	last := -1
	for i, sn := range snaps {
		st := sn.File.Statement
		if !writer.Equal(ed25519.PublicKey(st.Writer[:])) {
			continue
		}
		h := st.Hash()
		list.Snapshots = append(list.Snapshots, WriterStatement{ID: sn.ID.String(), Seq: st.Seq, Time: sn.ModTime, StatementHash: hex.EncodeToString(h[:])})
		if last < 0 || st.Seq > snaps[last].File.Statement.Seq {
			last = i
		}
	}
	sort.Slice(list.Snapshots, func(i, j int) bool { return list.Snapshots[i].Seq < list.Snapshots[j].Seq })
	if last >= 0 {
		if err := repo.LoadIndex(ctx); err != nil {
			return nil, err
		}
		refs, err := repo.ManifestRefs(ctx, snaps[last])
		if err != nil {
			return nil, err
		}
		refs = snapshot.SortRefs(refs)
		list.LastRefs = make([]byte, 0, 33*len(refs))
		for _, r := range refs {
			list.LastRefs = append(list.LastRefs, byte(r.Type))
			list.LastRefs = append(list.LastRefs, r.ID[:]...)
		}
	}
	return list, nil
}

// FetchWriterList asks the server behind a rest: repository URL (with
// credentials) for the snapshots signer signed and its last snapshot's
// blob-ID set (R16).
func FetchWriterList(ctx context.Context, client *http.Client, repoURL *url.URL, signer ed25519.PrivateKey, now time.Time) (*WriterList, error) {
	u := *repoURL
	u.User = nil
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery = WriterListQuery
	repoPath := strings.Trim(u.Path, "/")
	pub := signer.Public().(ed25519.PublicKey)
	req := WriterListRequest{Writer: pub, Time: now.UTC()}
	req.Sig = ed25519.Sign(signer, writerListMessage(repoPath, req.Time, pub))
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if repoURL.User != nil {
		pw, _ := repoURL.User.Password()
		hr.SetBasicAuth(repoURL.User.Username(), pw)
	}
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	resp, err := client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("ask %s for the writer's snapshots: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("ask %s for the writer's snapshots: %s: %s", u.Redacted(), resp.Status, strings.TrimSpace(string(msg)))
	}
	var list WriterList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("writer list: %w", err)
	}
	if _, err := list.Refs(); err != nil {
		return nil, err
	}
	return &list, nil
}
