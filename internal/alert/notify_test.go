package alert

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func testEvent() Event {
	return Event{Version: EventVersion, Kind: Raised, Subject: "client alice", Level: Alert, Was: Warning,
		Reason: "last backup 29h0m0s ago", Since: t0, At: t0.Add(time.Hour), Server: "backup1"}
}

func TestWebhookPostsSignedJSON(t *testing.T) {
	secret := []byte("s3cret")
	var mu sync.Mutex
	var got []Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(SignatureHeader) != Sign(secret, body) || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		var ev Event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	defer srv.Close()
	wh := &Webhook{URL: srv.URL + "/hook?token=abc", Secret: secret}
	if err := wh.Notify(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Subject != "client alice" || got[0].Level != Alert || got[0].Kind != Raised || !got[0].Since.Equal(t0) {
		t.Fatalf("received %+v", got)
	}
	// A wrong secret is refused by the receiver and reported without the
	// URL's token.
	wh.Secret = []byte("wrong")
	err := wh.Notify(context.Background(), testEvent())
	if err == nil || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "token=abc") {
		t.Fatalf("refused webhook: %v", err)
	}
}

func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	hit := false
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer target.Close()
	srv := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	defer srv.Close()
	if err := (&Webhook{URL: srv.URL}).Notify(context.Background(), testEvent()); err == nil || hit {
		t.Fatalf("a redirect was followed (err %v, hit %v)", err, hit)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@hooks.example/x?token=1": "https://hooks.example/x",
		"http://host/path#frag":               "http://host/path",
		"http://host/a@b":                     "http://host/a@b",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// smtpServer is a small SMTP receiver for tests: EHLO, optional STARTTLS,
// AUTH PLAIN, MAIL, RCPT, DATA, QUIT.
type smtpServer struct {
	ln       net.Listener
	tls      *tls.Config // nil: no STARTTLS offered
	mu       sync.Mutex
	messages []string
	auths    []string
	done     sync.WaitGroup
}

func newSMTPServer(t *testing.T, cfg *tls.Config) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, tls: cfg}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.done.Add(1)
			go func() {
				defer s.done.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.done.Wait() })
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	rd, w := bufio.NewReader(c), c
	say := func(l string) { io.WriteString(w, l+"\r\n") }
	say("220 test ESMTP")
	secure := false
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			if s.tls != nil && !secure {
				say("250-test")
				say("250-AUTH PLAIN")
				say("250 STARTTLS")
			} else {
				say("250-test")
				say("250 AUTH PLAIN")
			}
		case cmd == "STARTTLS" && s.tls != nil:
			say("220 go ahead")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, rd, w, secure = tc, bufio.NewReader(tc), tc, true
		case strings.HasPrefix(cmd, "AUTH PLAIN"):
			raw := strings.TrimSpace(line)[len("AUTH PLAIN "):]
			b, _ := base64.StdEncoding.DecodeString(raw)
			s.mu.Lock()
			s.auths = append(s.auths, string(b))
			s.mu.Unlock()
			say("235 ok")
		case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"):
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
			say("502 no")
		}
	}
}

// selfSigned returns a server config for 127.0.0.1 and a client config
// that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

func TestMailOverSTARTTLSWithLogin(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	s := newSMTPServer(t, srvTLS)
	m := &Mail{Addr: s.ln.Addr().String(), From: "cairn@backup1", To: []string{"ops@example.org"},
		User: "cairn", Password: "mail-pass", TLS: cliTLS}
	ev := testEvent()
	ev.Subject = "client alice\r\nBcc: victim@example.org" // a header injection attempt
	if err := m.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.messages) != 1 || len(s.auths) != 1 || !strings.Contains(s.auths[0], "mail-pass") {
		t.Fatalf("messages %d, auths %q", len(s.messages), s.auths)
	}
	msg := s.messages[0]
	if !strings.Contains(msg, "Subject: [cairn] ALERT: client alice  Bcc: victim@example.org: last backup 29h0m0s ago\r\n") {
		t.Fatalf("subject line:\n%s", msg)
	}
	for _, l := range strings.Split(msg, "\r\n") {
		if strings.HasPrefix(l, "Bcc:") {
			t.Fatalf("a header was injected:\n%s", msg)
		}
	}
}

// A relay that offers no STARTTLS never sees the password.
func TestMailRefusesPasswordInClear(t *testing.T) {
	s := newSMTPServer(t, nil)
	m := &Mail{Addr: s.ln.Addr().String(), From: "cairn@backup1", To: []string{"ops@example.org"}, User: "cairn", Password: "mail-pass"}
	err := m.Notify(context.Background(), testEvent())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("password sent without TLS? err = %v", err)
	}
	if auths, msgs := s.seen(); len(auths) != 0 || len(msgs) != 0 {
		t.Fatalf("relay saw %q / %d messages", auths, len(msgs))
	}
	// Without a password, a plain local relay is fine.
	m.User, m.Password = "", ""
	if err := m.Notify(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	if _, msgs := s.seen(); len(msgs) != 1 {
		t.Fatalf("plain relay: %d messages", len(msgs))
	}
}

func (s *smtpServer) seen() (auths, messages []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...), append([]string(nil), s.messages...)
}

type failing struct{ err error }

func (f failing) Notify(context.Context, Event) error { return f.err }

func TestDispatcherKeepsNotifierHealth(t *testing.T) {
	now := t0
	d := NewDispatcher(func() time.Time { return now })
	var got []Event
	d.Set("hook", notifierFunc(func(_ context.Context, ev Event) error { got = append(got, ev); return nil }))
	d.Set("mail", failing{errors.New("relay down")})
	err := d.Send(context.Background(), testEvent())
	if err == nil || !strings.Contains(err.Error(), "notifier mail: relay down") || len(got) != 1 {
		t.Fatalf("send: %v, hook got %d", err, len(got))
	}
	st := d.Status()
	if len(st) != 2 || st[0].Name != "hook" || st[0].Failing || st[0].Sent != 1 || st[1].Name != "mail" || !st[1].Failing || st[1].LastError != "relay down" {
		t.Fatalf("status: %+v", st)
	}
	d.Set("mail", notifierFunc(func(context.Context, Event) error { return nil }))
	now = now.Add(time.Minute)
	if err := d.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	if st := d.Status(); st[1].Failing || !st[1].LastOK.Equal(now) || st[1].Failed != 1 {
		t.Fatalf("recovered notifier: %+v", st[1])
	}
}

type notifierFunc func(context.Context, Event) error

func (f notifierFunc) Notify(ctx context.Context, ev Event) error { return f(ctx, ev) }

// A restarted server keeps a notifier's counts and failure from before.
func TestDispatcherRestore(t *testing.T) {
	d := NewDispatcher(func() time.Time { return t0 })
	d.Restore(NotifierStatus{Name: "mail", Failing: true, LastError: "relay down", Sent: 3, Failed: 2})
	d.Set("mail", notifierFunc(func(context.Context, Event) error { return nil }))
	st := d.Status()
	if len(st) != 1 || !st[0].Failing || st[0].Sent != 3 || st[0].Failed != 2 {
		t.Fatalf("restored status lost by Set: %+v", st)
	}
	if err := d.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	if st := d.Status(); st[0].Failing || st[0].Sent != 4 {
		t.Fatalf("after a delivery: %+v", st[0])
	}
}

// A webhook that cannot be reached is reported without the URL's token
// or credentials (the HTTP client's error quotes the URL).
func TestWebhookUnreachableHidesToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = (&Webhook{URL: "http://user:pw@" + addr + "/hook?token=abc"}).Notify(context.Background(), testEvent())
	if err == nil || strings.Contains(err.Error(), "token=abc") || strings.Contains(err.Error(), "pw@") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("unreachable webhook: %v", err)
	}
}
