package snapshot

import (
	"encoding/base64"
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

// metaJSON is MetaHeader's encoding: the page IDs as one base64 string
// of their concatenation (43 bytes a page), not a JSON array of 32
// numbers each (about 116 bytes a page: 270 KB in the header of a snapshot
// of 300,000 files).
type metaJSON struct {
	HostLabel string    `json:"host_label"`
	Tags      []string  `json:"tags,omitempty"`
	PathGroup string    `json:"path_group"`
	Pages     string    `json:"pages"`
	Blobs     uint64    `json:"blobs"`
	NewBlobs  uint64    `json:"new_blobs"`
	NewBytes  uint64    `json:"new_bytes"`
	Time      time.Time `json:"time"`
}

// MarshalJSON encodes the header with its page IDs in base64.
func (h MetaHeader) MarshalJSON() ([]byte, error) {
	pages := make([]byte, 0, 32*len(h.Pages))
	for _, p := range h.Pages {
		pages = append(pages, p[:]...)
	}
	return json.Marshal(metaJSON{HostLabel: h.HostLabel, Tags: h.Tags, PathGroup: h.PathGroup,
		Pages: base64.StdEncoding.EncodeToString(pages), Blobs: h.Blobs, NewBlobs: h.NewBlobs,
		NewBytes: h.NewBytes, Time: h.Time})
}

// UnmarshalJSON decodes MarshalJSON's encoding; pages must be canonical
// base64 of whole IDs.
func (h *MetaHeader) UnmarshalJSON(b []byte) error {
	var m metaJSON
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(m.Pages)
	if err != nil || len(raw)%32 != 0 || base64.StdEncoding.EncodeToString(raw) != m.Pages {
		return fmt.Errorf("pages: not base64 of whole page IDs")
	}
	*h = MetaHeader{HostLabel: m.HostLabel, Tags: m.Tags, PathGroup: m.PathGroup, Blobs: m.Blobs,
		NewBlobs: m.NewBlobs, NewBytes: m.NewBytes, Time: m.Time}
	if len(raw) > 0 {
		h.Pages = make([]blob.ID, len(raw)/32)
		for i := range h.Pages {
			copy(h.Pages[i][:], raw[32*i:])
		}
	}
	return nil
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
