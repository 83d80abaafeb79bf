package repohttp

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/restapi"
)

// Read answers HEAD or GET of a file, a range of it if asked.
func Read(q *Request, be backend.Backend) {
	ctx := q.R.Context()
	h := q.Path.Handle
	fi, err := be.Stat(ctx, h)
	if err != nil {
		q.Fail("stat", err)
		return
	}
	hdr := q.W.Header()
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Accept-Ranges", "bytes")
	if q.R.Method == http.MethodHead {
		hdr.Set("Content-Length", strconv.FormatInt(fi.Size, 10))
		q.W.WriteHeader(http.StatusOK)
		return
	}
	start, end, status := restapi.ResolveRange(q.R.Header.Get("Range"), fi.Size)
	if status == http.StatusRequestedRangeNotSatisfiable {
		hdr.Set("Content-Range", fmt.Sprintf("bytes */%d", fi.Size))
		q.Refuse(status, restapi.CodeBadRequest, "range %q does not fit a file of %d bytes", q.R.Header.Get("Range"), fi.Size)
		return
	}
	if status == http.StatusPartialContent {
		hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, fi.Size))
	}
	n := end - start + 1
	hdr.Set("Content-Length", strconv.FormatInt(n, 10))
	if n == 0 {
		q.W.WriteHeader(status)
		return
	}
	err = be.Load(ctx, h, int(n), start, func(rd io.Reader) error {
		q.W.WriteHeader(status)
		_, err := io.Copy(q.W, rd)
		return err
	})
	if err != nil && q.W.Status == 0 {
		q.Fail("load", err)
	} else if err != nil {
		q.Code = restapi.CodeInternal
		q.Log.Warn("load failed mid-response", "client", q.User, "repo", q.Path.RepoPath(), "file", h.String(), "err", err)
	}
}

// List answers GET of a file type's directory: its files and sizes, in
// the listing format the client asks for (v1 or v2).
func List(q *Request, be backend.Backend) {
	entries := []restapi.ListEntry{}
	err := be.List(q.R.Context(), q.Path.Handle.Type, func(fi backend.FileInfo) error {
		entries = append(entries, restapi.ListEntry{Name: fi.Name, Size: fi.Size})
		return nil
	})
	if err != nil {
		q.Fail("list", err)
		return
	}
	body, ct := restapi.EncodeList(entries, restapi.WantsV2(q.R.Header.Get("Accept")))
	q.W.Header().Set("Content-Type", ct)
	q.W.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.W.WriteHeader(http.StatusOK)
	q.W.Write(body)
}

// Delete answers DELETE of a file. A missing file is deleted already
// (restic needs DELETE to be idempotent) unless the client asks for
// strict answers (restapi.HeaderStrict: 404). removed is called with the
// file's size once it is gone, before the answer.
func Delete(q *Request, be backend.Backend, removed func(size int64)) {
	ctx, h := q.R.Context(), q.Path.Handle
	lenient := q.R.Header.Get(restapi.HeaderStrict) == ""
	fi, err := be.Stat(ctx, h)
	if errors.Is(err, backend.ErrNotFound) && lenient {
		q.W.WriteHeader(http.StatusOK)
		return
	}
	if err != nil {
		q.Fail("delete", err)
		return
	}
	if err := be.Remove(ctx, h); err != nil {
		if errors.Is(err, backend.ErrNotFound) && lenient {
			q.W.WriteHeader(http.StatusOK)
			return
		}
		q.Fail("delete", err)
		return
	}
	removed(fi.Size)
	q.Log.Info("deleted", "client", q.User, "repo", q.Path.RepoPath(), "file", h.String(), "size", fi.Size)
	q.W.WriteHeader(http.StatusOK)
}
