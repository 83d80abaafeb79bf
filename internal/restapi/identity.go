package restapi

import "crypto/ed25519"

// IdentityQuery is the query that, on a repository's base URL
// (GET /{client}/{repo}/?identity), returns the server's public identity
// as JSON (Identity). It needs the client's credentials; restic never
// sends it.
const IdentityQuery = "identity"

// Identity is the server's public identity as ?identity answers it: the
// age X25519 recipient metadata is sealed to, and the Ed25519 key the
// server signs receipts, tombstones and roster entries with. Its fields
// are those of repository.ServerPublic, which checks and fingerprints it.
type Identity struct {
	MetaRecipient string            `json:"meta_recipient"`
	CoordPub      ed25519.PublicKey `json:"coord_pub"`
}
