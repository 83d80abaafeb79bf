package repository

// What the server reads of stored files to validate commits, without
// parsing the formats itself.

import (
	"context"
	"io"

	"github.com/cairnbackup/cairn/internal/backend"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

// IsCairnConfig reports whether a config file is a cairn repository's (it
// starts with the config's magic); a restic repository's is not. Whether
// it is a valid one is PeekConfig's to say.
func IsCairnConfig(raw []byte) bool {
	return len(raw) >= 4 && string(raw[:4]) == "CRC1"
}

// ReadStatement reads the signed statement at the head of a stored
// snapshot file, verified by its writer's key, loading no more than the
// head. It returns nil (and no error) for a file that is not a validly
// signed snapshot: the owner's check reports such files.
func ReadStatement(ctx context.Context, be backend.Backend, fi backend.FileInfo) (*snapshot.Statement, error) {
	n := min(int64(snapshot.HeadSize), fi.Size)
	var head []byte
	err := be.Load(ctx, fi.Handle, int(n), 0, func(rd io.Reader) error {
		var err error
		head, err = io.ReadAll(rd)
		return err
	})
	if err != nil {
		return nil, err
	}
	st, err := snapshot.HeadStatement(head)
	if err != nil {
		return nil, nil
	}
	return st, nil
}
