package alert

import (
	"github.com/cairnbackup/cairn/internal/testutil/smtptest"

	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
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
	s := smtptest.Start(t, smtptest.Options{TLS: srvTLS, Auth: true})
	m := &Mail{Addr: s.Addr(), From: "cairn@backup1", To: []string{"ops@example.org"},
		User: "cairn", Password: "mail-pass", TLS: cliTLS}
	ev := testEvent()
	ev.Subject = "client alice\r\nBcc: victim@example.org" // a header injection attempt
	if err := m.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	msgs, auths := s.Messages(), s.Auths()
	if len(msgs) != 1 || len(auths) != 1 || !strings.Contains(auths[0], "mail-pass") {
		t.Fatalf("messages %d, auths %q", len(msgs), auths)
	}
	msg := msgs[0]
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
	s := smtptest.Start(t, smtptest.Options{Auth: true})
	m := &Mail{Addr: s.Addr(), From: "cairn@backup1", To: []string{"ops@example.org"}, User: "cairn", Password: "mail-pass"}
	err := m.Notify(context.Background(), testEvent())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("password sent without TLS? err = %v", err)
	}
	if auths, msgs := s.Auths(), s.Messages(); len(auths) != 0 || len(msgs) != 0 {
		t.Fatalf("relay saw %q / %d messages", auths, len(msgs))
	}
	// Without a password, a plain local relay is fine.
	m.User, m.Password = "", ""
	if err := m.Notify(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 {
		t.Fatalf("plain relay: %d messages", len(msgs))
	}
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
