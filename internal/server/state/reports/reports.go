// Package reports is what the state database records of the server's
// clients for monitoring: the notifiers alerts go to and the alert state,
// restore drills and the history of what each client stored, and the
// runs each client's agent reported. The tables are package schema's;
// package state's State carries a Reports.
package reports

import (
	"database/sql"
)

// Reports queries the state database's monitoring records.
type Reports struct {
	db *sql.DB
}

// New returns the records of db, a database package schema opened.
func New(db *sql.DB) *Reports { return &Reports{db: db} }
