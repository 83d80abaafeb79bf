package state

import (
	"context"
	"database/sql"
	"sync"
)

// clientCache answers Client from memory for as long as the database has
// not changed since the client was read. It asks SQLite's PRAGMA
// data_version on a connection of its own, which never writes: the
// number changes with every commit of any other connection, of this
// process or of another (`cairn server client disable` while the server
// runs), so a change takes effect at the next request, as it did when
// every request read its client. The pragma costs a few microseconds; a
// query prepared and run per request cost about a third of a HEAD
// request's CPU (issue 17).
type clientCache struct {
	mu      sync.Mutex
	conn    *sql.Conn // nil until first use, and again after an error
	stmt    *sql.Stmt // PRAGMA data_version, prepared on conn
	version int64
	clients map[string]Client // read at version
	closed  bool
}

// current returns the database's data version, and false if it cannot
// be had (the caller reads without the cache).
func (cc *clientCache) current(ctx context.Context, db *sql.DB) (int64, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closed {
		return 0, false
	}
	if cc.conn == nil {
		conn, err := db.Conn(ctx)
		if err != nil {
			return 0, false
		}
		stmt, err := conn.PrepareContext(ctx, `PRAGMA data_version`)
		if err != nil {
			conn.Close()
			return 0, false
		}
		cc.conn, cc.stmt, cc.clients = conn, stmt, nil
	}
	var v int64
	if err := cc.stmt.QueryRowContext(ctx).Scan(&v); err != nil {
		cc.dropLocked()
		return 0, false
	}
	if cc.clients == nil || v != cc.version {
		cc.version, cc.clients = v, map[string]Client{}
	}
	return v, true
}

// get returns the client read at version v, if the cache has it.
func (cc *clientCache) get(v int64, name string) (Client, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.clients == nil || v != cc.version {
		return Client{}, false
	}
	c, ok := cc.clients[name]
	return c, ok
}

// put keeps c, read after the database was at version v, unless the
// version moved on meanwhile (c may be older than the change).
func (cc *clientCache) put(v int64, c Client) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.clients != nil && v == cc.version {
		cc.clients[c.Name] = c
	}
}

func (cc *clientCache) dropLocked() {
	if cc.stmt != nil {
		cc.stmt.Close()
	}
	if cc.conn != nil {
		cc.conn.Close()
	}
	cc.conn, cc.stmt, cc.clients = nil, nil, nil
}

// close gives the connection back; the cache is not used again.
func (cc *clientCache) close() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.dropLocked()
	cc.closed = true
}
