// Package agent is what `cairn agent` runs on a client machine: a
// validated configuration file, a schedule, hooks, retries and reports.
// This file holds the configuration: its keys, defaults and checks. Every
// error names the file's line and the key.
package agent

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // schedule.time_zone works on machines without a zone database

	"go.yaml.in/yaml/v3"

	"github.com/cairnbackup/cairn/internal/ratelimit"
	"github.com/cairnbackup/cairn/internal/schedule"
)

// DefaultConfigPath is where `cairn agent` looks without --config.
const DefaultConfigPath = "/etc/cairn/agent.yaml"

// Config is an agent's configuration file (docs/agent.md).
type Config struct {
	// Repository is the location backups go to, without credentials
	// (rest:https://host:8443/CLIENT/REPO, a directory, or s3:…).
	Repository string `yaml:"repository"`
	// ServerFingerprint pins the server's key (rest: only).
	ServerFingerprint string `yaml:"server_fingerprint"`
	// ClientPasswordFile holds the server client password (rest: only);
	// it is put into the URL when the agent connects, never written back.
	ClientPasswordFile string `yaml:"client_password_file"`
	// KeyFile is the writer key the agent backs up with; PasswordFile
	// unlocks it.
	KeyFile      string `yaml:"key_file"`
	PasswordFile string `yaml:"password_file"`

	Paths       []string `yaml:"paths"`
	Exclude     []string `yaml:"exclude"`
	ExcludeFile string   `yaml:"exclude_file"`
	Tags        []string `yaml:"tags"`
	Host        string   `yaml:"host"`

	Schedule  ScheduleConfig `yaml:"schedule"`
	Retries   RetryConfig    `yaml:"retries"`
	Bandwidth string         `yaml:"bandwidth"`
	Hooks     Hooks          `yaml:"hooks"`
	// Containers to stop before and start after the backup (Docker
	// Engine API over its socket).
	Containers *Containers `yaml:"containers"`
	// Databases to dump into the snapshot, or to quiesce around it.
	Databases []Database `yaml:"databases"`

	// Parsed forms, filled by Parse.
	When           schedule.Schedule `yaml:"-"`
	Jitter         time.Duration     `yaml:"-"`
	RetryInterval  time.Duration     `yaml:"-"`
	BandwidthBytes int64             `yaml:"-"` // per second; 0: unlimited
}

// ScheduleConfig is when backups run.
type ScheduleConfig struct {
	At       string `yaml:"at"`        // cron line or words (internal/schedule)
	TimeZone string `yaml:"time_zone"` // IANA name; default the machine's
	Jitter   string `yaml:"jitter"`    // random delay, e.g. 30m
}

// RetryConfig is what happens after a failed run.
type RetryConfig struct {
	Attempts int    `yaml:"attempts"` // runs per scheduled slot, the first included
	Interval string `yaml:"interval"`
}

// Hook is one local command.
type Hook struct {
	Run     string `yaml:"run"`
	Timeout string `yaml:"timeout"`

	TimeoutDur time.Duration `yaml:"-"`
}

// Hooks run from local configuration only: the server can never send one.
type Hooks struct {
	Before  []Hook `yaml:"before"`
	After   []Hook `yaml:"after"`
	OnError []Hook `yaml:"on_error"`
}

// Containers are stopped before the backup and started again after it,
// also when it fails.
type Containers struct {
	Stop   []string `yaml:"stop"`
	Socket string   `yaml:"socket"`
}

// Database is one database recipe.
type Database struct {
	Type         string   `yaml:"type"` // mariadb, mysql or postgres
	Mode         string   `yaml:"mode"` // dump (default) or quiesce
	Databases    []string `yaml:"databases"`
	Host         string   `yaml:"host"`
	Socket       string   `yaml:"socket"`
	User         string   `yaml:"user"`
	PasswordFile string   `yaml:"password_file"`
	DataDir      string   `yaml:"data_dir"` // quiesce: the directory copied while quiet
	Timeout      string   `yaml:"timeout"`

	TimeoutDur time.Duration `yaml:"-"`
}

// Defaults for keys left out.
const (
	DefaultSchedule      = "daily 03:00"
	DefaultJitter        = 30 * time.Minute
	DefaultAttempts      = 5
	DefaultRetryInterval = 10 * time.Minute
	DefaultHookTimeout   = 10 * time.Minute
	DefaultDumpTimeout   = 6 * time.Hour
	DefaultDockerSocket  = "/var/run/docker.sock"
)

// Error is a configuration error at a line of the file.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	fmt.Fprintf(&b, ": %s", e.Msg)
	return b.String()
}

// Load reads and checks the configuration file at path.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	return Parse(path, src)
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found`)

// Parse checks src (named name in errors) and fills defaults and the
// parsed forms. Unknown keys and values of the wrong YAML type are
// reported first, all of them; once there are none, every remaining
// problem is reported, joined.
func Parse(name string, src []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, &Error{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: name, Msg: "the file is empty; see docs/agent.md for an example"}
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var errs []error
			for _, m := range te.Errors {
				if sm := unknownField.FindStringSubmatch(m); sm != nil {
					var line int
					fmt.Sscan(sm[1], &line)
					errs = append(errs, &Error{File: name, Line: line, Key: sm[2], Msg: "unknown key"})
					continue
				}
				errs = append(errs, &Error{File: name, Msg: m})
			}
			return nil, errors.Join(errs...)
		}
		return nil, &Error{File: name, Msg: err.Error()}
	}
	v := &validator{file: name, root: root.Content[0]}
	v.check(&c)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return &c, nil
}

type validator struct {
	file string
	root *yaml.Node
	errs []error
}

// line finds the line of a key path ("schedule.at", "hooks.before.1.run");
// 0 when the key is absent.
func (v *validator) line(path string) int {
	n := v.root
	line := 0
	for _, part := range strings.Split(path, ".") {
		switch n.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
		case yaml.SequenceNode:
			var i int
			if _, err := fmt.Sscan(part, &i); err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) duration(key, s string, def time.Duration, dst *time.Duration) {
	if s == "" {
		*dst = def
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		v.fail(key, "want a duration like 30m or 6h, got %q", s)
		return
	}
	*dst = d
}

func (v *validator) check(c *Config) {
	v.repository(c)
	if c.KeyFile == "" {
		v.fail("key_file", "required: the writer key the agent backs up with (`cairn setup-client` makes one)")
	}
	if c.PasswordFile == "" {
		v.fail("password_file", "required: the file with the key file's password")
	}
	for _, k := range []struct{ key, path string }{
		{"key_file", c.KeyFile}, {"password_file", c.PasswordFile}, {"client_password_file", c.ClientPasswordFile},
		{"exclude_file", c.ExcludeFile},
	} {
		if k.path != "" && !filepath.IsAbs(k.path) {
			v.fail(k.key, "want an absolute path, got %q (the agent's working directory is not yours)", k.path)
		}
	}
	if len(c.Paths) == 0 {
		c.Paths = []string{"/"}
	}
	for i, p := range c.Paths {
		if !filepath.IsAbs(p) {
			v.fail(fmt.Sprintf("paths.%d", i), "want an absolute path, got %q", p)
		}
	}

	if c.Schedule.At == "" {
		c.Schedule.At = DefaultSchedule
	}
	loc := time.Local
	if c.Schedule.TimeZone != "" {
		var err error
		if loc, err = time.LoadLocation(c.Schedule.TimeZone); err != nil {
			v.fail("schedule.time_zone", "unknown time zone %q (want an IANA name like Europe/Berlin)", c.Schedule.TimeZone)
			loc = time.Local
		}
	}
	if s, err := schedule.Parse(c.Schedule.At, loc); err != nil {
		v.fail("schedule.at", "%v", strings.TrimPrefix(err.Error(), "schedule: "))
	} else {
		c.When = s
	}
	v.duration("schedule.jitter", c.Schedule.Jitter, DefaultJitter, &c.Jitter)

	if c.Retries.Attempts == 0 {
		c.Retries.Attempts = DefaultAttempts
	} else if c.Retries.Attempts < 1 || c.Retries.Attempts > 100 {
		v.fail("retries.attempts", "want 1 to 100 runs per slot, got %d", c.Retries.Attempts)
	}
	v.duration("retries.interval", c.Retries.Interval, DefaultRetryInterval, &c.RetryInterval)

	if c.Bandwidth != "" {
		n, err := ratelimit.ParseRate(c.Bandwidth)
		if err != nil {
			v.fail("bandwidth", "want a rate like 20MiB/s, got %q (units are powers of 1024)", c.Bandwidth)
		} else {
			c.BandwidthBytes = n
		}
	}

	for _, h := range []struct {
		key   string
		hooks []Hook
	}{{"hooks.before", c.Hooks.Before}, {"hooks.after", c.Hooks.After}, {"hooks.on_error", c.Hooks.OnError}} {
		for i := range h.hooks {
			key := fmt.Sprintf("%s.%d", h.key, i)
			if strings.TrimSpace(h.hooks[i].Run) == "" {
				v.fail(key+".run", "required: the command to run")
			}
			v.duration(key+".timeout", h.hooks[i].Timeout, DefaultHookTimeout, &h.hooks[i].TimeoutDur)
		}
	}

	if c.Containers != nil {
		if len(c.Containers.Stop) == 0 {
			v.fail("containers.stop", "required: the containers to stop during the backup")
		}
		if c.Containers.Socket == "" {
			c.Containers.Socket = DefaultDockerSocket
		}
	}
	for i := range c.Databases {
		v.database(fmt.Sprintf("databases.%d", i), &c.Databases[i])
	}
}

func (v *validator) repository(c *Config) {
	r := c.Repository
	switch {
	case r == "":
		v.fail("repository", "required: where backups go, e.g. rest:https://backup.example:8443/web1/main")
		return
	case strings.HasPrefix(r, "rest:"):
		u, err := url.Parse(strings.TrimPrefix(r, "rest:"))
		if err != nil || u.Host == "" {
			v.fail("repository", "not a rest: URL: %q", r)
			return
		}
		if u.User != nil {
			v.fail("repository", "holds credentials; put the client password in client_password_file instead")
		}
		if c.ServerFingerprint == "" {
			v.fail("server_fingerprint", "required for a rest: repository (print it on the server with `cairn server fingerprint`)")
		}
		if c.ClientPasswordFile == "" {
			v.fail("client_password_file", "required for a rest: repository: the server client's password")
		}
	case strings.HasPrefix(r, "s3:"):
	default:
		if !filepath.IsAbs(r) {
			v.fail("repository", "want rest:URL, s3:… or an absolute directory, got %q", r)
		}
	}
}

func (v *validator) database(key string, d *Database) {
	switch d.Type {
	case "mariadb", "mysql", "postgres":
	case "":
		v.fail(key+".type", "required: mariadb, mysql or postgres")
	default:
		v.fail(key+".type", "want mariadb, mysql or postgres, got %q", d.Type)
	}
	switch d.Mode {
	case "":
		d.Mode = "dump"
	case "dump":
	case "quiesce":
		if d.DataDir == "" || !filepath.IsAbs(d.DataDir) {
			v.fail(key+".data_dir", "quiesce copies the data directory: give its absolute path")
		}
	default:
		v.fail(key+".mode", "want dump or quiesce, got %q", d.Mode)
	}
	if d.PasswordFile != "" && !filepath.IsAbs(d.PasswordFile) {
		v.fail(key+".password_file", "want an absolute path, got %q", d.PasswordFile)
	}
	if d.Host != "" && d.Socket != "" {
		v.fail(key+".socket", "give host or socket, not both")
	}
	v.duration(key+".timeout", d.Timeout, DefaultDumpTimeout, &d.TimeoutDur)
}
