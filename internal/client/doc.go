// Package client is what every front end of a cairn repository does
// beyond its flags and its rendering: `cairn` (cmd/cairn), the agent and
// the server's maintenance call it rather than copying it.
//
//   - Open: a repository from a location and credentials (a password
//     source, a key file, the owner key a server-mode repository keeps
//     outside it), with a cache and the TLS trust given;
//   - Select, Find, Filter: which snapshots a command means ("latest", an
//     ID prefix, --host/--tag/--path);
//   - Stats: sizes over snapshots (diff is walker.Diff);
//   - ExitCode: the documented exit code for an error.
//
// Applying a retention policy is internal/forget's, with its one rule for
// a writer's last statement.
package client
