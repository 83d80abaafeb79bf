package local

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
)

// Load's reader, copied into a writer that takes readers (as an HTTP
// response does, to send the file with sendfile), gives exactly the
// range, also after part of it was read, and a file that shrank under
// it is io.ErrUnexpectedEOF there too.
func TestLoadIntoReaderFrom(t *testing.T) {
	be := newTestBackend(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	h := saveBytes(t, be, backend.Data, data)

	load := func(length int, offset int64, fn func(rd io.Reader) error) {
		t.Helper()
		if err := be.Load(ctx, h, length, offset, fn); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer // an io.ReaderFrom
	load(5000, 777, func(rd io.Reader) error {
		if _, ok := rd.(io.WriterTo); !ok {
			t.Error("Load's reader hands nothing over: no WriteTo")
		}
		if r, ok := rd.(interface{ Remaining() int64 }); !ok || r.Remaining() != 5000 {
			t.Error("Load's reader says nothing of its length")
		}
		_, err := io.Copy(&buf, rd)
		return err
	})
	if !bytes.Equal(buf.Bytes(), data[777:5777]) {
		t.Fatalf("range copied into a ReaderFrom: %d bytes, not the range's", buf.Len())
	}
	buf.Reset()
	load(0, 0, func(rd io.Reader) error {
		head := make([]byte, 100)
		if _, err := io.ReadFull(rd, head); err != nil {
			return err
		}
		buf.Write(head)
		_, err := io.Copy(&buf, rd)
		return err
	})
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("read in part, then copied: %d bytes, not the file's", buf.Len())
	}

	err := be.Load(ctx, h, 0, 1000, func(rd io.Reader) error {
		if err := os.Truncate(be.path(h), 50000); err != nil {
			t.Fatal(err)
		}
		_, err := io.Copy(&buf, rd)
		return err
	})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("file shrank while copied: %v, want io.ErrUnexpectedEOF", err)
	}
}
