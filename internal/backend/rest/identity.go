package rest

// Client-side enrolment (R21): before a repository is sealed to a cairn
// server, the client asks the server for its public identity.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
)

// ErrFingerprint: the server's fingerprint is not the one expected.
var ErrFingerprint = errors.New("server fingerprint mismatch")

// FetchIdentity asks the server behind a rest: repository URL (with
// credentials in it) for its public identity. The caller checks the keys
// (repository.ServerPublic.Validate) and must compare the fingerprint with
// one obtained out of band before trusting it (R21); transport security
// is the caller's check too.
func FetchIdentity(ctx context.Context, client *http.Client, repoURL *url.URL) (restapi.Identity, error) {
	var id restapi.Identity
	u := *repoURL
	u.User = nil
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery = restapi.IdentityQuery
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return id, err
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
		return id, fmt.Errorf("ask %s for its identity: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return id, err
	}
	if resp.StatusCode != http.StatusOK {
		return id, fmt.Errorf("ask %s for its identity: %s: %s", u.Redacted(), resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &id); err != nil {
		return id, fmt.Errorf("server identity: %w (is this a cairn server?)", err)
	}
	return id, nil
}
