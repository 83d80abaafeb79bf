package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// maxOwnerAnswer bounds the answer to an owner request read: one item
// per snapshot, and a prune report naming packs.
const maxOwnerAnswer = 256 << 20

// OwnerRequest sends a sealed owner request (trust.SealOwnerRequest) to
// the cairn server, which forgets or prunes as it says and answers what
// it did. A request the server refuses as not the owner's wraps
// crypto.ErrNeedsOwner.
func (b *Backend) OwnerRequest(ctx context.Context, sealed []byte) (*restapi.OwnerAnswer, error) {
	u := *b.base
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery = restapi.OwnerRequestQuery
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(sealed))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/octet-stream")
	if b.hasAuth {
		hr.SetBasicAuth(b.user, b.password)
	}
	resp, err := b.client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("ask %s to carry out the owner's request: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		code := resp.Header.Get(restapi.HeaderError)
		err := restapi.Err(resp.StatusCode, code, strings.TrimSpace(string(msg)))
		if code == restapi.CodeNotOwner {
			err = fmt.Errorf("%w (%w)", err, crypto.ErrNeedsOwner)
		}
		return nil, err
	}
	var a restapi.OwnerAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxOwnerAnswer)).Decode(&a); err != nil {
		return nil, fmt.Errorf("the server's answer to the owner request: %w", err)
	}
	return &a, nil
}
