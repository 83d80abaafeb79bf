//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// backupsStatus is the fleet pacing of `server status --json`.
type backupsStatus struct {
	Limit    int        `json:"limit"`
	Running  int        `json:"running"`
	Queued   []string   `json:"queued"`
	QueuedAt time.Time  `json:"queued_at"`
	Peak     int        `json:"peak"`
	PeakAt   *time.Time `json:"peak_at"`
	Since    time.Time  `json:"since"`
}

// gauge reads one unlabelled gauge from the server's /metrics, -1 if absent.
func (s *serverEnv) gauge(t *testing.T, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(s.metricsText(t))
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s %q: %v", name, m[1], err)
	}
	return int(v)
}

// TestFleetPacing (issue 18, "done when"): 20 clients back up at once to
// one server run with --max-backups 4. Every backup reads its data from
// a FIFO, so it holds its session until the test writes: the server
// must then show 4 running and 16 queued, and each queued backup says
// so. Once released, all 20 finish with a snapshot, and the server's
// high-water mark of running sessions is exactly 4.
func TestFleetPacing(t *testing.T) {
	const clients, limit = 20, 4
	e := newEnv(t)
	s := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = s.data
	e.vars["XDG_CONFIG_HOME"] = filepath.Join(e.dir, "config")
	e.ok("server", "init")
	name := func(i int) string { return fmt.Sprintf("c%02d", i) }
	for i := range clients {
		pw := filepath.Join(e.dir, name(i)+".pass")
		os.WriteFile(pw, []byte(name(i)+"-secret-pw\n"), 0o600)
		e.ok("server", "client", "add", name(i), "--password-file", pw)
	}
	s.start(t, "--max-backups", strconv.Itoa(limit))
	fp := s.fingerprint(t)
	parallel(t, clients, 4, func(i int) {
		if r := s.run("-r", s.url(name(i), "main"), "init", "--server-fingerprint", fp); r.code != 0 {
			t.Errorf("init %s: exit %d\n%s", name(i), r.code, r.stderr)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	if got := s.gauge(t, "cairn_server_backups_limit"); got != limit {
		t.Fatalf("cairn_server_backups_limit %d", got)
	}

	fifos := make([]string, clients)
	results := make([]result, clients)
	var wg sync.WaitGroup
	for i := range clients {
		fifos[i] = filepath.Join(e.dir, name(i)+".fifo")
		if err := syscall.Mkfifo(fifos[i], 0o600); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.run("-r", s.url(name(i), "main"), "--json", "backup", "--stdin-from-command", "--stdin-filename", "data", "--", "cat", fifos[i])
		}()
	}
	release := sync.OnceFunc(func() {
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f, err := os.OpenFile(fifos[i], os.O_WRONLY, 0) // waits for the backup's cat
				if err != nil {
					t.Error(err)
					return
				}
				f.WriteString(strings.Repeat(name(i)+" data\n", 500))
				f.Close()
			}()
		}
	})
	defer func() { release(); wg.Wait() }()

	// All blocked: 4 hold sessions, 16 wait in the queue.
	deadline := time.Now().Add(2 * time.Minute) // 20 processes each unlock a key (argon2id) first
	for s.gauge(t, "cairn_server_backups_running") != limit || s.gauge(t, "cairn_server_backups_queued") != clients-limit {
		if time.Now().After(deadline) {
			t.Fatalf("running %d, queued %d, not %d and %d; server log:\n%s", s.gauge(t, "cairn_server_backups_running"),
				s.gauge(t, "cairn_server_backups_queued"), limit, clients-limit, s.log())
		}
		time.Sleep(50 * time.Millisecond) // polling the server's gauges, not synchronising
	}
	st := s.status(t).Backups
	if st == nil || st.Limit != limit || st.Running != limit || len(st.Queued) != clients-limit || st.Peak != limit {
		t.Fatalf("server status backups: %+v", st)
	}
	if text := s.ok("server", "status").stdout; !strings.Contains(text, fmt.Sprintf("Backups: %d running of at most %d", limit, limit)) ||
		!strings.Contains(text, fmt.Sprintf("%d queued at", clients-limit)) {
		t.Errorf("server status text lacks the queue:\n%s", text)
	}

	release()
	wg.Wait()
	queued, snaps := 0, map[string]int64{}
	for _, c := range s.status(t).Clients {
		snaps[c.Name] = c.Snapshots
	}
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("backup of %s: exit %d\n%s", name(i), r.code, r.stderr)
			continue
		}
		if strings.Contains(r.stdout, `"message_type":"queued"`) {
			queued++
		}
		if n := snaps[name(i)]; n != 1 {
			t.Errorf("the server received %d snapshots from %s, want 1", n, name(i))
		}
	}
	if queued < clients-limit {
		t.Errorf("%d backups said they were queued, want at least %d", queued, clients-limit)
	}
	peak := s.gauge(t, "cairn_server_backups_running_peak")
	if peak < 2 || peak > limit {
		t.Errorf("peak of running backups %d, want 2 to %d", peak, limit)
	}
	if got := s.gauge(t, "cairn_server_backups_running"); got != 0 {
		t.Errorf("%d backups still running after all finished", got)
	}
	if st := s.status(t).Backups; st == nil || st.Peak != peak || st.Running != 0 {
		t.Errorf("server status after: %+v", st)
	}
}

// parallel runs f(0…n-1), at most width at a time.
func parallel(t *testing.T, n, width int, f func(i int)) {
	t.Helper()
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}
