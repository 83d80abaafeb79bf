package checker_test

import (
	"context"
	"testing"

	"github.com/cairnbackup/cairn/internal/checker"
	"github.com/cairnbackup/cairn/internal/ticker"
)

// TestReadDataProgress: with ReadData a Counter counts every pack and
// its bytes, of the totals selected; without, it counts nothing.
func TestReadDataProgress(t *testing.T) {
	_, open := newRepo(t)
	for _, rd := range []bool{false, true} {
		c := ticker.Start(func(ticker.Counts) {})
		rep, err := checker.Check(context.Background(), open(), checker.Options{ReadData: rd, Progress: c})
		c.Stop()
		if err != nil {
			t.Fatal(err)
		}
		n := c.Counts()
		switch {
		case !rd && (n.Items != 0 || n.TotalItems != 0):
			t.Errorf("without ReadData counted %+v", n)
		case rd && (n.Items != uint64(rep.Packs) || n.TotalItems != n.Items || n.Bytes == 0 || n.Bytes != n.TotalBytes || n.Bytes > rep.BytesRead):
			t.Errorf("ReadData counted %+v; %d packs, %d bytes read", n, rep.Packs, rep.BytesRead)
		}
	}
}
