package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// IdentityQuery is the query that, on a repository's base URL
// (GET /{client}/{repo}/?identity), returns the server's public identity
// as JSON. It needs the client's credentials; restic never sends it.
const IdentityQuery = "identity"

// Public returns the server's public identity, as clients enrol it.
func (id *Identity) Public() (repository.ServerPublic, error) {
	r, err := id.MetaRecipient()
	if err != nil {
		return repository.ServerPublic{}, err
	}
	return repository.ServerPublic{MetaRecipient: r, CoordPub: id.SignPublic()}, nil
}

func (s *Server) serveIdentity(q *request) {
	pub, err := s.data.Identity.Public()
	if err != nil {
		q.refuse(http.StatusInternalServerError, restapi.CodeInternal, "server identity: %v", err)
		return
	}
	body, _ := json.Marshal(pub)
	q.w.Header().Set("Content-Type", "application/json")
	q.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.w.WriteHeader(http.StatusOK)
	q.w.Write(body)
}

// FetchIdentity asks the server behind a rest: repository URL (with
// credentials in it) for its public identity. The caller must compare
// its fingerprint with one obtained out of band before trusting it
// (R21); transport security is the caller's check too.
func FetchIdentity(ctx context.Context, client *http.Client, repoURL *url.URL) (repository.ServerPublic, error) {
	var pub repository.ServerPublic
	u := *repoURL
	u.User = nil
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery = IdentityQuery
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return pub, err
	}
	if repoURL.User != nil {
		pw, _ := repoURL.User.Password()
		req.SetBasicAuth(repoURL.User.Username(), pw)
	}
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return pub, fmt.Errorf("ask %s for its identity: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return pub, err
	}
	if resp.StatusCode != http.StatusOK {
		return pub, fmt.Errorf("ask %s for its identity: %s: %s", u.Redacted(), resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &pub); err != nil {
		return pub, fmt.Errorf("server identity: %w (is this a cairn server?)", err)
	}
	if err := pub.Validate(); err != nil {
		return pub, err
	}
	return pub, nil
}

// ErrFingerprint: the server's fingerprint is not the one expected.
var ErrFingerprint = errors.New("server fingerprint mismatch")
