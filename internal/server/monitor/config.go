package monitor

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/cairnbackup/cairn/internal/alert"
	"github.com/cairnbackup/cairn/internal/server/state/reports"
)

// Config is a notifier's settings, stored as JSON in the state database
// (one of the two is set, as the notifier's kind says).
type Config struct {
	Webhook *WebhookConfig `json:"webhook,omitempty"`
	SMTP    *SMTPConfig    `json:"smtp,omitempty"`
}

// WebhookConfig posts events as JSON, signed with Secret (hex).
type WebhookConfig struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

// SMTPConfig mails events through a relay. The password stays in its
// file, read at each delivery; only the file's path is stored.
type SMTPConfig struct {
	Addr         string   `json:"addr"`
	From         string   `json:"from"`
	To           []string `json:"to"`
	User         string   `json:"user,omitempty"`
	PasswordFile string   `json:"password_file,omitempty"`
}

// Kind is reports.NotifierWebhook or reports.NotifierSMTP.
func (c Config) Kind() string {
	if c.Webhook != nil {
		return reports.NotifierWebhook
	}
	return reports.NotifierSMTP
}

// Validate checks the settings a user gave.
func (c Config) Validate() error {
	switch {
	case (c.Webhook == nil) == (c.SMTP == nil):
		return errors.New("give either a webhook or an SMTP relay")
	case c.Webhook != nil:
		u, err := url.Parse(c.Webhook.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("webhook URL %q: give an http:// or https:// URL", redact(c.Webhook.URL))
		}
		if _, err := hex.DecodeString(c.Webhook.Secret); err != nil || len(c.Webhook.Secret) < 32 {
			return errors.New("webhook secret: want at least 16 bytes, hex-encoded")
		}
	default:
		s := c.SMTP
		if _, port, err := net.SplitHostPort(s.Addr); err != nil || port == "" {
			return fmt.Errorf("SMTP relay %q: give HOST:PORT, such as mail.example:587", s.Addr)
		}
		if !strings.Contains(s.From, "@") {
			return fmt.Errorf("sender %q: give an e-mail address", s.From)
		}
		if len(s.To) == 0 {
			return errors.New("give at least one recipient")
		}
		for _, to := range s.To {
			if !strings.Contains(to, "@") || strings.ContainsAny(to, "\r\n<>,") {
				return fmt.Errorf("recipient %q: give an e-mail address", to)
			}
		}
		if (s.User == "") != (s.PasswordFile == "") {
			return errors.New("an SMTP login needs both a user and a password file")
		}
	}
	return nil
}

// ParseConfig reads a stored notifier's settings.
func ParseConfig(n reports.Notifier) (Config, error) {
	var c Config
	if err := json.Unmarshal([]byte(n.Config), &c); err != nil {
		return Config{}, fmt.Errorf("notifier %s: settings: %w", n.Name, err)
	}
	if c.Kind() != n.Kind {
		return Config{}, fmt.Errorf("notifier %s: settings are not of kind %s", n.Name, n.Kind)
	}
	return c, nil
}

// Target is where the notifier delivers, for people: a webhook's URL
// without query or credentials, or the relay and recipients.
func (c Config) Target() string {
	if c.Webhook != nil {
		return redact(c.Webhook.URL)
	}
	return fmt.Sprintf("%s via %s", strings.Join(c.SMTP.To, ", "), c.SMTP.Addr)
}

// Notifier builds the notifier the settings describe.
func (c Config) Notifier() (alert.Notifier, error) {
	if c.Webhook != nil {
		secret, err := hex.DecodeString(c.Webhook.Secret)
		if err != nil {
			return nil, fmt.Errorf("webhook secret: %w", err)
		}
		return &alert.Webhook{URL: c.Webhook.URL, Secret: secret}, nil
	}
	return &mailer{c: *c.SMTP}, nil
}

// mailer reads the SMTP password file at each delivery, so a rotated
// password needs no restart and never sits in the state database.
type mailer struct{ c SMTPConfig }

func (m *mailer) Notify(ctx context.Context, ev alert.Event) error {
	mail := &alert.Mail{Addr: m.c.Addr, From: m.c.From, To: m.c.To, User: m.c.User}
	if m.c.PasswordFile != "" {
		b, err := os.ReadFile(m.c.PasswordFile)
		if err != nil {
			return fmt.Errorf("mail: SMTP password: %w", err)
		}
		mail.Password = strings.TrimRight(string(b), "\r\n")
	}
	return mail.Notify(ctx, ev)
}

// redact drops a URL's query, fragment and credentials (webhook URLs
// often carry a token).
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = nil, "", "", "", false
	return u.String()
}
