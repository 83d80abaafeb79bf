package restapi

// A writer's own snapshot list (R16), the one request of the protocol that
// is cairn's own: POST /{repo}/?writer-snapshots with a WriterListRequest
// signed by the writer's key answers the WriterList of that key. The
// server (internal/server) answers it; the client side is
// internal/backend/rest.

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"
)

// WriterListQuery is the query of POST /{repo}/?writer-snapshots.
const WriterListQuery = "writer-snapshots"

// WriterListSkew is how far a request's time may be from the server's clock.
const WriterListSkew = 5 * time.Minute

// WriterRefSize is the size of one blob ID in WriterList.LastRefs: type
// byte ‖ ID [32].
const WriterRefSize = 33

// WriterListRequest asks for the snapshots Writer signed; Sig is Writer's
// signature over WriterListMessage(repo path, Time, Writer).
type WriterListRequest struct {
	Writer ed25519.PublicKey `json:"writer"`
	Time   time.Time         `json:"time"`
	Sig    []byte            `json:"sig"`
}

// WriterListMessage is what a writer signs: the protocol's label, the
// repository path (<client>/<repository…>, no slashes around), the time
// (RFC 3339, UTC) and the writer's public key, NUL-separated.
func WriterListMessage(repo string, t time.Time, writer ed25519.PublicKey) []byte {
	var b bytes.Buffer
	b.WriteString("cairn writer snapshot list v1\x00")
	b.WriteString(repo)
	b.WriteByte(0)
	b.WriteString(t.UTC().Format(time.RFC3339Nano))
	b.WriteByte(0)
	b.Write(writer)
	return b.Bytes()
}

// WriterStatement is one of the writer's stored snapshots.
type WriterStatement struct {
	ID            string    `json:"id"`
	Seq           uint64    `json:"seq"`
	Time          time.Time `json:"time"` // receipt time (server clock), else the storage's time
	StatementHash string    `json:"statement_hash"`
}

// WriterList is the answer: the writer's statements, oldest seq first,
// and the blob IDs its last snapshot reaches (WriterRefSize bytes each,
// sorted).
type WriterList struct {
	Snapshots []WriterStatement `json:"snapshots"`
	LastRefs  []byte            `json:"last_refs"`
}

// Check checks the shape of an answer read from the network.
func (l *WriterList) Check() error {
	if len(l.LastRefs)%WriterRefSize != 0 {
		return fmt.Errorf("writer list: blob-ID set of %d bytes is not a multiple of %d", len(l.LastRefs), WriterRefSize)
	}
	return nil
}
