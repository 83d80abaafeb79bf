// Package pack encodes and decodes pack files and index fragments.
//
// A pack is many sealed blobs followed by a header sealed to the metadata
// identity:
//
//	blob 0 ‖ blob 1 ‖ … ‖ padding ‖ sealed header ‖ header length (u32 LE) ‖ "CRP1"
//
// The header lists the pack's key slots (session keys wrapped to the owner
// for content, or to the metadata identity for manifest pages) and, per blob,
// its stored type (content or manifest page: a tree is recorded as content,
// blob.Type.Stored), ID, offset, stored length and slot. Blobs are sealed without
// anything positional in their associated data, so repacking copies them
// verbatim together with the slots they need.
//
// An index fragment is the plaintext headers of one or more packs, sealed to
// the metadata identity; "index fragment = pack header" is checked byte for
// byte by the server and by check.
//
// Decoders here validate every bound before using it; they are fuzzed.
package pack
