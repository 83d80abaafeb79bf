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
// every request read its client. A query prepared and run per request
// cost about a third of a HEAD request's CPU (issue 17); the pragma costs
// a tenth of that.
//
// One pragma runs at a time. A request that arrives while one runs waits
// for the next, which starts when that one ends: a check that began
// before the request cannot vouch for a commit made just before the
// request, one that begins after it can, for every request waiting. Under
// load one check answers many requests.
type clientCache struct {
	mu      sync.Mutex
	version int64
	clients map[string]Client // read at version; nil: none yet
	running bool              // a check runs; requests arriving join next
	next    *versionCheck     // the check the requests arriving now wait for
	closed  bool

	// Only the check that runs uses these (running guards them).
	conn *sql.Conn // nil until first use, and again after an error
	stmt *sql.Stmt // PRAGMA data_version, prepared on conn
}

type versionCheck struct {
	done chan struct{} // closed when v and ok are set
	v    int64
	ok   bool
}

// current returns the database's data version as of a moment after the
// call began, and false if it cannot be had (the caller reads without the
// cache).
func (cc *clientCache) current(ctx context.Context, db *sql.DB) (int64, bool) {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return 0, false
	}
	c := cc.next
	if c == nil {
		c = &versionCheck{done: make(chan struct{})}
		cc.next = c
	}
	if !cc.running {
		cc.running, cc.next = true, nil
		cc.mu.Unlock()
		cc.run(db, c)
	} else {
		cc.mu.Unlock()
	}
	select {
	case <-c.done:
		return c.v, c.ok
	case <-ctx.Done():
		return 0, false
	}
}

// run does check c, then hands the checks requests joined meanwhile to a
// goroutine of their own (the caller's request goes on).
func (cc *clientCache) run(db *sql.DB, c *versionCheck) {
	v, ok, fresh := cc.check(db)
	cc.mu.Lock()
	if ok && (fresh || cc.clients == nil || v != cc.version) {
		cc.version, cc.clients = v, map[string]Client{}
	}
	c.v, c.ok = v, ok
	close(c.done)
	n := cc.next
	cc.next = nil
	if n == nil || cc.closed {
		cc.running = false
		if cc.closed {
			cc.drop()
			if n != nil {
				close(n.done) // ok false: read without the cache
			}
		}
		cc.mu.Unlock()
		return
	}
	cc.mu.Unlock()
	go cc.run(db, n)
}

// check asks the data version on the cache's own connection; fresh: on
// a new connection, whose numbers say nothing about the old one's.
func (cc *clientCache) check(db *sql.DB) (v int64, ok, fresh bool) {
	ctx := context.Background() // the pragma waits for no lock
	if cc.conn == nil {
		conn, err := db.Conn(ctx)
		if err != nil {
			return 0, false, false
		}
		stmt, err := conn.PrepareContext(ctx, `PRAGMA data_version`)
		if err != nil {
			conn.Close()
			return 0, false, false
		}
		cc.conn, cc.stmt, fresh = conn, stmt, true
	}
	if err := cc.stmt.QueryRowContext(ctx).Scan(&v); err != nil {
		cc.drop()
		return 0, false, false
	}
	return v, true, fresh
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

// drop gives back the connection; the next check takes another.
func (cc *clientCache) drop() {
	if cc.stmt != nil {
		cc.stmt.Close()
	}
	if cc.conn != nil {
		cc.conn.Close()
	}
	cc.conn, cc.stmt = nil, nil
}

// close gives the connection back (now, or when the running check ends);
// the cache is not used again.
func (cc *clientCache) close() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.closed = true
	if !cc.running {
		cc.drop()
	}
}
