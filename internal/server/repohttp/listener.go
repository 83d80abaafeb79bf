package repohttp

import (
	"io"
	"net"
	"net/http"
	"sync"
)

// LimitListener caps the connections open at once: Accept waits for one
// to close. Connections past the cap wait in the kernel's backlog.
type LimitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
}

// NewLimitListener lets at most n connections of ln be open at once.
func NewLimitListener(ln net.Listener, n int) *LimitListener {
	return &LimitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *LimitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *LimitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// ReadFrom lets the connection's own ReadFrom send a file with sendfile
// (net/http hands a response's body to it).
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// MethodLabel is a request method as a metric label, from a fixed set
// (R26): GET, HEAD, POST, DELETE, or "other".
func MethodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete:
		return m
	}
	return "other"
}

// Source is the address a request came from, without its port.
func Source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
