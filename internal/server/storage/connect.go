package storage

import (
	"context"
	"fmt"
	"os"

	"github.com/cairnbackup/cairn/internal/backend/location"
)

// Connect opens the storage at loc (a directory, or s3:http[s]://host
// [:port]/bucket[/prefix]; "" is the directory dflt); with create it makes
// a missing directory or bucket.
func Connect(ctx context.Context, dflt, loc string, create bool) (Storage, error) {
	if loc == "" {
		return &localStorage{root: dflt}, nil
	}
	l, err := location.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", loc, err)
	}
	switch l.Kind {
	case location.Local:
		if create {
			if err := os.MkdirAll(l.Path, 0o700); err != nil {
				return nil, fmt.Errorf("storage: %w", err)
			}
		} else if _, err := os.Stat(l.Path); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return &localStorage{root: l.Path}, nil
	case location.S3:
		return newS3Storage(ctx, l, create)
	}
	return nil, fmt.Errorf("storage %s: a server stores repositories in a directory or an S3 bucket", loc)
}
