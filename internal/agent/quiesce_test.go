package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSQLSessionWaitsForEachStatement: a statement's output is what the
// client printed before the echo of the marker that follows it; a client
// that exits makes the statement fail with its standard error.
func TestSQLSessionWaitsForEachStatement(t *testing.T) {
	// sed stands in for psql or mysql: it prints each statement, and the
	// marker query's value as those clients print a one-column row.
	s, err := startSession(context.Background(), []string{"sed", "-u", `s/^SELECT '\(cairn-done-[0-9]*\)';$/\1/`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"FLUSH TABLES WITH READ LOCK;", "UNLOCK TABLES;"} {
		got, err := s.query(sql)
		if err != nil || !reflect.DeepEqual(got, []string{sql}) {
			t.Fatalf("query %q: %q, %v", sql, got, err)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	s, err = startSession(context.Background(), []string{"sh", "-c", "read l; echo 'ERROR 1045: Access denied' >&2; exit 1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.query("FLUSH TABLES WITH READ LOCK;"); err == nil || !strings.Contains(err.Error(), "Access denied") || !strings.Contains(err.Error(), "FLUSH TABLES") {
		t.Fatalf("a client that exited: %v", err)
	}
}

// TestWalSegmentsAndEndTar: the WAL from the start segment to the stop
// segment of the timeline, and history files, go into the tar with
// backup_label; a needed segment that is gone fails.
func TestWalSegmentsAndEndTar(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"000000010000000000000002", "000000010000000000000003", "000000010000000000000004",
		"0000000100000001000000FF", "000000020000000000000003", "00000002.history", "000000010000000000000003.00000028.backup"} {
		os.WriteFile(filepath.Join(dir, n), []byte("wal "+n), 0o600)
	}
	os.Mkdir(filepath.Join(dir, "archive_status"), 0o700)
	segs, err := walSegments(dir, "000000010000000000000003", "000000010000000000000004")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"000000010000000000000003", "000000010000000000000004", "00000002.history"}
	if !reflect.DeepEqual(segs, want) {
		t.Fatalf("segments %q, want %q", segs, want)
	}
	if _, err := walSegments(dir, "000000010000000000000001", "000000010000000000000004"); err == nil || !strings.Contains(err.Error(), "wal_keep_size") {
		t.Fatalf("a recycled start segment: %v", err)
	}

	var buf bytes.Buffer
	if err := writeEndTar(&buf, []byte("START WAL LOCATION: 0/3000028\n"), nil, dir, segs); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		b, _ := io.ReadAll(tr)
		if strings.HasPrefix(h.Name, "pg_wal/0") && string(b) != "wal "+strings.TrimPrefix(h.Name, "pg_wal/") {
			t.Errorf("%s holds %q", h.Name, b)
		}
	}
	if want := []string{"backup_label", "pg_wal/", "pg_wal/000000010000000000000003", "pg_wal/000000010000000000000004", "pg_wal/00000002.history"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("tar holds %q, want %q", names, want)
	}
}

func TestDataDirExcludes(t *testing.T) {
	ex := postgresExcludes("/var/lib/postgresql/15/main/")
	for _, want := range []string{"/var/lib/postgresql/15/main/pg_wal/*", "/var/lib/postgresql/15/main/postmaster.pid", "pgsql_tmp*"} {
		if !strings.Contains(strings.Join(ex, "\n"), want) {
			t.Errorf("postgres excludes lack %q: %q", want, ex)
		}
	}
	if got := mariadbExcludes("/srv/my*db[1]")[0]; got != `/srv/my\*db\[1\]/*.pid` {
		t.Errorf("a data directory with pattern characters: %q", got)
	}
}
