package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/snapshot"
	"github.com/cairnbackup/cairn/internal/walker"
)

// lsMode is a node's type and permissions as ls -l shows them:
// "-rw-r--r--", "drwxrwxrwt", "lrwxrwxrwx", "-rwsr-xr-x", "crw-rw----".
func lsMode(n *snapshot.Node) string {
	b := []byte("?---------")
	switch n.Type {
	case snapshot.TypeFile:
		b[0] = '-'
	case snapshot.TypeDir:
		b[0] = 'd'
	case snapshot.TypeSymlink:
		b[0] = 'l'
	case snapshot.TypeFIFO:
		b[0] = 'p'
	case snapshot.TypeCharDev:
		b[0] = 'c'
	case snapshot.TypeBlkDev:
		b[0] = 'b'
	case snapshot.TypeSocket:
		b[0] = 's'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if n.Mode&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	// setuid, setgid, sticky: lower case over x, upper case without it.
	special := func(bit uint32, pos int, c byte) {
		if n.Mode&bit == 0 {
			return
		}
		if b[pos] == 'x' {
			b[pos] = c
		} else {
			b[pos] = c - 'a' + 'A'
		}
	}
	special(0o4000, 3, 's')
	special(0o2000, 6, 's')
	special(0o1000, 9, 't')
	return string(b)
}

// longListing collects ls -l rows and prints them with the columns of
// owner, group and size aligned to their widest cell and the name last,
// never padded: a long path does not push the other columns right.
type longListing struct {
	rows          [][5]string // mode, user, group, size, time + name
	names         []string
	wUser, wGroup int
	wSize         int
	hardLinkSizes map[string]uint64 // files with more than one link, by path from the root
	ctx           context.Context
	repo          *repository.Repository
	root          blob.ID
}

func newLongListing(ctx context.Context, repo *repository.Repository, root blob.ID) *longListing {
	return &longListing{ctx: ctx, repo: repo, root: root, hardLinkSizes: map[string]uint64{}}
}

// size is n's size; for a second name of a hard link, which stores no
// content and no size, that of the first.
func (l *longListing) size(rel string, n *snapshot.Node) uint64 {
	if n.Type != snapshot.TypeFile {
		return n.Size
	}
	if n.HardLinkTo == "" {
		if n.Links > 1 {
			l.hardLinkSizes[rel] = n.Size
		}
		return n.Size
	}
	if s, ok := l.hardLinkSizes[n.HardLinkTo]; ok {
		return s
	}
	// The first name is outside the listed part (ls SNAPSHOT PATH).
	// Looked up once per first name, found or not.
	size := n.Size
	if first, err := walker.FindNode(l.ctx, l.repo, l.root, n.HardLinkTo); err == nil && first.Type == snapshot.TypeFile {
		size = first.Size
	}
	l.hardLinkSizes[n.HardLinkTo] = size
	return size
}

func (l *longListing) add(rel, full string, n *snapshot.Node) {
	user, group := n.User, n.Group
	if user == "" {
		user = fmt.Sprint(n.UID)
	}
	if group == "" {
		group = fmt.Sprint(n.GID)
	}
	name := displayText(full)
	if n.Type == snapshot.TypeSymlink {
		name += " -> " + displayText(n.LinkTarget)
	}
	row := [5]string{lsMode(n), displayText(user), displayText(group), fmt.Sprint(l.size(rel, n)), n.MTime.Local().Format("2006-01-02 15:04:05")}
	l.wUser = max(l.wUser, len([]rune(row[1])))
	l.wGroup = max(l.wGroup, len([]rune(row[2])))
	l.wSize = max(l.wSize, len(row[3]))
	l.rows = append(l.rows, row)
	l.names = append(l.names, name)
}

func (l *longListing) flush(w io.Writer) error {
	for i, r := range l.rows {
		pad := func(s string, width int) string { return s + strings.Repeat(" ", width-len([]rune(s))) }
		if _, err := fmt.Fprintf(w, "%s %s %s %*s %s %s\n", r[0], pad(r[1], l.wUser), pad(r[2], l.wGroup), l.wSize, r[3], r[4], l.names[i]); err != nil {
			return err
		}
	}
	return nil
}
