package snapshot_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

func TestHeadersRoundTrip(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	meta := &snapshot.MetaHeader{HostLabel: "web-1", Tags: []string{"daily"}, PathGroup: "ab12", Pages: []blob.ID{{1}, {2}}, Blobs: 10, NewBlobs: 2, NewBytes: 300, Time: now}
	b, err := snapshot.MarshalJSONHeader(meta)
	if err != nil {
		t.Fatal(err)
	}
	gm, err := snapshot.UnmarshalMeta(b)
	if err != nil || !reflect.DeepEqual(gm, meta) {
		t.Fatalf("meta header: %+v, %v", gm, err)
	}
	owner := &snapshot.OwnerHeader{Paths: []string{"/home", "/etc"}, Hostname: "web-1.example", Username: "root", Excludes: []string{"*.tmp"}, Program: "cairn test", Time: now, Summary: snapshot.Summary{FilesNew: 1, BytesAdded: 5}}
	b, err = snapshot.MarshalJSONHeader(owner)
	if err != nil {
		t.Fatal(err)
	}
	gotOwner, err := snapshot.UnmarshalOwner(b)
	if err != nil || !reflect.DeepEqual(gotOwner, owner) {
		t.Fatalf("owner header: %+v, %v", gotOwner, err)
	}
	for _, bad := range [][]byte{nil, []byte("{"), []byte(`{"blobs":"x","summary":1}`)} {
		if _, err := snapshot.UnmarshalMeta(bad); !errors.Is(err, snapshot.ErrFormat) {
			t.Errorf("UnmarshalMeta(%q): %v", bad, err)
		}
		if _, err := snapshot.UnmarshalOwner(bad); !errors.Is(err, snapshot.ErrFormat) {
			t.Errorf("UnmarshalOwner(%q): %v", bad, err)
		}
	}
}

// TestMetaHeaderFields pins what the server (metadata identity) can read of
// a snapshot besides its statement; docs/format.md lists the same fields.
// Adding a field here is a trust-model change: it must never carry a path,
// file name or content-derived plaintext.
func TestMetaHeaderFields(t *testing.T) {
	var names []string
	rt := reflect.TypeOf(snapshot.MetaHeader{})
	for i := range rt.NumField() {
		names = append(names, rt.Field(i).Tag.Get("json"))
	}
	want := []string{"host_label", "tags,omitempty", "path_group", "pages", "blobs", "new_blobs", "new_bytes", "time"}
	if !slices.Equal(names, want) {
		t.Fatalf("MetaHeader JSON fields %q, want %q", names, want)
	}
}

// TestOwnerHeaderSealed: the owner header is sealed to the owner; neither a
// writer nor the server can open it, and the metadata header is readable by
// the server but not by the writer that wrote it (R5).
func TestOwnerHeaderSealed(t *testing.T) {
	om, err := crypto.NewOwner("")
	if err != nil {
		t.Fatal(err)
	}
	wm, _ := om.NewWriter()
	sm, _ := om.NewServer()
	owner, _ := om.Parse()
	writer, _ := wm.Parse()
	server, _ := sm.Parse()

	oh, _ := json.Marshal(snapshot.OwnerHeader{Paths: []string{"/secret/path"}, Hostname: "h"})
	mh, _ := json.Marshal(snapshot.MetaHeader{HostLabel: "h"})
	ownerSealed, err := crypto.Seal(oh, writer.OwnerRecipient)
	if err != nil {
		t.Fatal(err)
	}
	metaSealed, err := crypto.Seal(mh, writer.MetaRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.Open(ownerSealed, writer.OwnerIdentity, crypto.ErrNeedsOwner); !errors.Is(err, crypto.ErrNeedsOwner) {
		t.Errorf("writer opening the owner header: %v", err)
	}
	if _, err := crypto.Open(ownerSealed, server.MetaIdentity, crypto.ErrNeedsOwner); !errors.Is(err, crypto.ErrNeedsOwner) {
		t.Errorf("server opening the owner header: %v", err)
	}
	if _, err := crypto.Open(metaSealed, writer.MetaIdentity, crypto.ErrNeedsMetadata); !errors.Is(err, crypto.ErrNeedsMetadata) {
		t.Errorf("writer opening the metadata header: %v", err)
	}
	if b, err := crypto.Open(metaSealed, server.MetaIdentity, crypto.ErrNeedsMetadata); err != nil || string(b) != string(mh) {
		t.Errorf("server opening the metadata header: %v", err)
	}
	if b, err := crypto.Open(ownerSealed, owner.OwnerIdentity, crypto.ErrNeedsOwner); err != nil || string(b) != string(oh) {
		t.Errorf("owner opening the owner header: %v", err)
	}
}

// TestMetaHeaderPagesEncoding: page IDs are one base64 string of their
// concatenation (format.md §12); anything else in "pages" is refused.
func TestMetaHeaderPagesEncoding(t *testing.T) {
	b, err := snapshot.MarshalJSONHeader(&snapshot.MetaHeader{Pages: []blob.ID{{1}, {2}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `"pages":"` + base64.StdEncoding.EncodeToString(append(append([]byte{1}, make([]byte, 31)...), append([]byte{2}, make([]byte, 31)...)...)) + `"`
	if !strings.Contains(string(b), want) {
		t.Fatalf("meta header %s does not hold %s", b, want)
	}
	for _, bad := range []string{
		`{"pages":[[1,0]]}`,          // format 2 before base64
		`{"pages":"AQID"}`,           // 3 bytes: not whole IDs
		`{"pages":"!!!!"}`,           // not base64
		`{"pages":"AQ=="}`,           // 1 byte
		"{\"pages\":\"AAAA\nAAAA\"}", // newline: not canonical
	} {
		if _, err := snapshot.UnmarshalMeta([]byte(bad)); !errors.Is(err, snapshot.ErrFormat) {
			t.Errorf("UnmarshalMeta(%s) = %v, want ErrFormat", bad, err)
		}
	}
}
