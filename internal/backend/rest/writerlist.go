package rest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/restapi"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// maxWriterList bounds the answer read: 33 bytes per blob of the last
// snapshot, as JSON base64, plus the statements.
const maxWriterList = 1 << 30

// WriterList asks the cairn server for the snapshots signer signed in this
// repository and the blob-ID set of its last one (R16): a writer's dedup
// scope when its cache is gone. now is the client's clock; the server
// refuses a request more than restapi.WriterListSkew away from its own.
func (b *Backend) WriterList(ctx context.Context, signer ed25519.PrivateKey, now time.Time) (*restapi.WriterList, error) {
	u := *b.base
	if b.hasAuth {
		u.User = url.UserPassword(b.user, b.password)
	}
	return FetchWriterList(ctx, b.client, &u, signer, now)
}

// FetchWriterList is WriterList for a repository URL (with credentials),
// without a Backend.
func FetchWriterList(ctx context.Context, client *http.Client, repoURL *url.URL, signer ed25519.PrivateKey, now time.Time) (*restapi.WriterList, error) {
	u := *repoURL
	u.User = nil
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery = restapi.WriterListQuery
	repoPath := strings.Trim(u.Path, "/")
	pub := signer.Public().(ed25519.PublicKey)
	req := restapi.WriterListRequest{Writer: pub, Time: now.UTC()}
	req.Sig = ed25519.Sign(signer, restapi.WriterListMessage(repoPath, req.Time, pub))
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
		err := restapi.Err(resp.StatusCode, resp.Header.Get(restapi.HeaderError), strings.TrimSpace(string(msg)))
		return nil, fmt.Errorf("ask %s for the writer's snapshots: %s: %w", u.Redacted(), resp.Status, err)
	}
	var list restapi.WriterList
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxWriterList)).Decode(&list); err != nil {
		return nil, fmt.Errorf("writer list: %w", err)
	}
	if err := list.Check(); err != nil {
		return nil, err
	}
	return &list, nil
}

// WriterRefs decodes a writer list's blob-ID set, sorted as the server
// sends it (and sorted again: a dedup scope is searched by bisection).
func WriterRefs(l *restapi.WriterList) ([]snapshot.Ref, error) {
	if err := l.Check(); err != nil {
		return nil, err
	}
	refs := make([]snapshot.Ref, len(l.LastRefs)/restapi.WriterRefSize)
	for i := range refs {
		b := l.LastRefs[i*restapi.WriterRefSize:]
		refs[i].Type = blob.Type(b[0])
		copy(refs[i].ID[:], b[1:restapi.WriterRefSize])
	}
	return snapshot.SortRefs(refs), nil
}
