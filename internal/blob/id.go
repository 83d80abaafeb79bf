// Package blob defines blob IDs and blob types, the vocabulary shared by the
// format packages (pack, index, snapshot) and everything above them.
package blob

import (
	"encoding/hex"
	"fmt"
)

// ID is a 32-byte identifier: a blob ID (keyed HMAC) or a file name (SHA-256).
type ID [32]byte

// String returns the lowercase hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is all zeros.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses 64 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid ID %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid ID %q: %w", s, err)
	}
	return id, nil
}

// Type is the kind of a blob. Values are part of the format; never renumber.
type Type uint8

const (
	// Data is a chunk of file content, sealed to the owner.
	Data Type = 1
	// Tree is an encoded directory, sealed to the owner.
	Tree Type = 2
	// ManifestPage is a page of a snapshot's reference manifest, sealed to
	// the metadata identity.
	ManifestPage Type = 3
)

func (t Type) String() string {
	switch t {
	case Data:
		return "data"
	case Tree:
		return "tree"
	case ManifestPage:
		return "manifest"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Valid reports whether t is a known blob type.
func (t Type) Valid() bool { return t >= Data && t <= ManifestPage }

// Stored is the type a blob is recorded under wherever the metadata
// identity (the server) can read it: pack headers, index fragments and
// manifest pages, and so every index and reference set built from them.
// Data and tree blobs are both recorded as Data ("content", sealed to the
// owner), so the server cannot tell a directory from a file chunk; only
// the owner, who decrypts trees and follows their references, knows which
// is which. A blob's ID still binds its real type (docs/format.md §8).
func (t Type) Stored() Type {
	if t == Tree {
		return Data
	}
	return t
}

// ValidStored reports whether t may appear as a stored type: Data
// (content) or ManifestPage.
func (t Type) ValidStored() bool { return t == Data || t == ManifestPage }

// Domain is a provenance domain: the Ed25519 public key of the party that
// uploaded a blob copy (the owner or one writer). A coordinator that
// repacks blobs keeps each blob in its source domain (R23).
type Domain [32]byte

// Short returns the first 8 hex digits.
func (d Domain) Short() string { return hex.EncodeToString(d[:4]) }

// IsZero reports whether d is all zeros (no domain).
func (d Domain) IsZero() bool { return d == Domain{} }

// DomainOf returns the domain of an Ed25519 public key (nil: the zero domain).
func DomainOf(pub []byte) Domain {
	var d Domain
	if len(pub) == len(d) {
		copy(d[:], pub)
	}
	return d
}
