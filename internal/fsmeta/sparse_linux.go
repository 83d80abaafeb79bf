package fsmeta

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/cairnbackup/cairn/internal/snapshot"
)

// DataExtents returns the data runs of a sparse regular file of logical
// size size, found with SEEK_DATA/SEEK_HOLE. It returns nil for a dense
// file: when the file's allocated blocks cover its size (one fstat, so it
// is cheap to call for every file), when the file system cannot report
// holes, or when the only run is the whole file (e.g. compressed or inline
// data). A file that is all hole yields an empty, non-nil slice.
//
// Runs are block-granular: a run may include zero bytes around the data,
// and the area past the last run up to size is a hole. The file offset is
// left where it was.
func DataExtents(f *os.File, size int64) ([]snapshot.Extent, error) {
	if size <= 0 {
		return nil, nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var ext []snapshot.Extent
	var opErr error
	err = rc.Control(func(fd uintptr) {
		ext, opErr = dataExtents(int(fd), size)
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return nil, fmt.Errorf("data extents of %s: %w", f.Name(), err)
	}
	return ext, nil
}

func dataExtents(fd int, size int64) ([]snapshot.Extent, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	return dataExtentsBlocks(fd, size, st.Blocks)
}

// dataExtentsBlocks is dataExtents for a caller that already has the
// file's allocated block count (in 512-byte units).
func dataExtentsBlocks(fd int, size, blocks int64) ([]snapshot.Extent, error) {
	if size <= 0 || blocks*512 >= size {
		return nil, nil
	}
	saved, err := unix.Seek(fd, 0, unix.SEEK_CUR)
	if err != nil {
		return nil, err
	}
	defer unix.Seek(fd, saved, unix.SEEK_SET)

	ext := []snapshot.Extent{}
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only hole from off to EOF
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil, nil // no hole reporting: treat as dense
		}
		if err != nil {
			return nil, err
		}
		if data >= size {
			break // file grew; ignore what lies past the captured size
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		if hole > size {
			hole = size
		}
		if hole <= data {
			break // shrank concurrently; the caller's re-stat will notice
		}
		ext = append(ext, snapshot.Extent{Offset: data, Length: hole - data})
		off = hole
	}
	if len(ext) == 1 && ext[0].Offset == 0 && ext[0].Length == size {
		return nil, nil
	}
	return ext, nil
}
