// Package rest is a backend.Backend that stores a repository on a server
// speaking restic's REST protocol (package restapi): a cairn server, or
// restic's rest-server for the operations it supports.
//
// Locations look like restic's: rest:https://user:pass@host:port/path/.
// The base URL always gets a trailing slash. Credentials go pre-emptively
// as HTTP basic auth; Properties().Location never shows the password.
//
// Transport security (R21): plain http:// is refused unless the host is a
// loopback address (localhost, 127.0.0.0/8, ::1) or Config.Insecure is set,
// so a password and the repository's traffic never cross a network in the
// clear by accident.
//
// Semantics follow package backend exactly. Against a cairn server the
// client sends X-Cairn-Strict, so deleting a missing file is
// backend.ErrNotFound (restic gets 200), and reads the X-Cairn-Error code
// to tell "exists" from "refused" where restic's 403 means both. Ranged
// loads check the length the server returns; a short answer is
// io.ErrUnexpectedEOF. Transport compression is disabled: restic's
// protocol needs exact Content-Length on ranged reads.
package rest
