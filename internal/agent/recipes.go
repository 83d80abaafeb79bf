package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// RepositoryURL is the repository with the server client's password (from
// client_password_file) put into a rest: URL; the user name is the
// client, the URL's first path segment.
func (c *Config) RepositoryURL() (string, error) {
	if !strings.HasPrefix(c.Repository, "rest:") {
		return c.Repository, nil
	}
	u, err := url.Parse(strings.TrimPrefix(c.Repository, "rest:"))
	if err != nil {
		return "", fmt.Errorf("repository: %w", err)
	}
	pw, err := readSecret(c.ClientPasswordFile)
	if err != nil {
		return "", fmt.Errorf("client_password_file: %w", err)
	}
	client, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if client == "" {
		return "", fmt.Errorf("repository %q: want rest:URL/CLIENT/REPOSITORY", c.Repository)
	}
	u.User = url.UserPassword(client, pw)
	return "rest:" + u.String(), nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// DumpBackup is the backup a database recipe in dump mode makes: the
// dump tool's standard output streamed into a snapshot of its own as one
// file, tagged "database" and the database type.
//
//   - postgres: pg_dump --clean --if-exists (one database; plain SQL that
//     psql restores), or pg_dumpall when no database is named.
//   - mariadb, mysql: mysqldump --single-transaction (a consistent view of
//     InnoDB tables without locking them) --routines --events, of the
//     named databases or --all-databases.
//
// The password, when given, reaches the tool through its environment
// (PGPASSWORD, MYSQL_PWD), never its command line.
func DumpBackup(d *Database) (Backup, error) {
	if d.Mode != "dump" {
		return Backup{}, fmt.Errorf("mode %q makes no dump", d.Mode)
	}
	b := Backup{Tags: []string{"database", d.Type}}
	var pw string
	if d.PasswordFile != "" {
		var err error
		if pw, err = readSecret(d.PasswordFile); err != nil {
			return b, fmt.Errorf("password_file: %w", err)
		}
	}
	name := strings.Join(d.Databases, "+")
	if name == "" {
		name = "all"
	}
	switch d.Type {
	case "postgres":
		var args []string
		if d.Host != "" {
			args = append(args, "--host", d.Host)
		}
		if d.Socket != "" { // PostgreSQL takes the socket's directory as its host
			args = append(args, "--host", d.Socket)
		}
		if d.User != "" {
			args = append(args, "--username", d.User)
		}
		args = append(args, "--no-password")
		switch len(d.Databases) {
		case 0:
			b.Command = append([]string{"pg_dumpall"}, append(args, "--clean", "--if-exists")...)
		case 1:
			b.Command = append([]string{"pg_dump"}, append(args, "--clean", "--if-exists", "--dbname", d.Databases[0])...)
		default:
			return b, errors.New("postgres: pg_dump dumps one database; give one recipe per database, or none for pg_dumpall")
		}
		if pw != "" {
			b.Env = append(b.Env, "PGPASSWORD="+pw)
		}
		b.Filename = "postgres-" + name + ".sql"
	case "mariadb", "mysql":
		args := []string{"mysqldump", "--single-transaction", "--routines", "--events"}
		if d.Host != "" {
			args = append(args, "--host", d.Host, "--protocol", "tcp")
		}
		if d.Socket != "" {
			args = append(args, "--socket", d.Socket)
		}
		if d.User != "" {
			args = append(args, "--user", d.User)
		}
		if len(d.Databases) == 0 {
			args = append(args, "--all-databases")
		} else {
			args = append(args, "--databases")
			args = append(args, d.Databases...)
		}
		b.Command = args
		if pw != "" {
			b.Env = append(b.Env, "MYSQL_PWD="+pw)
		}
		b.Filename = d.Type + "-" + name + ".sql"
	default:
		return b, fmt.Errorf("unknown database type %q", d.Type)
	}
	return b, nil
}

// Docker is a client of the Docker Engine API on a unix socket, for the
// containers recipe.
type Docker struct {
	client *http.Client
	// Timeout is how long a container has to stop before the engine
	// kills it (the API's t parameter).
	Timeout time.Duration
}

// NewDocker talks to the Engine API on the unix socket at path.
func NewDocker(path string) *Docker {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Docker{client: &http.Client{Transport: tr, Timeout: 5 * time.Minute}, Timeout: 60 * time.Second}
}

func (d *Docker) call(ctx context.Context, method, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("docker engine: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return body, resp.StatusCode, nil
}

func apiError(what, name string, code int, body []byte) error {
	var m struct{ Message string }
	_ = json.Unmarshal(body, &m)
	if m.Message == "" {
		m.Message = strings.TrimSpace(string(body))
	}
	return fmt.Errorf("docker: %s container %s: HTTP %d: %s", what, name, code, m.Message)
}

// StopGroup stops the running containers among names, in order, and
// returns those it stopped (to start again with StartGroup). Containers
// already stopped are left alone and not started afterwards. On an error
// the ones stopped so far are returned with it.
func (d *Docker) StopGroup(ctx context.Context, names []string) ([]string, error) {
	var stopped []string
	for _, n := range names {
		body, code, err := d.call(ctx, http.MethodGet, "/containers/"+url.PathEscape(n)+"/json")
		if err != nil {
			return stopped, err
		}
		if code != http.StatusOK {
			return stopped, apiError("inspect", n, code, body)
		}
		var info struct{ State struct{ Running bool } }
		if err := json.Unmarshal(body, &info); err != nil {
			return stopped, fmt.Errorf("docker: inspect container %s: %w", n, err)
		}
		if !info.State.Running {
			continue
		}
		body, code, err = d.call(ctx, http.MethodPost, fmt.Sprintf("/containers/%s/stop?t=%d", url.PathEscape(n), int(d.Timeout.Seconds())))
		if err != nil {
			return stopped, err
		}
		if code != http.StatusNoContent && code != http.StatusNotModified {
			return stopped, apiError("stop", n, code, body)
		}
		stopped = append(stopped, n)
	}
	return stopped, nil
}

// StartGroup starts names in reverse order (the last stopped first),
// trying every one; the failures are returned joined.
func (d *Docker) StartGroup(ctx context.Context, names []string) error {
	var errs []error
	for i := len(names) - 1; i >= 0; i-- {
		n := names[i]
		body, code, err := d.call(ctx, http.MethodPost, "/containers/"+url.PathEscape(n)+"/start")
		if err == nil && code != http.StatusNoContent && code != http.StatusNotModified {
			err = apiError("start", n, code, body)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
