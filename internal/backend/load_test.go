package backend_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
)

func TestExactReader(t *testing.T) {
	tests := []struct {
		body string
		n    int64
		want string
		err  error
	}{
		{"abcdef", 6, "abcdef", nil},
		{"abcdef", 4, "abcd", nil}, // reads nothing past n
		{"abc", 6, "abc", io.ErrUnexpectedEOF},
		{"abc", -1, "abc", nil}, // length unknown
		{"", 0, "", nil},
	}
	for _, tt := range tests {
		got, err := io.ReadAll(backend.ExactReader(strings.NewReader(tt.body), tt.n))
		if string(got) != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("%q with n %d: got %q, %v; want %q, %v", tt.body, tt.n, got, err, tt.want, tt.err)
		}
	}
}

func TestLoadPastEndAndListConfig(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	var listed []string
	list := func(fi backend.FileInfo) error { listed = append(listed, fi.Name); return nil }
	if err := backend.ListConfig(ctx, be, list); err != nil || len(listed) != 0 {
		t.Fatalf("no config: listed %v, %v", listed, err)
	}
	h := backend.Handle{Type: backend.Config, Name: "config"}
	if err := be.Save(ctx, h, backend.NewByteReader([]byte("0123456789"))); err != nil {
		t.Fatal(err)
	}
	if err := backend.ListConfig(ctx, be, list); err != nil || len(listed) != 1 || listed[0] != "config" {
		t.Fatalf("config stored: listed %v, %v", listed, err)
	}

	called := false
	err := backend.LoadPastEnd(ctx, be, h, 0, 10, func(rd io.Reader) error {
		b, err := io.ReadAll(rd)
		called = len(b) == 0
		return err
	})
	if err != nil || !called {
		t.Fatalf("empty range at the end: called with nothing %v, %v", called, err)
	}
	for _, r := range [][2]int64{{1, 10}, {0, 11}, {5, 12}} {
		err := backend.LoadPastEnd(ctx, be, h, int(r[0]), r[1], func(io.Reader) error {
			t.Fatalf("range %d+%d: fn called", r[1], r[0])
			return nil
		})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("range %d+%d past the end: %v, want io.ErrUnexpectedEOF", r[1], r[0], err)
		}
	}
	gone := backend.Handle{Type: backend.Snapshots, Name: backend.NameOf(nil)}
	if err := backend.LoadPastEnd(ctx, be, gone, 0, 0, func(io.Reader) error { return nil }); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
}
