package backend_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/mem"
)

func TestValidName(t *testing.T) {
	valid := backend.NameOf([]byte("x"))
	tests := []struct {
		h    backend.Handle
		want error
	}{
		{backend.Handle{Type: backend.Config, Name: "config"}, nil},
		{backend.Handle{Type: backend.Data, Name: valid}, nil},
		{backend.Handle{Type: backend.Locks, Name: valid}, nil},
		{backend.Handle{Type: backend.Config, Name: valid}, backend.ErrInvalidName},
		{backend.Handle{Type: backend.Data, Name: "config"}, backend.ErrInvalidName},
		{backend.Handle{Type: backend.Data, Name: strings.ToUpper(valid)}, backend.ErrInvalidName},
		{backend.Handle{Type: backend.Data, Name: valid[:63]}, backend.ErrInvalidName},
		{backend.Handle{Type: backend.Data, Name: valid + "a"}, backend.ErrInvalidName},
		{backend.Handle{Type: backend.Data, Name: "../" + valid[3:]}, backend.ErrInvalidName},
		{backend.Handle{Type: backend.Data, Name: ""}, backend.ErrInvalidName},
		{backend.Handle{Type: "", Name: valid}, backend.ErrInvalidName},
		{backend.Handle{Type: "Data", Name: valid}, backend.ErrInvalidName},
	}
	for _, tt := range tests {
		err := backend.ValidName(tt.h)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("ValidName(%q/%q) = %v, want %v", tt.h.Type, tt.h.Name, err, tt.want)
		}
	}
}

// FuzzValidName: whatever a listing turns up, a name ValidName accepts is
// safe to use as a single path element.
func FuzzValidName(f *testing.F) {
	f.Add("data", backend.NameOf(nil))
	f.Add("config", "config")
	f.Add("data", "../config")
	f.Fuzz(func(t *testing.T, typ, name string) {
		h := backend.Handle{Type: backend.FileType(typ), Name: name}
		if backend.ValidName(h) != nil {
			return
		}
		if !backend.ValidType(h.Type) {
			t.Fatalf("accepted unknown type %q", typ)
		}
		if strings.ContainsAny(name, "/\\.\x00") || name == "" {
			t.Fatalf("accepted unsafe name %q", name)
		}
		if h.Type != backend.Config && strings.Trim(name, "0123456789abcdef") != "" {
			t.Fatalf("accepted non-hex name %q", name)
		}
	})
}

func TestNameOf(t *testing.T) {
	data := []byte("hello\n")
	sum := sha256.Sum256(data)
	if got, want := backend.NameOf(data), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("NameOf = %s, want %s", got, want)
	}
	// sha256sum of "hello\n", computed independently.
	if got := backend.NameOf(data); got != "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" {
		t.Fatalf("NameOf = %s", got)
	}
}

func TestHandleString(t *testing.T) {
	if got := (backend.Handle{Type: backend.Config, Name: "config"}).String(); got != "config" {
		t.Errorf("config handle = %q", got)
	}
	if got := (backend.Handle{Type: backend.Data, Name: "ab"}).String(); got != "data/ab" {
		t.Errorf("data handle = %q", got)
	}
}

func TestContentNamed(t *testing.T) {
	for _, typ := range backend.AllTypes {
		if got, want := backend.ContentNamed(typ), typ != backend.Config; got != want {
			t.Errorf("ContentNamed(%s) = %v", typ, got)
		}
		if !backend.ValidType(typ) {
			t.Errorf("ValidType(%s) = false", typ)
		}
	}
}

func TestByteReader(t *testing.T) {
	rd := backend.NewByteReader([]byte("abcdef"))
	buf := make([]byte, 4)
	n, err := rd.Read(buf)
	if n != 4 || err != nil || string(buf) != "abcd" {
		t.Fatalf("read: %d %v %q", n, err, buf[:n])
	}
	rest, err := io.ReadAll(rd)
	if err != nil || string(rest) != "ef" {
		t.Fatalf("rest: %q %v", rest, err)
	}
	if rd.Length() != 6 {
		t.Fatalf("length after reading = %d, want 6", rd.Length())
	}
	if err := rd.Rewind(); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(rd)
	if err != nil || string(all) != "abcdef" {
		t.Fatalf("after rewind: %q %v", all, err)
	}
}

func TestLoadAll(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	data := []byte("snapshot")
	h := backend.Handle{Type: backend.Snapshots, Name: backend.NameOf(data)}
	if _, err := backend.LoadAll(ctx, be, h); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("LoadAll missing: %v", err)
	}
	if err := be.Save(ctx, h, backend.NewByteReader(data)); err != nil {
		t.Fatal(err)
	}
	got, err := backend.LoadAll(ctx, be, h)
	if err != nil || string(got) != string(data) {
		t.Fatalf("LoadAll = %q, %v", got, err)
	}
}
