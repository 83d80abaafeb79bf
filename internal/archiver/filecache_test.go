package archiver

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/snapshot"
)

func testCacheEntries() map[cacheKey]cachedFile {
	m := map[cacheKey]cachedFile{}
	for i := range 50 {
		var k cacheKey
		k[0], k[1] = byte(i), 0xaa
		c := cachedFile{Size: uint64(i) * 1000, MTime: int64(i) * 1e9, CTime: -int64(i), Inode: uint64(1000 + i)}
		for j := range i % 4 {
			var id blob.ID
			id[0], id[1] = byte(i), byte(j)
			c.Content = append(c.Content, id)
		}
		c.Hash[0] = byte(i)
		if i%5 == 0 {
			c.Extents = []snapshot.Extent{{Offset: 4096, Length: int64(i)}}
		}
		if i%7 == 0 {
			c.Extents = []snapshot.Extent{}
		}
		if i%3 == 0 {
			c.Xattrs = []snapshot.Xattr{{Name: "user.a", Value: []byte{byte(i)}}}
		}
		if c.Content == nil {
			c.Content = []blob.ID{}
		}
		m[k] = c
	}
	return m
}

// TestFileCacheRoundTrip: what a backup records is what the next one
// looks up, through the encoded form kept in memory and on disk.
func TestFileCacheRoundTrip(t *testing.T) {
	want := testCacheEntries()
	enc := encodeFileCache(want)
	got, err := decodeFileCache(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("decoded cache differs from the encoded one")
	}
	at, err := indexFileCache(enc)
	if err != nil {
		t.Fatal(err)
	}
	fc := &fileCache{raw: enc, at: at}
	for k, c := range want {
		o, ok := fc.old(k)
		if !ok || !reflect.DeepEqual(o, c) {
			t.Fatalf("entry %x: got %+v, want %+v", k[:2], o, c)
		}
		n := &snapshot.Node{Size: c.Size, Inode: c.Inode}
		n.MTime, n.CTime = timeOf(c.MTime), timeOf(c.CTime)
		if _, ok := fc.lookup(k, n); !ok {
			t.Fatalf("entry %x: lookup with its own stat tuple missed", k[:2])
		}
		n.Inode++
		if _, ok := fc.lookup(k, n); ok {
			t.Fatalf("entry %x: lookup with another inode hit", k[:2])
		}
	}
	// A key written twice means its last entry.
	var k cacheKey
	b := appendEntry([]byte(nil), k, &cachedFile{Size: 1, Content: []blob.ID{}})
	b = appendEntry(b, k, &cachedFile{Size: 2, Content: []blob.ID{}})
	twice := append([]byte(fileCacheMagic+"\x02"), b...)
	m, err := decodeFileCache(twice)
	if err != nil || m[k].Size != 2 {
		t.Fatalf("duplicate key: %v, size %d", err, m[k].Size)
	}
}

// TestFileCacheDamaged: every truncation and a flipped count are refused,
// never a panic and never a wrong entry.
func TestFileCacheDamaged(t *testing.T) {
	enc := encodeFileCache(testCacheEntries())
	for n := range len(enc) {
		if _, err := indexFileCache(enc[:n]); err == nil {
			t.Fatalf("cache cut to %d of %d bytes accepted", n, len(enc))
		}
	}
	bad := bytes.Clone(enc)
	bad[len(fileCacheMagic)]++ // one entry more than there is
	if _, err := decodeFileCache(bad); err == nil {
		t.Fatal("cache with a wrong count accepted")
	}
}

func FuzzDecodeFileCache(f *testing.F) {
	f.Add(encodeFileCache(testCacheEntries()))
	f.Add([]byte(fileCacheMagic + "\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeFileCache(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := decodeFileCache(encodeFileCache(m))
		if err != nil || len(again) != len(m) {
			t.Fatalf("re-encoded cache: %v, %d entries of %d", err, len(again), len(m))
		}
	})
}

func timeOf(ns int64) time.Time { return time.Unix(0, ns) }
