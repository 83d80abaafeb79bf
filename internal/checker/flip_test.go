package checker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/repository"
)

// Which part of cairn catches a flipped byte, by file type. Every file but
// config is content-named, so the SHA-256 of its bytes (no key needed)
// catches any change; behind that, a second, keyed layer catches it too:
//
//	file        keyless        keyed
//	config      —              owner Ed25519 signature (pinned in every key file)
//	configs/    name = SHA-256 owner Ed25519 signature
//	keys/       name = SHA-256 XChaCha20-Poly1305 under the password (header is AD)
//	rosters/    name = SHA-256 owner Ed25519 signature
//	snapshots/  name = SHA-256 writer Ed25519 signature over the statement, which
//	                           hashes both sealed sections; age AEADs inside
//	index/      name = SHA-256 age (metadata identity) AEAD
//	data/       name = SHA-256 blob AES-256-GCM (session key), header age AEAD,
//	                           and every blob re-hashed to its ID (R6)
//
// The test flips bytes at the head, the tail and spread through every
// stored file and requires that opening the repository or `check
// --read-data` reports it, naming the file where the check runs.
func TestFlipAnyByteIsDetected(t *testing.T) {
	ctx := context.Background()
	be, open := newRepo(t)
	var files []backend.FileInfo
	for _, typ := range backend.AllTypes {
		must(t, be.List(ctx, typ, func(fi backend.FileInfo) error {
			files = append(files, fi)
			return nil
		}))
	}
	if len(files) < 7 {
		t.Fatalf("only %d files stored", len(files))
	}
	checked := 0
	for _, fi := range files {
		for _, pos := range positions(fi.Size) {
			flip := func(b []byte) []byte { b[pos] ^= 0x40; return b }
			must(t, be.Corrupt(fi.Handle, flip))
			detected, how := detect(ctx, be, fi)
			must(t, be.Corrupt(fi.Handle, flip)) // flip back
			if !detected {
				t.Errorf("%s: flipped byte %d of %d not detected", fi.Handle, pos, fi.Size)
			} else if testing.Verbose() && pos == 0 {
				t.Logf("%s: %s", fi.Handle, how)
			}
			checked++
		}
	}
	// The repository is whole again.
	rep, err := checker.Check(ctx, open(), checker.Options{ReadData: true})
	must(t, err)
	if !rep.OK() {
		t.Fatalf("after flipping back: %v", rep.Problems)
	}
	t.Logf("%d flips in %d files detected", checked, len(files))
}

func positions(size int64) []int64 {
	var out []int64
	seen := map[int64]bool{}
	add := func(p int64) {
		if p >= 0 && p < size && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for i := int64(0); i < 6; i++ {
		add(i)
		add(size - 1 - i)
	}
	for i := int64(1); i < 8; i++ {
		add(size * i / 8)
	}
	return out
}

// detect reports whether opening the repository fails or a full check
// finds a problem naming the file.
func detect(ctx context.Context, be backend.Backend, fi backend.FileInfo) (bool, string) {
	r, err := repository.Open(ctx, be, []byte("pw"), repository.Options{KDF: &cheapKDF})
	if err != nil {
		return true, "open: " + err.Error()
	}
	rep, err := checker.Check(ctx, r, checker.Options{ReadData: true})
	if err != nil {
		return true, "check: " + err.Error()
	}
	for _, p := range rep.Problems {
		if strings.Contains(p.File, fi.Name[:min(8, len(fi.Name))]) {
			return true, "check: " + p.String()
		}
	}
	return false, fmt.Sprint(rep.Problems)
}
