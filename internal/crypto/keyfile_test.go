package crypto_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/crypto"
)

// cheapKDF keeps argon2id fast in tests; one test uses DefaultKDF.
var cheapKDF = crypto.KDFParams{Memory: 8 * 1024, Time: 1, Threads: 1}

// Offsets of the key file's header fields (see the layout in keyfile.go).
const (
	offVersion = 8
	offAlg     = 9
	offMemory  = 10
	offTime    = 14
	offThreads = 18
	offSalt    = 19
	offRole    = 35
	offCreated = 36
	offLabel   = 44 // label length byte; the label follows
)

func sealTestKeyFile(t testing.TB, password string, params crypto.KDFParams, label string, payload []byte) []byte {
	t.Helper()
	buf, err := crypto.SealKeyFile([]byte(password), params, crypto.RoleWriter, 1700000000, label, payload)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestKeyFileRoundTrip(t *testing.T) {
	payload := []byte(`{"secret":"payload"}`)
	buf := sealTestKeyFile(t, "correct horse", cheapKDF, "host1 alice", payload)
	if !bytes.HasPrefix(buf, []byte("CAIRNKEY\x01\x01")) {
		t.Fatalf("key file starts %q", buf[:10])
	}
	h, pt, err := crypto.OpenKeyFile(buf, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pt, payload) {
		t.Fatalf("payload %q, want %q", pt, payload)
	}
	want := crypto.KeyFileHeader{Version: 1, KDF: cheapKDF, Salt: h.Salt, Role: crypto.RoleWriter, Created: 1700000000, Label: "host1 alice"}
	if h != want {
		t.Fatalf("header %+v, want %+v", h, want)
	}
	ph, off, err := crypto.ParseKeyFileHeader(buf)
	if err != nil || ph != h {
		t.Fatalf("ParseKeyFileHeader = %+v, %v", ph, err)
	}
	if off != offLabel+1+len("host1 alice") {
		t.Fatalf("nonce offset %d", off)
	}
	// nonce 24 + payload + tag 16
	if len(buf) != off+24+len(payload)+16 {
		t.Fatalf("key file of %d bytes, want %d", len(buf), off+24+len(payload)+16)
	}
	// Two seals of the same payload differ (fresh salt and nonce).
	if bytes.Equal(buf, sealTestKeyFile(t, "correct horse", cheapKDF, "host1 alice", payload)) {
		t.Fatal("two key files are identical")
	}
}

func TestKeyFileDefaultKDF(t *testing.T) {
	if d := crypto.DefaultKDF; d.Memory < 64*1024 || d.Time < 3 || d.Threads < 4 {
		t.Fatalf("DefaultKDF %+v is below R19's m = 64 MiB, t = 3, p = 4", d)
	}
	buf := sealTestKeyFile(t, "pw", crypto.DefaultKDF, "", []byte("x"))
	h, pt, err := crypto.OpenKeyFile(buf, []byte("pw"))
	if err != nil || string(pt) != "x" || h.KDF != crypto.DefaultKDF {
		t.Fatalf("OpenKeyFile = %+v, %q, %v", h, pt, err)
	}
}

func TestKeyFileWrongPassword(t *testing.T) {
	buf := sealTestKeyFile(t, "right", cheapKDF, "", []byte("secret"))
	for _, pw := range []string{"wrong", "", "right ", "Right"} {
		if _, _, err := crypto.OpenKeyFile(buf, []byte(pw)); !errors.Is(err, crypto.ErrWrongPassword) {
			t.Errorf("password %q: err = %v, want ErrWrongPassword", pw, err)
		}
	}
}

// TestKeyFileTamperedHeader: the header is the AEAD's associated data, so
// lowering the argon2id cost (or changing any other header byte) makes the
// file fail to open rather than open more cheaply.
func TestKeyFileTamperedHeader(t *testing.T) {
	params := crypto.KDFParams{Memory: 16 * 1024, Time: 2, Threads: 2}
	orig := sealTestKeyFile(t, "pw", params, "label", []byte("secret"))
	tamper := map[string]func(b []byte){
		"lower memory":  func(b []byte) { binary.LittleEndian.PutUint32(b[offMemory:], 8*1024) },
		"lower time":    func(b []byte) { binary.LittleEndian.PutUint32(b[offTime:], 1) },
		"fewer threads": func(b []byte) { b[offThreads] = 1 },
		"salt":          func(b []byte) { b[offSalt] ^= 1 },
		"role":          func(b []byte) { b[offRole] = byte(crypto.RoleOwner) },
		"created":       func(b []byte) { b[offCreated] ^= 1 },
		"label":         func(b []byte) { b[offLabel+1] = 'L' },
		"nonce":         func(b []byte) { b[offLabel+1+5] ^= 1 },
		"ciphertext":    func(b []byte) { b[len(b)-20] ^= 1 },
		"tag":           func(b []byte) { b[len(b)-1] ^= 1 },
	}
	for name, f := range tamper {
		b := bytes.Clone(orig)
		f(b)
		if _, _, err := crypto.OpenKeyFile(b, []byte("pw")); !errors.Is(err, crypto.ErrWrongPassword) {
			t.Errorf("%s: err = %v, want ErrWrongPassword", name, err)
		}
	}
	if _, _, err := crypto.OpenKeyFile(orig, []byte("pw")); err != nil {
		t.Fatalf("untampered: %v", err)
	}
}

// TestKeyFileCapsRefusedFast: parameters above the caps are refused from
// the header alone. Running argon2id with any of them would take seconds
// and gigabytes, so the time bound shows it never ran.
func TestKeyFileCapsRefusedFast(t *testing.T) {
	orig := sealTestKeyFile(t, "pw", cheapKDF, "", []byte("secret"))
	cases := map[string]func(b []byte){
		"memory above cap": func(b []byte) { binary.LittleEndian.PutUint32(b[offMemory:], crypto.MaxKDFMemory+1) },
		"memory max u32":   func(b []byte) { binary.LittleEndian.PutUint32(b[offMemory:], 0xffffffff) },
		"memory below 8":   func(b []byte) { binary.LittleEndian.PutUint32(b[offMemory:], 7) },
		"time above cap": func(b []byte) {
			binary.LittleEndian.PutUint32(b[offMemory:], crypto.MaxKDFMemory)
			binary.LittleEndian.PutUint32(b[offTime:], crypto.MaxKDFTime+1)
		},
		"time zero": func(b []byte) { binary.LittleEndian.PutUint32(b[offTime:], 0) },
		"threads above cap": func(b []byte) {
			binary.LittleEndian.PutUint32(b[offMemory:], crypto.MaxKDFMemory)
			b[offThreads] = crypto.MaxKDFThreads + 1
		},
		"threads zero": func(b []byte) { b[offThreads] = 0 },
	}
	for name, f := range cases {
		b := bytes.Clone(orig)
		f(b)
		start := time.Now()
		_, _, err := crypto.OpenKeyFile(b, []byte("pw"))
		if !errors.Is(err, crypto.ErrBadKeyFile) {
			t.Errorf("%s: err = %v, want ErrBadKeyFile", name, err)
		}
		if _, _, err := crypto.ParseKeyFileHeader(b); !errors.Is(err, crypto.ErrBadKeyFile) {
			t.Errorf("%s: ParseKeyFileHeader err = %v, want ErrBadKeyFile", name, err)
		}
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("%s: refusal took %v; argon2id must not run", name, d)
		}
	}
}

func TestKeyFileMalformed(t *testing.T) {
	orig := sealTestKeyFile(t, "pw", cheapKDF, "abc", []byte("secret"))
	cases := map[string][]byte{
		"empty":           nil,
		"magic":           append([]byte("CAIRNKEZ"), orig[8:]...),
		"version 2":       func() []byte { b := bytes.Clone(orig); b[offVersion] = 2; return b }(),
		"unknown kdf":     func() []byte { b := bytes.Clone(orig); b[offAlg] = 2; return b }(),
		"unknown role":    func() []byte { b := bytes.Clone(orig); b[offRole] = 4; return b }(),
		"role zero":       func() []byte { b := bytes.Clone(orig); b[offRole] = 0; return b }(),
		"label past end":  func() []byte { b := bytes.Clone(orig[:offLabel+3]); b[offLabel] = 200; return b }(),
		"no nonce":        orig[:offLabel+4],
		"truncated tag":   orig[:offLabel+4+24+15],
		"fixed part only": orig[:offLabel],
		"too large":       append(bytes.Clone(orig), make([]byte, crypto.MaxKeyFileSize)...),
	}
	for name, b := range cases {
		if _, _, err := crypto.OpenKeyFile(b, []byte("pw")); !errors.Is(err, crypto.ErrBadKeyFile) {
			t.Errorf("%s: err = %v, want ErrBadKeyFile", name, err)
		}
	}
}

func TestKeyFileLabelTruncated(t *testing.T) {
	buf := sealTestKeyFile(t, "pw", cheapKDF, strings.Repeat("x", 300), nil)
	h, pt, err := crypto.OpenKeyFile(buf, []byte("pw"))
	if err != nil || len(h.Label) != 255 || len(pt) != 0 {
		t.Fatalf("label of %d bytes, payload %q, err %v", len(h.Label), pt, err)
	}
}

// TestSealKeyFileRefusesBadParams: SealKeyFile must not write a key file
// that OpenKeyFile refuses, and must not panic (argon2 panics on zero
// threads).
func TestSealKeyFileRefusesBadParams(t *testing.T) {
	for _, p := range []crypto.KDFParams{
		{},
		{Memory: 8 * 1024, Time: 1, Threads: 0},
		{Memory: 8 * 1024, Time: 0, Threads: 1},
		{Memory: 4, Time: 1, Threads: 1},
		{Memory: 8 * 1024, Time: crypto.MaxKDFTime + 1, Threads: 1},
		{Memory: crypto.MaxKDFMemory + 1, Time: 1, Threads: 1},
		{Memory: 8 * 1024, Time: 1, Threads: crypto.MaxKDFThreads + 1},
	} {
		_, err := crypto.SealKeyFile([]byte("pw"), p, crypto.RoleOwner, 0, "", nil)
		if !errors.Is(err, crypto.ErrBadKeyFile) {
			t.Errorf("SealKeyFile(%+v) err = %v, want ErrBadKeyFile", p, err)
		}
	}
	if _, err := crypto.SealKeyFile([]byte("pw"), cheapKDF, crypto.Role(9), 0, "", nil); err == nil {
		t.Error("SealKeyFile with an unknown role succeeded")
	}
}

// FuzzParseKeyFileHeader: never panics; a header that parses re-encodes to
// the bytes it was parsed from.
func FuzzParseKeyFileHeader(f *testing.F) {
	f.Add(sealTestKeyFile(f, "pw", cheapKDF, "host", []byte("payload")))
	f.Add(sealTestKeyFile(f, "pw", crypto.DefaultKDF, "", nil)[:60])
	f.Add([]byte("CAIRNKEY"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, off, err := crypto.ParseKeyFileHeader(b)
		if err != nil {
			return
		}
		if off > len(b) || off != offLabel+1+len(h.Label) {
			t.Fatalf("offset %d for a %d-byte buffer and label %q", off, len(b), h.Label)
		}
		if h.KDF.Memory > crypto.MaxKDFMemory || h.KDF.Time > crypto.MaxKDFTime || h.KDF.Threads > crypto.MaxKDFThreads || !h.Role.Valid() {
			t.Fatalf("accepted header %+v", h)
		}
	})
}

// FuzzOpenKeyFile: never panics. Inputs asking for more than cheap argon2id
// parameters are parsed but not opened, to keep the fuzzer fast.
func FuzzOpenKeyFile(f *testing.F) {
	f.Add(sealTestKeyFile(f, "pw", cheapKDF, "host", []byte(`{"role":2}`)), []byte("pw"))
	f.Add(sealTestKeyFile(f, "pw", crypto.KDFParams{Memory: 8, Time: 1, Threads: 1}, "", nil), []byte("pw"))
	f.Add([]byte("CAIRNKEY\x01\x01"), []byte(""))
	f.Fuzz(func(t *testing.T, b, pw []byte) {
		h, _, err := crypto.ParseKeyFileHeader(b)
		if err != nil {
			if _, _, err2 := crypto.OpenKeyFile(b, pw); err2 == nil {
				t.Fatal("OpenKeyFile accepted what ParseKeyFileHeader refused")
			}
			return
		}
		if h.KDF.Memory > 8*1024 || h.KDF.Time > 1 || h.KDF.Threads > 2 {
			return
		}
		_, _, err = crypto.OpenKeyFile(b, pw)
		if err != nil && !errors.Is(err, crypto.ErrWrongPassword) && !errors.Is(err, crypto.ErrBadKeyFile) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

// TestFileKeyOpensOnlyItsFile: the key UnlockKeyFile derives opens its
// key file without the password (OpenKeyFileWith), and not another file
// sealed under the same password (another salt), nor the file with a
// changed header; a wrong password derives nothing.
func TestFileKeyOpensOnlyItsFile(t *testing.T) {
	payload := []byte(`{"secret":"payload"}`)
	buf := sealTestKeyFile(t, "pw", cheapKDF, "a", payload)
	other := sealTestKeyFile(t, "pw", cheapKDF, "a", payload)
	if _, _, err := crypto.UnlockKeyFile(buf, []byte("not pw")); !errors.Is(err, crypto.ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	h, k, err := crypto.UnlockKeyFile(buf, []byte("pw"))
	if err != nil || h.Label != "a" {
		t.Fatalf("UnlockKeyFile: %+v %v", h, err)
	}
	if _, pt, err := crypto.OpenKeyFileWith(buf, k); err != nil || !bytes.Equal(pt, payload) {
		t.Fatalf("OpenKeyFileWith: %q %v", pt, err)
	}
	if _, _, err := crypto.OpenKeyFileWith(other, k); !errors.Is(err, crypto.ErrWrongFileKey) {
		t.Fatalf("another file with the same password: %v", err)
	}
	changed := bytes.Clone(buf)
	changed[offCreated]++
	if _, _, err := crypto.OpenKeyFileWith(changed, k); !errors.Is(err, crypto.ErrWrongFileKey) {
		t.Fatalf("a changed header: %v", err)
	}
	if _, _, err := crypto.OpenKeyFileWith(buf[:offLabel], k); !errors.Is(err, crypto.ErrBadKeyFile) {
		t.Fatalf("a truncated file: %v", err)
	}
}

// TestHandoff: a hand-over round-trips, names the file it is for, and
// anything but its exact encoding is refused.
func TestHandoff(t *testing.T) {
	buf := sealTestKeyFile(t, "pw", cheapKDF, "a", []byte("{}"))
	_, k, err := crypto.UnlockKeyFile(buf, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	h := crypto.NewHandoff(buf, k)
	enc := h.Encode()
	if len(enc) != crypto.HandoffSize || !bytes.HasPrefix(enc, []byte("CAIRNFK1")) {
		t.Fatalf("encoding %q", enc)
	}
	got, err := crypto.DecodeHandoff(enc)
	if err != nil || got != h || !got.Matches(buf) || got.Matches(append(bytes.Clone(buf), 0)) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	got.Clear()
	if got.Key != (crypto.FileKey{}) {
		t.Error("Clear left the key")
	}
	for _, bad := range [][]byte{nil, enc[:len(enc)-1], append(bytes.Clone(enc), '\n'), append([]byte("CAIRNFK2"), enc[8:]...)} {
		if _, err := crypto.DecodeHandoff(bad); !errors.Is(err, crypto.ErrBadHandoff) {
			t.Errorf("DecodeHandoff(%q): %v", bad, err)
		}
	}
}

// FuzzDecodeHandoff: any bytes decode to a hand-over that encodes back to
// exactly them, or are refused with ErrBadHandoff; never a panic.
func FuzzDecodeHandoff(f *testing.F) {
	h := crypto.Handoff{FileID: [32]byte{1, 2, 3}, Key: crypto.FileKey{4, 5, 6}}
	enc := h.Encode()
	f.Add(enc)
	f.Add(enc[:len(enc)-1])
	f.Add([]byte("CAIRNFK1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := crypto.DecodeHandoff(b)
		if err != nil {
			if !errors.Is(err, crypto.ErrBadHandoff) {
				t.Fatalf("error %v is not ErrBadHandoff", err)
			}
			return
		}
		if !bytes.Equal(got.Encode(), b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, got, got.Encode())
		}
	})
}

// ReadKeyFile refuses a key file larger than MaxKeyFileSize.
func TestReadKeyFileBounded(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(small, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, crypto.MaxKeyFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := crypto.ReadKeyFile(small); err != nil || string(b) != "key" {
		t.Fatalf("small: %q %v", b, err)
	}
	if _, err := crypto.ReadKeyFile(big); !errors.Is(err, crypto.ErrBadKeyFile) {
		t.Fatalf("big: %v", err)
	}
	if _, err := crypto.ReadKeyFile(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}
