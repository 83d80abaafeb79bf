// Package client is what every front end of a cairn repository does
// beyond its flags and its rendering: `cairn` (cmd/cairn), the agent and
// the server's maintenance call it rather than copying it.
//
//   - Open (OpenBackend, Unlock): a repository from a location and
//     credentials (a password source, a key file, the owner key kept on
//     this machine for a repository on a server), with a cache and the
//     TLS trust given;
//   - LoadSnapshots, Filter, Find: which snapshots a command means
//     ("latest", an ID prefix, --host/--tag/--path);
//   - ComputeStats: sizes over snapshots (diff is walker.Diff);
//   - ExportKey: a new key in a file outside the repository, enrolled in
//     the roster; ServerIdentity and InitOnServer: a new repository on a
//     cairn server, its owner key kept on this machine;
//   - ExitCode: the documented exit code for an error, with the errors
//     that carry a hint or a key's role.
//
// Applying a retention policy is internal/forget's, with its one rule for
// a writer's last statement.
package client
