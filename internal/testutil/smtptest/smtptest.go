// Package smtptest runs a small SMTP receiver on a loopback listener for
// a test: EHLO/HELO, optional STARTTLS, optional AUTH PLAIN, MAIL, RCPT,
// DATA and QUIT. It keeps every message's data and every AUTH PLAIN
// credential it was sent. The alert package's tests and the end-to-end
// monitor tests deliver mail to it.
//
// It imports no cairn package.
package smtptest

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options selects what the receiver offers in its EHLO reply.
type Options struct {
	// TLS, when set, offers STARTTLS with this server configuration.
	TLS *tls.Config
	// Auth offers AUTH PLAIN and records the decoded credentials.
	Auth bool
}

// Server is a running receiver.
type Server struct {
	ln       net.Listener
	opts     Options
	mu       sync.Mutex
	messages []string
	auths    []string
}

// Start listens on 127.0.0.1 and serves until the test ends; the cleanup
// closes the listener and waits for every connection's goroutine.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ln: ln, opts: opts}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

// Addr is the receiver's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Messages returns a copy of the data of every message received so far,
// lines ending in CRLF, without the terminating ".".
func (s *Server) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.messages...)
}

// Auths returns a copy of the decoded AUTH PLAIN credentials received so
// far ("\x00user\x00password").
func (s *Server) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

// Subjects lists the Subject header of each message received so far.
func (s *Server) Subjects() []string {
	var out []string
	for _, msg := range s.Messages() {
		for _, l := range strings.Split(msg, "\r\n") {
			if v, ok := strings.CutPrefix(l, "Subject: "); ok {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

func (s *Server) serve(c net.Conn) {
	defer func() { c.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	rd := bufio.NewReader(c)
	say := func(l string) { _, _ = io.WriteString(c, l+"\r\n") }
	say("220 smtptest ESMTP")
	secure := false
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			var ext []string
			if s.opts.Auth {
				ext = append(ext, "AUTH PLAIN")
			}
			if s.opts.TLS != nil && !secure {
				ext = append(ext, "STARTTLS")
			}
			ext = append([]string{"smtptest"}, ext...)
			for i, e := range ext {
				if i < len(ext)-1 {
					say("250-" + e)
				} else {
					say("250 " + e)
				}
			}
		case cmd == "STARTTLS" && s.opts.TLS != nil && !secure:
			say("220 go ahead")
			tc := tls.Server(c, s.opts.TLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, rd, secure = tc, bufio.NewReader(tc), true
		case strings.HasPrefix(cmd, "AUTH PLAIN ") && s.opts.Auth:
			b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(line)[len("AUTH PLAIN "):])
			s.mu.Lock()
			s.auths = append(s.auths, string(b))
			s.mu.Unlock()
			say("235 ok")
		case strings.HasPrefix(cmd, "MAIL FROM:"), strings.HasPrefix(cmd, "RCPT TO:"):
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var msg strings.Builder
			for {
				l, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(l)
			}
			s.mu.Lock()
			s.messages = append(s.messages, msg.String())
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 not here")
		}
	}
}
