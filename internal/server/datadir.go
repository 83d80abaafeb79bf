package server

import "github.com/cairnbackup/cairn/internal/server/datadir"

// The data directory is internal/server/datadir; these names let the
// server's callers open it through the server package.
type Data = datadir.Data

var (
	// ErrNotInitialized means a data directory has no server in it.
	ErrNotInitialized = datadir.ErrNotInitialized
	// Init creates a server data directory.
	Init = datadir.Init
	// Open opens an initialized data directory.
	Open = datadir.Open
	// HashPassword returns the bcrypt hash of a client password.
	HashPassword = datadir.HashPassword
	// GeneratePassword returns a random client password.
	GeneratePassword = datadir.GeneratePassword
)
