package repository

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnbackup/cairn/internal/blob"
)

// TestJournalLiveSessionsKeepTheirOwn: a session adopts only the journals
// of sessions that are gone, never those of sessions still running with
// the same cache (which would index their packs a second time), and
// removes what it adopted once done. The journal of earlier versions is
// adopted too.
func TestJournalLiveSessionsKeepTheirOwn(t *testing.T) {
	c := &Cache{dir: t.TempDir()}
	a, err := c.openJournal()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.add(blob.ID{1}, []byte("header a")); err != nil {
		t.Fatal(err)
	}
	b, err := c.openJournal()
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := c.adoptDead(b); err != nil || len(recs) != 0 {
		t.Fatalf("adopted %d records of a live session (err %v)", len(recs), err)
	}
	a.release() // a dies without indexing its pack
	legacy := append(append([]byte{}, make([]byte, 32)...), 0, 0, 0, 0)
	legacy[0] = 2
	if err := os.WriteFile(filepath.Join(c.dir, "journal"), legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := c.openJournal()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := c.adoptDead(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("adopted %d records, want a's and the old journal's", len(recs))
	}
	if e, err := c.openJournal(); err != nil {
		t.Fatal(err)
	} else if recs, _ := c.adoptDead(e); len(recs) != 0 {
		t.Fatalf("a journal adopted by a live session was adopted again (%d records)", len(recs))
	} else {
		e.release()
	}
	if err := d.done(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "journal")); !os.IsNotExist(err) {
		t.Fatalf("old journal left after adoption: %v", err)
	}
	f, _ := c.openJournal()
	defer f.release()
	if recs, _ := c.adoptDead(f); len(recs) != 0 {
		t.Fatalf("adopted journals not removed: %d records again", len(recs))
	}
	b.release()
}
