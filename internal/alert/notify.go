package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Notifier delivers an event somewhere.
type Notifier interface {
	Notify(ctx context.Context, ev Event) error
}

// Webhook posts each event as JSON (the Event type) to URL. With a
// Secret, the body is signed: header X-Cairn-Signature is
// "sha256=" + hex(HMAC-SHA-256(secret, body)), so the receiver can tell the
// server's notices from anyone else's.
type Webhook struct {
	URL    string
	Secret []byte
	Client *http.Client // nil: a client with a 10 s timeout that follows no redirect
}

// SignatureHeader is the header carrying a webhook body's HMAC.
const SignatureHeader = "X-Cairn-Signature"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Notify posts ev; any answer but 2xx is an error naming the status.
func (w *Webhook) Notify(ctx context.Context, ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cairn-server")
	if len(w.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	}
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	resp, err := c.Do(req)
	if err != nil {
		// The client's errors quote the URL: drop its token.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redactURL(ue.URL)
		}
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("webhook: %s answered %s: %s", redactURL(w.URL), resp.Status, bytes.TrimSpace(msg))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return nil
}

// redactURL drops a URL's query and credentials from messages: webhook
// URLs often carry a token.
func redactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.Index(u[i+3:], "@"); j >= 0 && !strings.Contains(u[i+3:i+3+j], "/") {
			u = u[:i+3] + u[i+3+j+1:]
		}
	}
	return u
}

// Mail sends each event as a plain-text e-mail through an SMTP relay.
// STARTTLS is used whenever the relay offers it, and required when a
// password is set (never sent in clear) or RequireTLS is.
type Mail struct {
	Addr       string // host:port
	From       string
	To         []string
	User       string
	Password   string
	RequireTLS bool
	TLS        *tls.Config // nil: the system roots, server name from Addr
	Timeout    time.Duration
}

// Notify delivers ev as one message to every recipient.
func (m *Mail) Notify(ctx context.Context, ev Event) error {
	host, _, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return fmt.Errorf("mail: relay %q: %w", m.Addr, err)
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail: %w", err)
	}
	defer c.Close()
	if err := c.Hello("cairn"); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	tlsOn := false
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := m.TLS
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg = cfg.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("mail: STARTTLS: %w", err)
		}
		tlsOn = true
	}
	if !tlsOn && (m.RequireTLS || m.Password != "") {
		return fmt.Errorf("mail: %s offers no STARTTLS; refusing to send %s in clear", m.Addr, map[bool]string{true: "a password", false: "mail"}[m.Password != ""])
	}
	if m.User != "" {
		if err := c.Auth(smtp.PlainAuth("", m.User, m.Password, host)); err != nil {
			return fmt.Errorf("mail: login as %s: %w", m.User, err)
		}
	}
	if err := c.Mail(m.From); err != nil {
		return fmt.Errorf("mail: MAIL FROM: %w", err)
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("mail: RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if _, err := w.Write(m.message(ev)); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	return c.Quit()
}

// header makes s safe for one header line: no CR, LF or other controls.
func header(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// Subject is the one-line summary used as a mail subject.
func Subject(ev Event) string {
	switch ev.Kind {
	case Cleared:
		return fmt.Sprintf("[cairn] OK again: %s", ev.Subject)
	case Test:
		return fmt.Sprintf("[cairn] test: %s", ev.Subject)
	case Repeated:
		return fmt.Sprintf("[cairn] still %s: %s: %s", ev.Level, ev.Subject, ev.Reason)
	}
	return fmt.Sprintf("[cairn] %s: %s: %s", ev.Level, ev.Subject, ev.Reason)
}

func (m *Mail) message(ev Event) []byte {
	var id [12]byte
	_, _ = rand.Read(id[:])
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", header(m.From))
	fmt.Fprintf(&b, "To: %s\r\n", header(strings.Join(m.To, ", ")))
	fmt.Fprintf(&b, "Subject: %s\r\n", header(Subject(ev)))
	fmt.Fprintf(&b, "Date: %s\r\n", ev.At.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@cairn>\r\n", hex.EncodeToString(id[:]))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	fmt.Fprintf(&b, "%s\r\n\r\n", header(Subject(ev)))
	fmt.Fprintf(&b, "subject: %s\r\nlevel:   %s (was %s)\r\nreason:  %s\r\nsince:   %s\r\nat:      %s\r\n",
		header(ev.Subject), ev.Level, ev.Was, header(ev.Reason), ev.Since.UTC().Format(time.RFC3339), ev.At.UTC().Format(time.RFC3339))
	if ev.Server != "" {
		fmt.Fprintf(&b, "server:  %s\r\n", header(ev.Server))
	}
	return b.Bytes()
}

// NotifierStatus is what a Dispatcher knows of one notifier.
type NotifierStatus struct {
	Name      string    `json:"name"`
	LastOK    time.Time `json:"last_ok,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	ErrorAt   time.Time `json:"error_at,omitzero"`
	Failing   bool      `json:"failing"`
	Sent      int       `json:"sent"`
	Failed    int       `json:"failed"`
}

// Dispatcher sends events to named notifiers and keeps their health, so a
// notifier that cannot deliver is itself visible.
type Dispatcher struct {
	mu        sync.Mutex
	notifiers map[string]Notifier
	status    map[string]*NotifierStatus
	now       func() time.Time
}

// NewDispatcher returns a dispatcher with no notifiers; now is the clock
// (time.Now if nil).
func NewDispatcher(now func() time.Time) *Dispatcher {
	if now == nil {
		now = time.Now
	}
	return &Dispatcher{notifiers: map[string]Notifier{}, status: map[string]*NotifierStatus{}, now: now}
}

// Set adds or replaces a notifier.
func (d *Dispatcher) Set(name string, n Notifier) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notifiers[name] = n
	if d.status[name] == nil {
		d.status[name] = &NotifierStatus{Name: name}
	}
}

// Restore sets a notifier's recorded health (after a restart), keeping
// its name as the key.
func (d *Dispatcher) Restore(st NotifierStatus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status[st.Name] = &st
}

// Remove drops a notifier.
func (d *Dispatcher) Remove(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.notifiers, name)
	delete(d.status, name)
}

// Send delivers ev to every notifier (one at a time, in name order) and
// returns the errors joined; each notifier's status is updated.
func (d *Dispatcher) Send(ctx context.Context, ev Event) error {
	d.mu.Lock()
	names := make([]string, 0, len(d.notifiers))
	for n := range d.notifiers {
		names = append(names, n)
	}
	notifiers := make(map[string]Notifier, len(d.notifiers))
	for n, v := range d.notifiers {
		notifiers[n] = v
	}
	d.mu.Unlock()
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		if err := d.SendTo(ctx, n, notifiers[n], ev); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SendTo delivers ev to one notifier (`notify test` uses it) and records
// the outcome under name.
func (d *Dispatcher) SendTo(ctx context.Context, name string, n Notifier, ev Event) error {
	err := n.Notify(ctx, ev)
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.status[name]
	if st == nil {
		st = &NotifierStatus{Name: name}
		d.status[name] = st
	}
	if err != nil {
		st.Failed++
		st.Failing, st.LastError, st.ErrorAt = true, err.Error(), d.now()
		return fmt.Errorf("notifier %s: %w", name, err)
	}
	st.Sent++
	st.Failing, st.LastOK = false, d.now()
	return nil
}

// Status lists every notifier's health in name order.
func (d *Dispatcher) Status() []NotifierStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]NotifierStatus, 0, len(d.status))
	for _, st := range d.status {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
