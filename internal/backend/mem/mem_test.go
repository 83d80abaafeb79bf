package mem_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/backendtest"
	"github.com/cairnbackup/cairn/internal/backend/mem"
)

var ctx = context.Background()

func TestSuite(t *testing.T) {
	backendtest.RunSuite(t, func(t *testing.T) backend.Backend { return mem.New() })
}

func TestClock(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	be := mem.NewWithClock(func() time.Time { return now })
	data := []byte("snapshot")
	h := backend.Handle{Type: backend.Snapshots, Name: backend.NameOf(data)}
	if err := be.Save(ctx, h, backend.NewByteReader(data)); err != nil {
		t.Fatal(err)
	}
	saved := now
	now = now.Add(time.Hour) // ModTime is the time of Save, not of Stat
	fi, err := be.Stat(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime.Equal(saved) {
		t.Errorf("stat ModTime = %v, want %v", fi.ModTime, saved)
	}
	err = be.List(ctx, backend.Snapshots, func(fi backend.FileInfo) error {
		if !fi.ModTime.Equal(saved) {
			t.Errorf("list ModTime = %v, want %v", fi.ModTime, saved)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFault(t *testing.T) {
	be := mem.New()
	a, b := []byte("a"), []byte("b")
	ha := backend.Handle{Type: backend.Data, Name: backend.NameOf(a)}
	hb := backend.Handle{Type: backend.Data, Name: backend.NameOf(b)}
	if err := be.Save(ctx, ha, backend.NewByteReader(a)); err != nil {
		t.Fatal(err)
	}

	var seen []string
	be.SetFault(func(op string, h backend.Handle) error {
		seen = append(seen, op+" "+h.String())
		if h == hb || op == mem.OpRemove {
			return mem.ErrFault
		}
		return nil
	})
	if err := be.Save(ctx, hb, backend.NewByteReader(b)); !errors.Is(err, mem.ErrFault) {
		t.Fatalf("save with fault: got %v, want ErrFault", err)
	}
	if err := be.Remove(ctx, ha); !errors.Is(err, mem.ErrFault) {
		t.Fatalf("remove with fault: got %v, want ErrFault", err)
	}
	if _, err := backend.LoadAll(ctx, be, ha); err != nil {
		t.Fatalf("load unaffected by fault: %v", err)
	}
	if _, err := be.Stat(ctx, ha); err != nil {
		t.Fatalf("stat unaffected by fault: %v", err)
	}
	if err := be.List(ctx, backend.Data, func(backend.FileInfo) error { return nil }); err != nil {
		t.Fatalf("list unaffected by fault: %v", err)
	}
	want := []string{"save " + hb.String(), "remove " + ha.String(), "load " + ha.String(), "stat " + ha.String(), "list data/"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("hook saw %q, want %q", seen, want)
	}

	be.SetFault(nil)
	if _, err := be.Stat(ctx, hb); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("failed save stored something: stat got %v", err)
	}
	if err := be.Save(ctx, hb, backend.NewByteReader(b)); err != nil {
		t.Fatalf("save after clearing fault: %v", err)
	}
}

func TestCorrupt(t *testing.T) {
	be := mem.New()
	data := []byte("index fragment")
	h := backend.Handle{Type: backend.Index, Name: backend.NameOf(data)}
	if err := be.Save(ctx, h, backend.NewByteReader(data)); err != nil {
		t.Fatal(err)
	}
	err := be.Corrupt(h, func(b []byte) []byte {
		b[0] ^= 1
		return b[:5]
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := backend.LoadAll(ctx, be, h)
	if err != nil {
		t.Fatal(err)
	}
	if want := "hndex"; string(got) != want {
		t.Errorf("after corrupt: got %q, want %q", got, want)
	}
	if fi, err := be.Stat(ctx, h); err != nil || fi.Size != 5 {
		t.Errorf("stat after corrupt: %+v, %v; want size 5", fi, err)
	}
	if string(data) != "index fragment" {
		t.Errorf("corrupt changed the caller's buffer: %q", data)
	}
	missing := backend.Handle{Type: backend.Index, Name: backend.NameOf([]byte("x"))}
	if err := be.Corrupt(missing, func(b []byte) []byte { return b }); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("corrupt missing: got %v, want ErrNotFound", err)
	}
}

func TestReplaceConfig(t *testing.T) {
	be := mem.New()
	h := backend.Handle{Type: backend.Config, Name: "config"}
	if err := be.ReplaceConfig(ctx, backend.NewByteReader([]byte("v1"))); err != nil {
		t.Fatalf("replace missing config: %v", err)
	}
	if err := be.Save(ctx, h, backend.NewByteReader([]byte("v2"))); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("save over config: got %v, want ErrExists", err)
	}
	short := &shortReader{backend.NewByteReader([]byte("v"))}
	if err := be.ReplaceConfig(ctx, short); err == nil {
		t.Fatal("replace through short reader succeeded")
	}
	if err := be.ReplaceConfig(ctx, backend.NewByteReader([]byte("v3"))); err != nil {
		t.Fatal(err)
	}
	if got, err := backend.LoadAll(ctx, be, h); err != nil || string(got) != "v3" {
		t.Fatalf("config = %q, %v; want v3", got, err)
	}
}

// shortReader claims one byte more than it has.
type shortReader struct{ *backend.ByteReader }

func (r *shortReader) Length() int64 { return r.ByteReader.Length() + 1 }
