// Package replicas is what the state database records of the copies of
// the server's repositories: the replication destinations an operator
// configured, the repositories the server saw commits to, each replica's
// status and the ledger of what was copied where, and the audit's coverage
// of every copy (the primary's and each replica's stored files). The
// tables are package schema's; package state's State carries a Replicas.
package replicas

import (
	"database/sql"
)

// Replicas queries the state database's records of copies.
type Replicas struct {
	db *sql.DB
}

// New returns the records of db, a database package schema opened.
func New(db *sql.DB) *Replicas { return &Replicas{db: db} }
