// Package snapshot holds cairn's data model: tree nodes and their
// deterministic encoding, snapshot statements and headers, and reference
// manifests. It does no I/O.
package snapshot
