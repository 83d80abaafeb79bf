//go:build linux

package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The web status page in a real browser: headless Chromium driven over
// the DevTools protocol (a minimal client below: a WebSocket, JSON
// commands and events). The browser fills in and submits the login form
// itself, so the CSRF token, the cookies and the redirects are the
// browser's own.

// cdp is a DevTools-protocol session with one page.
type cdp struct {
	t      *testing.T
	conn   net.Conn
	rd     *bufio.Reader
	id     int
	events []map[string]any
}

// dialCDP opens a WebSocket (RFC 6455, client side) to a DevTools URL.
func dialCDP(t *testing.T, wsURL string) *cdp {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	key := make([]byte, 16)
	rand.Read(key)
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString(key))
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("DevTools WebSocket handshake: %v %v", resp, err)
	}
	return &cdp{t: t, conn: conn, rd: rd}
}

func (c *cdp) send(msg []byte) error {
	hdr := []byte{0x81} // FIN, text
	switch n := len(msg); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	mask := make([]byte, 4)
	rand.Read(mask)
	hdr = append(hdr, mask...)
	body := make([]byte, len(msg))
	for i := range msg {
		body[i] = msg[i] ^ mask[i%4]
	}
	_, err := c.conn.Write(append(hdr, body...))
	return err
}

// recv reads one whole message (joining fragments, skipping control
// frames).
func (c *cdp) recv() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.rd, h[:]); err != nil {
			return nil, err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(c.rd, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(c.rd, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 64<<20 {
			return nil, fmt.Errorf("frame of %d bytes", n)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(c.rd, p); err != nil {
			return nil, err
		}
		op := h[0] & 0x0f
		if op == 8 {
			return nil, errors.New("closed by the browser")
		}
		if op >= 8 { // ping, pong
			continue
		}
		msg = append(msg, p...)
		if h[0]&0x80 != 0 {
			return msg, nil
		}
	}
}

// call sends a command and returns its result; events that arrive
// meanwhile are kept for wait.
func (c *cdp) call(method string, params map[string]any) map[string]any {
	c.t.Helper()
	c.id++
	b, _ := json.Marshal(map[string]any{"id": c.id, "method": method, "params": params})
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.send(b); err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	for {
		raw, err := c.recv()
		if err != nil {
			c.t.Fatalf("%s: %v", method, err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			c.t.Fatalf("%s: %v", method, err)
		}
		if id, ok := m["id"].(float64); ok && int(id) == c.id {
			if e, ok := m["error"]; ok {
				c.t.Fatalf("%s: %v", method, e)
			}
			res, _ := m["result"].(map[string]any)
			return res
		}
		if _, ok := m["method"]; ok {
			c.events = append(c.events, m)
		}
	}
}

// wait returns once the event has arrived (since the last wait for it).
func (c *cdp) wait(method string) {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	for {
		for i, ev := range c.events {
			if ev["method"] == method {
				c.events = append(c.events[:i:i], c.events[i+1:]...)
				return
			}
		}
		raw, err := c.recv()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", method, err)
		}
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil && m["method"] != nil {
			c.events = append(c.events, m)
		}
	}
}

// eval evaluates a JavaScript expression in the page and returns its
// value as a string.
func (c *cdp) eval(expr string) string {
	c.t.Helper()
	res := c.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if ex, ok := res["exceptionDetails"]; ok {
		c.t.Fatalf("evaluate %q: %v", expr, ex)
	}
	r, _ := res["result"].(map[string]any)
	return fmt.Sprint(r["value"])
}

// navigate loads url (or, with url "", waits for a load the page started).
func (c *cdp) load(do func()) {
	c.t.Helper()
	do()
	c.wait("Page.loadEventFired")
}

// startChromium runs headless Chromium with DevTools on a port it picks
// and returns a session with its first page. Under CI=true a missing
// chromium fails the test.
func startChromium(t *testing.T) *cdp {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; .ci/run installs it (Debian package chromium)")
		}
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	profile := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
		"--user-data-dir="+profile, "--window-size=1280,800", "about:blank")
	cmd.Env = append(os.Environ(), "HOME="+profile)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`DevTools listening on (ws://\S+)`)
		sent := false
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	var browserURL string
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatal("chromium exited without a DevTools address")
		}
		browserURL = u
	case <-time.After(60 * time.Second):
		t.Fatal("chromium did not report its DevTools address within a minute")
	}
	bu, _ := url.Parse(browserURL)
	resp, err := http.Get("http://" + bu.Host + "/json/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if tg.Type == "page" {
			c := dialCDP(t, tg.WS)
			c.call("Page.enable", nil)
			c.call("Runtime.enable", nil)
			return c
		}
	}
	t.Fatalf("no page among chromium's targets: %+v", targets)
	return nil
}

// TestWebStatusPage: a real server with a client that backed up and
// drilled; Chromium logs in through the form, reads the client's row on
// the overview, opens the client page with its chart, keeps a
// screenshot, and logs out; a wrong password keeps it out.
func TestWebStatusPage(t *testing.T) {
	e := newEnv(t)
	s := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = s.data
	e.vars["XDG_CONFIG_HOME"] = filepath.Join(e.dir, "config")
	e.ok("server", "init")
	pw := filepath.Join(e.dir, "alice.pass")
	os.WriteFile(pw, []byte("alice-secret-pw\n"), 0o600)
	e.ok("server", "client", "add", "alice", "--password-file", pw)
	apw := filepath.Join(e.dir, "ops.pass")
	os.WriteFile(apw, []byte("ops-admin-pw-123\n"), 0o600)
	e.ok("server", "admin", "add", "ops", "--password-file", apw)
	expectExit(t, e.run("server", "admin", "add", "ops", "--password-file", apw), 1, "already exists")
	short := filepath.Join(e.dir, "short.pass")
	os.WriteFile(short, []byte("short\n"), 0o600)
	expectExit(t, e.run("server", "admin", "add", "x", "--password-file", short), 1, "too short")
	if out := e.ok("server", "admin", "list").stdout; !strings.Contains(out, "ops") {
		t.Fatalf("admin list:\n%s", out)
	}
	s.start(t, "--check-every", "100ms", "--ui-listen", "127.0.0.1:0")
	if s.ui == "" {
		t.Fatalf("the server did not report its status page; log:\n%s", s.log())
	}
	repo := s.url("alice", "main")
	e.ok("-r", repo, "init", "--server-fingerprint", s.fingerprint(t))
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "f"), 200000)
	e.ok("-r", repo, "backup", src)
	e.ok("-r", repo, "drill")
	base := "http://" + s.ui + "/ui/"

	b := startChromium(t)
	login := func(pass string) {
		t.Helper()
		b.load(func() { b.call("Page.navigate", map[string]any{"url": base}) })
		if p := b.eval("location.pathname"); p != "/ui/login" {
			t.Fatalf("before login the page is %s", p)
		}
		b.eval(fmt.Sprintf(`document.getElementById("name").value = "ops"; document.getElementById("password").value = %q`, pass))
		b.load(func() { b.eval(`document.getElementById("login").click(); "clicked"`) })
	}
	login("not-the-password")
	if p, msg := b.eval("location.pathname"), b.eval(`(document.getElementById("error")||{}).textContent`); p != "/ui/login" || !strings.Contains(msg, "Wrong name or password") {
		t.Fatalf("wrong password: at %s, %q", p, msg)
	}
	login("ops-admin-pw-123")
	if p := b.eval("location.pathname"); p != "/ui/" {
		t.Fatalf("after login the page is %s: %s", p, b.eval("document.body.innerText"))
	}
	if js := b.eval("document.cookie"); strings.Contains(js, "cairn_session") {
		t.Fatalf("the session cookie is readable by scripts: %q", js)
	}
	row := b.eval(`document.getElementById("client-alice").innerText`)
	class := b.eval(`document.getElementById("client-alice").className`)
	for _, want := range []string{"alice", "OK", "KiB", "just now"} {
		if !strings.Contains(row, want) {
			t.Fatalf("alice's row lacks %q: %q", want, row)
		}
	}
	if class != "ok" {
		t.Fatalf("alice's row is coloured %q, want ok", class)
	}
	shot := b.call("Page.captureScreenshot", map[string]any{"format": "png"})
	png, err := base64.StdEncoding.DecodeString(fmt.Sprint(shot["data"]))
	if err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	dir := os.Getenv("CAIRN_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "web-status-overview.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the status page: %s", path)

	b.load(func() { b.eval(`document.querySelector('a[href="/ui/client/alice"]').click(); "clicked"`) })
	if p := b.eval("location.pathname"); p != "/ui/client/alice" {
		t.Fatalf("client page: at %s", p)
	}
	if n := b.eval(`String(document.querySelectorAll("svg.chart circle").length)`); n == "0" {
		t.Fatal("the client page has no chart points")
	}
	if d := b.eval(`document.getElementById("drills").innerText`); !strings.Contains(d, "alice/main") || strings.Contains(d, "never") {
		t.Fatalf("drills on the client page: %q", d)
	}
	b.load(func() { b.eval(`document.querySelector('form[action="/ui/logout"] button').click(); "clicked"`) })
	if p := b.eval("location.pathname"); p != "/ui/login" {
		t.Fatalf("after logout at %s", p)
	}
	b.load(func() { b.call("Page.navigate", map[string]any{"url": base}) })
	if p := b.eval("location.pathname"); p != "/ui/login" {
		t.Fatalf("after logout the overview is at %s", p)
	}
	e.ok("server", "admin", "remove", "ops")
	expectExit(t, e.run("server", "admin", "remove", "ops"), 1, "no such admin")
}
