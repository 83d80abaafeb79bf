package snapshot_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// FuzzUnmarshalMeta: a metadata header is written by any writer and read
// by the server and by prune. UnmarshalMeta never panics, and a header it
// accepts encodes to a fixed point: decoding and encoding it again
// gives the same bytes, the same time, pages and counts.
func FuzzUnmarshalMeta(f *testing.F) {
	seed, _ := snapshot.MarshalJSONHeader(snapshot.MetaHeader{
		HostLabel: "web-1", Tags: []string{"daily"}, PathGroup: "00ff", Pages: []blob.ID{{1}, {2}},
		Blobs: 10, NewBlobs: 2, NewBytes: 4096, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
	})
	f.Add(seed)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"pages":["zz"],"time":"not a time"}`))
	f.Add([]byte(`{"pages":"AQID","time":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := snapshot.UnmarshalMeta(b)
		if err != nil {
			return
		}
		enc, err := snapshot.MarshalJSONHeader(h)
		if err != nil {
			// A year outside 0…9999 decodes but does not encode.
			if h.Time.Year() < 0 || h.Time.Year() > 9999 {
				return
			}
			t.Fatalf("accepted header %+v does not encode: %v", h, err)
		}
		again, err := snapshot.UnmarshalMeta(enc)
		if err != nil {
			t.Fatalf("re-encoded header %s: %v", enc, err)
		}
		if enc2, _ := snapshot.MarshalJSONHeader(again); !bytes.Equal(enc2, enc) {
			t.Fatalf("header %s re-encodes as %s", enc, enc2)
		}
		if !again.Time.Equal(h.Time) || len(again.Pages) != len(h.Pages) || again.Blobs != h.Blobs {
			t.Fatalf("header %+v became %+v", h, again)
		}
	})
}
