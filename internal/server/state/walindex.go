package state

import (
	"context"
	"database/sql"
	"encoding/binary"
)

// The WAL index of a database in WAL mode (its -shm file) begins with a
// header of 48 bytes, twice (https://www.sqlite.org/walformat.html, "The
// WAL-Index Header"): its version, a change counter, the last valid frame
// of the WAL, the WAL's salts and a checksum of them. Every commit, of any
// connection of any process, rewrites both copies in the shared memory
// before it returns, the second copy first; a checkpoint that restarts the
// WAL changes the salts. Processes share the file's pages (mmap), and
// while a connection of this process has the database open, no other
// truncates or replaces the file. So a header unchanged since a moment
// before the last data version check means no commit since, and that
// check's answer still holds: clientCache asks SQLite again only when the
// header changed, or cannot be read.
const (
	walHdrSize    = 48
	walHdrVersion = 3007000 // iVersion: the WAL index format SQLite writes
)

type walHeader [walHdrSize]byte

// walIndex is a read-only mapping of a WAL index's header (walindex_linux.go).
type walIndex struct{ mem []byte }

// header returns the header as it is now; false while a commit rewrites
// it (the copies differ) or if it is not one SQLite initialised in the
// format known here.
func (w *walIndex) header() (walHeader, bool) {
	var h, h2 walHeader
	copy(h[:], w.mem[:walHdrSize])
	copy(h2[:], w.mem[walHdrSize:2*walHdrSize])
	// iVersion at 0, isInit at 12 (walformat.html).
	ok := h == h2 && binary.NativeEndian.Uint32(h[0:4]) == walHdrVersion && h[12] == 1
	return h, ok
}

// openWALIndex maps the WAL index of the database conn has open, if the
// database is in WAL mode and this platform can. conn must stay open
// while the mapping is used (it keeps the file from being truncated).
func openWALIndex(ctx context.Context, conn *sql.Conn) *walIndex {
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		return nil
	}
	// The database's file as SQLite resolved it; the index is beside it.
	var seq int
	var name, file string
	if err := conn.QueryRowContext(ctx, `PRAGMA database_list`).Scan(&seq, &name, &file); err != nil || name != "main" || file == "" {
		return nil
	}
	mem, err := mapShared(file+"-shm", 2*walHdrSize)
	if err != nil {
		return nil
	}
	w := &walIndex{mem: mem}
	if _, ok := w.header(); !ok {
		w.close()
		return nil
	}
	return w
}

func (w *walIndex) close() {
	if w != nil {
		unmapShared(w.mem)
	}
}
