package rest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/backend/blockcache"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// Backend is a repository on a REST server.
type Backend struct {
	base     *url.URL // without user info
	user     string
	password string
	hasAuth  bool
	client   *http.Client
	conns    int
	location string

	blocks *blockcache.Cache // small reads of packs (Load)
}

var _ backend.Backend = (*Backend)(nil)

func newBackend(cfg Config) (*Backend, error) {
	if cfg.URL == nil {
		return nil, errors.New("rest: no URL")
	}
	if err := cfg.checkTransport(); err != nil {
		return nil, fmt.Errorf("rest: %w", err)
	}
	conns := cfg.Connections
	if conns <= 0 {
		conns = 5
	}
	base := *cfg.URL
	base.User = nil
	b := &Backend{base: &base, conns: conns, location: "rest:" + Redacted(cfg.URL)}
	if cfg.URL.User != nil {
		b.user = cfg.URL.User.Username()
		b.password, _ = cfg.URL.User.Password()
		b.hasAuth = true
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true // ranged reads need exact lengths
	tr.MaxIdleConnsPerHost = conns
	if cfg.RootCAs != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	}
	b.client = &http.Client{Transport: cfg.Limits.Transport(tr)}
	b.blocks = blockcache.New(b.fetchBlock)
	return b, nil
}

// Open opens an existing repository: one whose config exists.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := b.Stat(ctx, backend.Handle{Type: backend.Config, Name: "config"}); err != nil {
		b.Close()
		if errors.Is(err, backend.ErrNotFound) {
			return nil, fmt.Errorf("rest: no repository at %s (it has no config): %w", b.location, backend.ErrNotFound)
		}
		return nil, err
	}
	return b, nil
}

// Create asks the server to create a new repository; the caller then saves
// its config. An existing repository fails with backend.ErrExists.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	_, err = b.Stat(ctx, backend.Handle{Type: backend.Config, Name: "config"})
	switch {
	case err == nil:
		b.Close()
		return nil, fmt.Errorf("rest: a repository already exists at %s: %w", b.location, backend.ErrExists)
	case !errors.Is(err, backend.ErrNotFound):
		b.Close()
		return nil, err
	}
	resp, err := b.do(ctx, http.MethodPost, "?create=true", nil, nil)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("rest: create repository at %s: %w", b.location, err)
	}
	resp.Body.Close()
	return b, nil
}

// do sends one request; rel is relative to the base URL. A non-2xx answer
// becomes an error wrapping the matching sentinel.
func (b *Backend) do(ctx context.Context, method, rel string, body io.Reader, hdr map[string]string) (*http.Response, error) {
	req, err := b.request(ctx, method, rel, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return resp, errorFrom(resp)
	}
	return resp, nil
}

func (b *Backend) request(ctx context.Context, method, rel string, body io.Reader) (*http.Request, error) {
	u := b.base.String() + rel
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if b.hasAuth {
		req.SetBasicAuth(b.user, b.password)
	}
	req.Header.Set("Accept", restapi.MediaV2)
	req.Header.Set(restapi.HeaderStrict, "1")
	return req, nil
}

// errorFrom turns a failed response into an error, and closes its body.
func errorFrom(resp *http.Response) error {
	defer resp.Body.Close()
	buf, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	msg, _, _ := strings.Cut(strings.TrimSpace(string(buf)), "\n")
	return restapi.Err(resp.StatusCode, resp.Header.Get(restapi.HeaderError), msg)
}

// Properties implements backend.Backend.
func (b *Backend) Properties() backend.Properties {
	return backend.Properties{Connections: b.conns, Location: b.location}
}

// SequencesCommits tells the repository that the server orders each
// writer's commits (backend.ServerSequenced).
func (b *Backend) SequencesCommits() bool { return true }

// Close implements backend.Backend.
func (b *Backend) Close() error {
	b.client.CloseIdleConnections()
	return nil
}

// trackingReader remembers the first error of the caller's reader, so a
// failed upload reports the source's error, not the transport's.
type trackingReader struct {
	r   io.Reader
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

// Save implements backend.Backend.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd backend.RewindReader) error {
	if err := backend.ValidName(h); err != nil {
		return fmt.Errorf("rest: save %v: %w", h, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rest: save %v: %w", h, err)
	}
	n := rd.Length()
	tr := &trackingReader{r: rd}
	var body io.Reader = tr
	if n == 0 {
		body = http.NoBody
	}
	req, err := b.request(ctx, http.MethodPost, restapi.URLPath(h), body)
	if err != nil {
		return fmt.Errorf("rest: save %v: %w", h, err)
	}
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/octet-stream")
	if n > 0 {
		// The server refuses an upload over quota or out of turn from its
		// headers alone, without reading the body (R26). Waiting for its
		// "100 Continue" (at most the transport's ExpectContinueTimeout,
		// 1 s, for a server that never sends one) means such a refusal
		// arrives as its status, instead of as a connection reset while
		// the body was still being written.
		req.Header.Set("Expect", "100-continue")
	}
	setSessionHeader(ctx, req, h)
	resp, err := b.client.Do(req)
	if err != nil {
		switch {
		case tr.err != nil:
			err = tr.err
		case ctx.Err() != nil:
			err = ctx.Err()
		default:
			// A server that refuses an upload before reading its body
			// (the file exists, a quota) closes the connection, and the
			// refusal may be lost in the broken write. A file that is
			// stored now was stored by someone else: files are never
			// overwritten, and the server stores only whole uploads.
			if _, serr := b.Stat(ctx, h); serr == nil {
				err = fmt.Errorf("%w (the server closed the connection while the upload was sent: %v)", backend.ErrExists, err)
			}
		}
		return fmt.Errorf("rest: save %v: %w", h, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("rest: save %v: %w", h, errorFrom(resp))
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := backend.ValidName(h); err != nil {
		return backend.FileInfo{}, fmt.Errorf("rest: stat %v: %w", h, err)
	}
	resp, err := b.do(ctx, http.MethodHead, restapi.URLPath(h), nil, nil)
	var se *restapi.StatusError
	if errors.As(err, &se) && se.Status == http.StatusForbidden && se.Msg == "" {
		// A refusal to HEAD has no body to say why (a disabled client):
		// a GET is refused with the server's reason.
		if r2, err2 := b.do(ctx, http.MethodGet, restapi.URLPath(h), nil, nil); err2 != nil {
			err = err2
		} else {
			r2.Body.Close()
		}
	}
	if err != nil {
		return backend.FileInfo{}, fmt.Errorf("rest: stat %v: %w", h, err)
	}
	resp.Body.Close()
	if resp.ContentLength < 0 {
		return backend.FileInfo{}, fmt.Errorf("rest: stat %v: the server sent no Content-Length", h)
	}
	return backend.FileInfo{Handle: h, Size: resp.ContentLength}, nil
}

// Remove implements backend.Backend.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := backend.ValidName(h); err != nil {
		return fmt.Errorf("rest: remove %v: %w", h, err)
	}
	resp, err := b.do(ctx, http.MethodDelete, restapi.URLPath(h), nil, nil)
	if err != nil {
		return fmt.Errorf("rest: remove %v: %w", h, err)
	}
	resp.Body.Close()
	return nil
}

// List implements backend.Backend. The listing is fetched whole before fn
// runs, so fn may remove what it is given.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if !backend.ValidType(t) {
		return fmt.Errorf("rest: list %q: %w", t, backend.ErrInvalidName)
	}
	if t == backend.Config {
		return backend.ListConfig(ctx, b, fn)
	}
	resp, err := b.do(ctx, http.MethodGet, restapi.URLPath(backend.Handle{Type: t}), nil, nil)
	if err != nil {
		return fmt.Errorf("rest: list %s: %w", t, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("rest: list %s: %w", t, err)
	}
	entries, err := restapi.DecodeList(resp.Header.Get("Content-Type"), body)
	if err != nil {
		return fmt.Errorf("rest: list %s: %w", t, err)
	}
	for _, e := range entries {
		h := backend.Handle{Type: t, Name: e.Name}
		if backend.ValidName(h) != nil {
			return fmt.Errorf("rest: list %s: the server listed an invalid name %q", t, e.Name)
		}
		fi := backend.FileInfo{Handle: h, Size: e.Size}
		if e.Size < 0 { // v1 server: sizes need a HEAD each
			if fi, err = b.Stat(ctx, h); errors.Is(err, backend.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Load implements backend.Backend.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := backend.ValidName(h); err != nil {
		return fmt.Errorf("rest: load %v: %w", h, err)
	}
	if length < 0 || offset < 0 {
		return fmt.Errorf("rest: load %v: invalid range: length %d, offset %d", h, length, offset)
	}
	err := b.blocks.Load(ctx, h, length, offset, fn, func() error { return b.load(ctx, h, length, offset, fn) })
	if err != nil {
		return fmt.Errorf("rest: load %v: %w", h, err)
	}
	return nil
}

// fetchBlock reads up to n bytes of h from offset, fewer at its end
// (blockcache.FetchFunc).
func (b *Backend) fetchBlock(ctx context.Context, h backend.Handle, offset int64, n int) ([]byte, error) {
	resp, err := b.do(ctx, http.MethodGet, restapi.URLPath(h), nil, map[string]string{"Range": restapi.FormatRange(offset, n)})
	if err != nil {
		return nil, err // do closed the body
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(offset, 10)+"-") {
			return nil, fmt.Errorf("the server answered range %q for offset %d", resp.Header.Get("Content-Range"), offset)
		}
	case http.StatusOK: // the whole file despite the Range
		if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
			return nil, fmt.Errorf("skip to offset %d: %w", offset, io.ErrUnexpectedEOF)
		}
	default:
		return nil, fmt.Errorf("unexpected status %s", resp.Status)
	}
	buf := make([]byte, n)
	k, err := io.ReadFull(resp.Body, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	if resp.StatusCode == http.StatusPartialContent && resp.ContentLength >= 0 && int64(k) != resp.ContentLength {
		return nil, fmt.Errorf("%d of %d bytes: %w", k, resp.ContentLength, io.ErrUnexpectedEOF)
	}
	return buf[:k], nil
}

func (b *Backend) load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	resp, err := b.do(ctx, http.MethodGet, restapi.URLPath(h), nil, map[string]string{"Range": restapi.FormatRange(offset, length)})
	if resp != nil && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		// Past the end, or exactly at it (an empty tail).
		return backend.LoadPastEnd(ctx, b, h, length, offset, fn)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var rd io.Reader = resp.Body
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(offset, 10)+"-") {
			return fmt.Errorf("the server answered range %q for offset %d", resp.Header.Get("Content-Range"), offset)
		}
	case http.StatusOK: // the whole file despite the Range
		if offset > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
				return fmt.Errorf("skip to offset %d: %w", offset, io.ErrUnexpectedEOF)
			}
		}
		if length > 0 {
			rd = io.LimitReader(resp.Body, int64(length))
		}
	default:
		return fmt.Errorf("unexpected status %s", resp.Status)
	}
	if length > 0 && resp.StatusCode == http.StatusPartialContent && resp.ContentLength != int64(length) {
		return fmt.Errorf("asked for %d bytes at %d, the server has %d: %w", length, offset, resp.ContentLength, io.ErrUnexpectedEOF)
	}
	want := int64(-1)
	if length > 0 {
		want = int64(length)
	}
	return fn(backend.ExactReader(rd, want))
}

// ReplaceConfig stores a config over the existing one. A cairn server
// takes it only from a replica tenant, and only when the new config is
// one of the repository's stored versions (configs/<its SHA-256>): how
// replication (internal/replicate) keeps a replica's config the
// primary's.
func (b *Backend) ReplaceConfig(ctx context.Context, rd backend.RewindReader) error {
	return b.Save(ctx, backend.Handle{Type: backend.Config, Name: "config"}, rd)
}
