// Package crypto holds cairn's keys and every cryptographic operation on
// stored bytes: key derivation (HKDF labels), password key files (argon2id),
// session-key slots wrapped to the owner with age, metadata sealed to the
// metadata identity with age, the blob AEAD (AES-256-GCM) with Padmé
// padding, and Ed25519 signatures. It does no I/O.
//
// Which key opens what is the heart of cairn's trust model (see
// docs/format.md): content is sealed under per-session keys that only the
// owner's identity unwraps; metadata is sealed to the metadata identity, which
// the server and the owner hold; writers hold neither, only public keys
// pinned in their own key file and their signing and dedup keys.
package crypto
