package snapshot

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
)

// MetaHeader is sealed to the metadata identity: what the server may read.
// Never put a path, file name or content-derived plaintext here.
type MetaHeader struct {
	HostLabel string    `json:"host_label"`
	Tags      []string  `json:"tags,omitempty"`
	PathGroup string    `json:"path_group"` // hex HMAC(K_group, sorted paths)
	Pages     []blob.ID `json:"pages"`      // manifest page blob IDs, in order
	Blobs     uint64    `json:"blobs"`      // blobs the snapshot reaches
	NewBlobs  uint64    `json:"new_blobs"`  // blobs this backup uploaded
	NewBytes  uint64    `json:"new_bytes"`  // stored bytes this backup uploaded
	Time      time.Time `json:"time"`       // as claimed by the writer
}

// OwnerHeader is sealed to the owner: the snapshot's private description.
type OwnerHeader struct {
	Paths    []string  `json:"paths"`
	Hostname string    `json:"hostname"`
	Username string    `json:"username,omitempty"`
	Excludes []string  `json:"excludes,omitempty"`
	Program  string    `json:"program"`
	Time     time.Time `json:"time"`
	Summary  Summary   `json:"summary"`
	// Origin names the snapshot this one was copied or re-tagged from
	// (`cairn copy`, `cairn tag`); nil for a backup.
	Origin *Origin `json:"origin,omitempty"`
}

// Origin is where a copied or re-tagged snapshot came from: the first
// snapshot of the chain of copies and re-tags, so copying it again is
// recognised.
type Origin struct {
	Repo     string `json:"repo"`     // repository ID, hex
	Snapshot string `json:"snapshot"` // snapshot ID (file name), hex
}

// Summary counts what a backup did.
type Summary struct {
	FilesNew       uint64 `json:"files_new"`
	FilesChanged   uint64 `json:"files_changed"`
	FilesUnchanged uint64 `json:"files_unmodified"`
	DirsNew        uint64 `json:"dirs_new"`
	DirsChanged    uint64 `json:"dirs_changed"`
	DirsUnchanged  uint64 `json:"dirs_unmodified"`
	Errors         uint64 `json:"errors"`
	BytesRead      uint64 `json:"bytes_read"`
	BytesTotal     uint64 `json:"bytes_total"`
	BlobsNew       uint64 `json:"blobs_new"`
	BytesAdded     uint64 `json:"bytes_added"` // stored bytes uploaded
}

// MarshalJSONHeader encodes a header.
func MarshalJSONHeader(v any) ([]byte, error) { return json.Marshal(v) }

// UnmarshalMeta decodes a metadata header.
func UnmarshalMeta(b []byte) (*MetaHeader, error) {
	var h MetaHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: metadata header: %v", ErrFormat, err)
	}
	return &h, nil
}

// UnmarshalOwner decodes an owner header.
func UnmarshalOwner(b []byte) (*OwnerHeader, error) {
	var h OwnerHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: owner header: %v", ErrFormat, err)
	}
	return &h, nil
}
