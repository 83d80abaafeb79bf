package repohttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/cairnbackup/cairn/internal/backend"
)

func TestBodyDeadline(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	b := &BodyLimit{start: start, grace: 10 * time.Second, idle: 30 * time.Second, rate: 1000}
	// At the start, 1000 bytes: grace + 1 s.
	if d := b.deadline(start, 1000); !d.Equal(start.Add(11 * time.Second)) {
		t.Fatalf("first read: %v", d.Sub(start))
	}
	// 100 000 bytes read: grace + 101 s from the start, but no read may
	// wait more than idle.
	b.n = 100_000
	now := start.Add(20 * time.Second)
	if d := b.deadline(now, 1000); !d.Equal(now.Add(30 * time.Second)) {
		t.Fatalf("idle bound: %v", d.Sub(start))
	}
	// A client behind the rate gets a deadline in the past.
	b.n = 0
	now = start.Add(time.Minute)
	if d := b.deadline(now, 1000); !d.Before(now) {
		t.Fatalf("a slow body's deadline %v is not past", d.Sub(start))
	}
}

func TestUploadSpool(t *testing.T) {
	dir := t.TempDir()
	body := bytes.Repeat([]byte("cairn "), 10_000)
	mem := semaphore.NewWeighted(100_000)
	u, err := NewUpload(context.Background(), dir, bytes.NewReader(body), int64(len(body)), 0, mem, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name() != backend.NameOf(body) || u.Size() != int64(len(body)) {
		t.Fatalf("name %s size %d", u.Name(), u.Size())
	}
	if es, _ := readDirNames(dir); len(es) != 0 {
		t.Fatalf("the spool file is visible: %v", es)
	}
	if _, err := u.Bytes(100); err == nil {
		t.Fatal("Bytes over its cap")
	}
	got, err := u.ReadRange(6, 12)
	if err != nil || string(got) != "cairn cairn " {
		t.Fatalf("ReadRange: %q %v", got, err)
	}
	all, err := u.Bytes(1 << 20)
	if err != nil || !bytes.Equal(all, body) {
		t.Fatalf("Bytes: %v", err)
	}
	if mem.TryAcquire(100_000 - 60_000 - 12 + 1) {
		t.Fatal("the upload's memory is not charged")
	}
	if _, err := u.ReadRange(0, 200_000); err == nil {
		t.Fatal("a read past the end")
	}
	var stored bytes.Buffer
	rd := u.Reader()
	io.Copy(&stored, rd)
	rd.Rewind()
	io.Copy(&stored, rd)
	if stored.Len() != 2*len(body) || rd.Length() != int64(len(body)) {
		t.Fatalf("reader: %d bytes", stored.Len())
	}
	u.Close()
	if !mem.TryAcquire(100_000) {
		t.Fatal("Close did not give the memory back")
	}
	// More than the whole budget is refused, not waited for.
	u2, err := NewUpload(context.Background(), dir, bytes.NewReader(body), int64(len(body)), 0, semaphore.NewWeighted(10), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer u2.Close()
	if _, err := u2.Bytes(1 << 20); err == nil || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("over the budget: %v", err)
	}
	// A short body fails.
	var ie *InterruptedError
	if _, err := NewUpload(context.Background(), dir, bytes.NewReader(body[:10]), 11, 0, mem, 100_000); !errors.As(err, &ie) || ie.Got != 10 || ie.Size != 11 {
		t.Fatalf("a short body: %v, want an InterruptedError after 10 of 11 bytes", err)
	}
	// A body of unknown length (-1) is taken up to the limit, no further.
	u3, err := NewUpload(context.Background(), dir, bytes.NewReader(body[:10]), -1, 10, mem, 100_000)
	if err != nil || u3.Size() != 10 || u3.Name() != backend.NameOf(body[:10]) {
		t.Fatalf("a body of unknown length at the limit: %v", err)
	}
	u3.Close()
	if _, err := NewUpload(context.Background(), dir, bytes.NewReader(body[:11]), -1, 10, mem, 100_000); !errors.Is(err, ErrTooLong) {
		t.Fatalf("a body of unknown length past the limit: %v, want ErrTooLong", err)
	}
}

func readDirNames(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out, err
}

// rawRequest writes a request's head (no blank line) to the test server
// and returns the connection.
