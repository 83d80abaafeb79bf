package rest_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/rest"
)

// TestSmallReadsOfAPackShareARequest loads many small ranges of one pack,
// as a restore loads trees: they cost one GET of a block, each gets its
// own bytes, and a range past the pack's end is still an error.
func TestSmallReadsOfAPackShareARequest(t *testing.T) {
	pack := make([]byte, 300<<10)
	for i := range pack {
		pack[i] = byte(i * 7 % 251)
	}
	name := strings.Repeat("ab", 32)
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/config":
			http.ServeContent(w, r, "config", time.Time{}, bytes.NewReader([]byte("config")))
		case "/data/" + name:
			gets.Add(1)
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(pack))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	u, err := rest.ParseURL("rest:" + srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	be, err := rest.Open(ctx, rest.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	h := backend.Handle{Type: backend.Data, Name: name}
	load := func(length int, offset int64) ([]byte, error) {
		var got []byte
		err := be.Load(ctx, h, length, offset, func(rd io.Reader) error {
			var err error
			got, err = io.ReadAll(rd)
			return err
		})
		return got, err
	}
	for off := int64(0); off+2000 <= int64(len(pack)); off += 9000 {
		got, err := load(2000, off)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pack[off:off+2000]) {
			t.Fatalf("2000 bytes at %d: wrong bytes", off)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Fatalf("%d GETs for small reads of one block, want 1", n)
	}
	if _, err := load(100, int64(len(pack))-50); err == nil {
		t.Fatal("a range past the end of the pack loaded")
	}
}
