package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/minio/minio-go/v7"

	"github.com/cairnbackup/cairn/internal/backend"
)

// Save implements backend.Backend: one conditional PUT (If-None-Match: *),
// or a multipart upload above PartSize, of bytes verified on the way.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd backend.RewindReader) error {
	if err := backend.ValidName(h); err != nil {
		return fmt.Errorf("s3: save %v: %w", h, err)
	}
	return b.put(ctx, h, rd, false)
}

// ReplaceConfig replaces the config, or creates it: a plain PUT, which S3
// makes visible atomically, so readers see the old config or the new one.
func (b *Backend) ReplaceConfig(ctx context.Context, rd backend.RewindReader) error {
	return b.put(ctx, backend.Handle{Type: backend.Config, Name: "config"}, rd, true)
}

func (b *Backend) put(ctx context.Context, h backend.Handle, rd backend.RewindReader, replace bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: save %v: %w", h, err)
	}
	size := rd.Length()
	vr := &verifyingReader{src: rd, length: size, hash: sha256.New()}
	var opts minio.PutObjectOptions
	opts.PartSize = b.cfg.PartSize
	if backend.ContentNamed(h.Type) {
		vr.want, _ = hex.DecodeString(h.Name)
		if uint64(size) <= b.cfg.PartSize {
			// The server checks it too: a single PUT carries the SHA-256
			// the name promises, so damage after our check is refused.
			opts.UserMetadata = map[string]string{"x-amz-checksum-sha256": base64.StdEncoding.EncodeToString(vr.want)}
		}
	}
	conditional := !replace && !b.noConditional.Load()
	if conditional {
		opts.SetMatchETagExcept("*")
	}
	if !replace && !conditional {
		// Fallback for servers without conditional writes: not atomic
		// against a racing writer (see doc.go).
		if _, err := b.Stat(ctx, h); err == nil {
			return fmt.Errorf("s3: save %v: %w", h, backend.ErrExists)
		} else if !errors.Is(err, backend.ErrNotFound) {
			return err
		}
	}
	if size == 0 {
		// Nothing may ever be read from an empty body: check it now.
		if _, err := vr.Read(make([]byte, 1)); err != nil {
			return fmt.Errorf("s3: save %v: %w", h, err)
		}
	}
	_, err := b.client.PutObject(ctx, b.cfg.Bucket, b.key(h), vr, size, opts)
	switch {
	case vr.err != nil:
		// The reader failed or the bytes were wrong; the request was cut
		// before its end, so nothing was stored.
		return fmt.Errorf("s3: save %v: %w", h, vr.err)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("s3: save %v: %w", h, ctx.Err())
	case err != nil && conditional && isCode(err, "NotImplemented"):
		b.noConditional.Store(true)
		if err := rd.Rewind(); err != nil {
			return fmt.Errorf("s3: save %v: rewind: %w", h, err)
		}
		return b.put(ctx, h, rd, replace)
	case err != nil && isCode(err, "ConditionalRequestConflict"):
		// Another conditional write of the same key was in flight.
		if _, serr := b.Stat(ctx, h); serr == nil {
			return fmt.Errorf("s3: save %v: %w", h, backend.ErrExists)
		}
		return b.classify("save "+h.String(), err)
	case err != nil:
		return b.classify("save "+h.String(), err)
	}
	return nil
}

// verifyingReader passes the caller's bytes to the upload, hashing them,
// and refuses to hand over the last of them unless they are exactly Length
// bytes with the promised SHA-256. Withholding the end makes the HTTP
// request fail before the server has the whole object, so a wrong file
// never becomes visible.
type verifyingReader struct {
	src    io.Reader
	length int64
	read   int64
	hash   hash.Hash
	want   []byte // expected SHA-256; nil for config
	err    error  // why the upload was cut, sticky
	done   bool
}

var errTooLong = errors.New("reader gives more bytes than its length")

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.done {
		return 0, io.EOF
	}
	if rest := v.length - v.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n := 0
	var err error
	if len(p) > 0 {
		n, err = v.src.Read(p)
	}
	v.hash.Write(p[:n])
	v.read += int64(n)
	switch {
	case err != nil && err != io.EOF:
		v.err = err
		return 0, err
	case v.read < v.length && err == io.EOF:
		v.err = fmt.Errorf("reader ended after %d of %d bytes: %w", v.read, v.length, io.ErrUnexpectedEOF)
		return 0, v.err
	case v.read < v.length:
		return n, nil
	}
	// These are the last bytes: check before letting them go.
	if err == nil {
		var probe [1]byte
		for range 100 {
			m, perr := v.src.Read(probe[:])
			if m > 0 {
				v.err = errTooLong
				return 0, v.err
			}
			if perr == io.EOF {
				break
			}
			if perr != nil {
				v.err = perr
				return 0, v.err
			}
		}
	}
	if v.want != nil && !bytes.Equal(v.hash.Sum(nil), v.want) {
		v.err = backend.ErrHashMismatch
		return 0, v.err
	}
	v.done = true
	return n, nil
}
