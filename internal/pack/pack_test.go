package pack_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/cairnbackup/cairn/internal/blob"
	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/pack"
)

type keys struct {
	owner, writer, server *crypto.Keys
}

func newKeys(t testing.TB) *keys {
	t.Helper()
	om, err := crypto.NewOwner("")
	if err != nil {
		t.Fatal(err)
	}
	wm, _ := om.NewWriter()
	sm, _ := om.NewServer()
	var k keys
	for _, p := range []struct {
		m   *crypto.KeyMaterial
		dst **crypto.Keys
	}{{om, &k.owner}, {wm, &k.writer}, {sm, &k.server}} {
		if *p.dst, err = p.m.Parse(); err != nil {
			t.Fatal(err)
		}
	}
	return &k
}

// session is one backup session's key and its slot.
type session struct {
	key    [32]byte
	slot   pack.Slot
	sealer *crypto.Sealer
}

func newSession(t testing.TB, kind uint8, k *crypto.Keys) *session {
	t.Helper()
	s := &session{}
	rand.Read(s.key[:])
	to := k.OwnerRecipient
	if kind == pack.SlotMetadata {
		to = k.MetaRecipient
	}
	data, err := crypto.WrapSessionKey(&s.key, to)
	if err != nil {
		t.Fatal(err)
	}
	s.slot = pack.Slot{Kind: kind, Wrap: crypto.WrapHybrid, Data: data}
	if kind == pack.SlotMetadata {
		s.slot.Wrap = crypto.WrapX25519
	}
	s.sealer = crypto.NewSealer(&s.key)
	return s
}

type testBlob struct {
	typ  blob.Type
	id   blob.ID
	data []byte
}

func ad(k *crypto.Keys, typ blob.Type, id blob.ID, slot *pack.Slot) *crypto.BlobAD {
	return &crypto.BlobAD{Type: uint8(typ), ID: id, SlotID: slot.ID(), RepoID: k.RepoID}
}

// buildPack writes blobs (content under sess, manifest pages under meta)
// into a pack as a writer would and returns the pack file.
func buildPack(t testing.TB, k *crypto.Keys, content, meta *session, blobs []testBlob) ([]byte, *pack.Header) {
	t.Helper()
	w := pack.NewWriter(1 << 16)
	for _, b := range blobs {
		s := content
		if b.typ == blob.ManifestPage {
			s = meta
		}
		slot := w.AddSlot(s.slot)
		sealed := s.sealer.Seal(nil, ad(k, b.typ.Stored(), b.id, &s.slot), b.data, true)
		e := w.Add(b.typ, b.id, sealed, slot)
		if e.Length != uint32(len(sealed)) {
			t.Fatal("entry length")
		}
	}
	buf, h, err := w.Finish(k.MetaRecipient)
	if err != nil {
		t.Fatal(err)
	}
	return buf, h
}

func testBlobs(k *crypto.Keys) []testBlob {
	kid := k.Dedup[k.CurrentDedup].ID
	var out []testBlob
	for i, d := range [][]byte{[]byte("first chunk"), bytes.Repeat([]byte("z"), 5000), make([]byte, 1)} {
		d = append(d, byte(i))
		out = append(out, testBlob{blob.Data, crypto.BlobID(&kid, uint8(blob.Data), d), d})
	}
	tree := []byte("CRT1\x00")
	out = append(out, testBlob{blob.Tree, crypto.BlobID(&kid, uint8(blob.Tree), tree), tree})
	page := []byte("CRM1 page")
	out = append(out, testBlob{blob.ManifestPage, blob.ID{1, 2, 3}, page})
	return out
}

// openPack reads a pack as the server or owner does: trailer, sealed
// header, then (with the owner key) every blob.
func openPack(t *testing.T, k *crypto.Keys, buf []byte) (*pack.Header, []byte, int64) {
	t.Helper()
	off, l, err := pack.ParseTrailer(buf[len(buf)-pack.TrailerSize:], int64(len(buf)))
	if err != nil {
		t.Fatal(err)
	}
	h, plain, err := pack.OpenHeader(buf[off:off+int64(l)], off, k.MetaIdentity)
	if err != nil {
		t.Fatal(err)
	}
	return h, plain, off
}

func TestPackRoundTrip(t *testing.T) {
	k := newKeys(t)
	content := newSession(t, pack.SlotOwner, k.writer)
	meta := newSession(t, pack.SlotMetadata, k.writer)
	blobs := testBlobs(k.owner)
	buf, wh := buildPack(t, k.writer, content, meta, blobs)

	if uint64(len(buf)) != crypto.Padme(uint64(len(buf))) {
		t.Errorf("pack of %d bytes is not a Padmé size", len(buf))
	}
	if string(buf[len(buf)-4:]) != "CRP1" {
		t.Errorf("trailer magic %q", buf[len(buf)-4:])
	}
	h, plain, dataLen := openPack(t, k.server, buf)
	if !reflect.DeepEqual(h, wh) {
		t.Errorf("parsed header %+v, want %+v", h, wh)
	}
	if !bytes.Equal(plain, wh.Marshal()) || !bytes.Equal(h.Marshal(), plain) {
		t.Error("header does not re-marshal to its plaintext")
	}
	if len(h.Slots) != 2 || len(h.Entries) != len(blobs) {
		t.Fatalf("%d slots, %d entries", len(h.Slots), len(h.Entries))
	}
	if h.DataEnd() > uint64(dataLen) {
		t.Fatalf("data end %d beyond header offset %d", h.DataEnd(), dataLen)
	}
	// The owner opens every blob, and every plaintext re-hashes to its ID.
	for i, e := range h.Entries {
		slot := h.Slots[e.Slot]
		id := k.owner.OwnerIdentity
		notMine := crypto.ErrNeedsOwner
		if slot.Kind == pack.SlotMetadata {
			id, notMine = k.owner.MetaIdentity, crypto.ErrNeedsMetadata
		}
		key, err := crypto.UnwrapSessionKey(slot.Data, id, notMine)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := crypto.NewSealer(&key).Open(ad(k.owner, e.Type, e.ID, &slot), buf[e.Offset:e.Offset+e.Length])
		if err != nil {
			t.Fatalf("blob %d: %v", i, err)
		}
		if !bytes.Equal(pt, blobs[i].data) || e.ID != blobs[i].id || e.Type != blobs[i].typ.Stored() {
			t.Fatalf("blob %d differs", i)
		}
		if e.Type != blob.ManifestPage {
			kid := k.owner.Dedup[k.owner.CurrentDedup].ID
			if crypto.BlobID(&kid, uint8(blobs[i].typ), pt) != e.ID {
				t.Fatalf("blob %d does not re-hash to its ID", i)
			}
		}
	}
}

// TestPackWriterBlind: a writer (and anyone else without the metadata
// identity) cannot read a pack header (R5).
func TestPackWriterBlind(t *testing.T) {
	k := newKeys(t)
	buf, _ := buildPack(t, k.writer, newSession(t, pack.SlotOwner, k.writer), newSession(t, pack.SlotMetadata, k.writer), testBlobs(k.owner))
	off, l, err := pack.ParseTrailer(buf[len(buf)-pack.TrailerSize:], int64(len(buf)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pack.OpenHeader(buf[off:off+int64(l)], off, k.writer.MetaIdentity); !errors.Is(err, crypto.ErrNeedsMetadata) {
		t.Fatalf("writer opening a pack header: err = %v, want ErrNeedsMetadata", err)
	}
	if _, _, err := pack.OpenHeader(buf[off:off+int64(l)], off, k.owner.OwnerIdentity); !errors.Is(err, crypto.ErrNeedsMetadata) {
		t.Fatalf("owner content identity opening a pack header: err = %v, want ErrNeedsMetadata", err)
	}
	// A corrupted header is a decryption error, not a key error.
	bad := bytes.Clone(buf)
	bad[off+int64(l)-1] ^= 1
	if _, _, err := pack.OpenHeader(bad[off:off+int64(l)], off, k.server.MetaIdentity); !errors.Is(err, crypto.ErrDecrypt) {
		t.Fatalf("corrupted header: err = %v, want ErrDecrypt", err)
	}
}

func TestPackPadding(t *testing.T) {
	k := newKeys(t)
	for _, n := range []int{1, 100, 1000, 100000} {
		w := pack.NewWriter(0)
		s := newSession(t, pack.SlotOwner, k.writer)
		slot := w.AddSlot(s.slot)
		if w.AddSlot(s.slot) != slot {
			t.Fatal("AddSlot added the same slot twice")
		}
		w.Add(blob.Data, blob.ID{byte(n)}, make([]byte, n), slot)
		if w.Size() != n || w.Count() != 1 {
			t.Fatalf("Size %d Count %d", w.Size(), w.Count())
		}
		buf, _, err := w.Finish(k.writer.MetaRecipient)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(buf)) != crypto.Padme(uint64(len(buf))) || len(buf) < n+pack.TrailerSize {
			t.Errorf("pack of %d blob bytes is %d bytes, not a Padmé size", n, len(buf))
		}
	}
}

// TestRepackVerbatim (R7 at the format level): blobs copied byte for byte
// from two packs, with their slots, into a new pack open for the owner.
func TestRepackVerbatim(t *testing.T) {
	k := newKeys(t)
	blobs := testBlobs(k.owner)
	var packs [][]byte
	for range 2 {
		buf, _ := buildPack(t, k.writer, newSession(t, pack.SlotOwner, k.writer), newSession(t, pack.SlotMetadata, k.writer), blobs)
		packs = append(packs, buf)
	}
	w := pack.NewWriter(0)
	var want [][]byte
	for pi, buf := range packs {
		h, _, _ := openPack(t, k.server, buf)
		for i, e := range h.Entries {
			if (i+pi)%2 == 0 { // take alternate blobs from each pack
				continue
			}
			w.Add(e.Type, e.ID, buf[e.Offset:e.Offset+e.Length], w.AddSlot(h.Slots[e.Slot]))
			want = append(want, blobs[i].data)
		}
	}
	buf, _, err := w.Finish(k.server.MetaRecipient)
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := openPack(t, k.owner, buf)
	// pack 0 gives a data and a tree blob (its content slot), pack 1 two
	// data blobs and a manifest page (its content and metadata slots).
	if len(h.Slots) != 3 || len(h.Entries) != 5 {
		t.Fatalf("repacked pack has %d slots and %d entries, want 3 and 5", len(h.Slots), len(h.Entries))
	}
	for i, e := range h.Entries {
		slot := h.Slots[e.Slot]
		id, notMine := k.owner.OwnerIdentity, crypto.ErrNeedsOwner
		if slot.Kind == pack.SlotMetadata {
			id, notMine = k.owner.MetaIdentity, crypto.ErrNeedsMetadata
		}
		key, err := crypto.UnwrapSessionKey(slot.Data, id, notMine)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := crypto.NewSealer(&key).Open(ad(k.owner, e.Type, e.ID, &slot), buf[e.Offset:e.Offset+e.Length])
		if err != nil || !bytes.Equal(pt, want[i]) {
			t.Fatalf("repacked blob %d: %v", i, err)
		}
	}
}

func TestParseTrailer(t *testing.T) {
	tr := func(l uint32, magic string) []byte {
		return append(binary.LittleEndian.AppendUint32(nil, l), magic...)
	}
	off, l, err := pack.ParseTrailer(tr(100, "CRP1"), 1000)
	if err != nil || off != 892 || l != 100 {
		t.Fatalf("ParseTrailer = %d, %d, %v", off, l, err)
	}
	if off, _, err := pack.ParseTrailer(tr(92, "CRP1"), 100); err != nil || off != 0 {
		t.Fatalf("header filling the pack: %d, %v", off, err)
	}
	for name, c := range map[string]struct {
		b    []byte
		size int64
	}{
		"bad magic":         {tr(1, "CRP2"), 100},
		"short":             {tr(1, "CRP1")[:7], 100},
		"long":              {append(tr(1, "CRP1"), 0), 100},
		"header too long":   {tr(93, "CRP1"), 100},
		"header above max":  {tr(pack.MaxHeaderSize+1, "CRP1"), 1 << 30},
		"file size zero":    {tr(0, "CRP1"), 0},
		"negative size":     {tr(0, "CRP1"), -1},
		"max u32 in 4 GiB+": {tr(0xffffffff, "CRP1"), 1 << 33},
	} {
		if _, _, err := pack.ParseTrailer(c.b, c.size); !errors.Is(err, pack.ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

// header builds a plaintext header directly, for refusal tests.
func header(slots []pack.Slot, entries []pack.Entry) []byte {
	return (&pack.Header{Slots: slots, Entries: entries}).Marshal()
}

func TestParseHeaderRefuses(t *testing.T) {
	owner := pack.Slot{Kind: pack.SlotOwner, Wrap: 1, Data: []byte("wrapped")}
	meta := pack.Slot{Kind: pack.SlotMetadata, Wrap: 2, Data: []byte("wrapped meta")}
	ok := []pack.Entry{{Type: blob.Data, ID: blob.ID{1}, Offset: 0, Length: 10}, {Type: blob.ManifestPage, ID: blob.ID{2}, Offset: 10, Length: 10, Slot: 1}}
	good := header([]pack.Slot{owner, meta}, ok)
	if h, err := pack.ParseHeader(good, 20); err != nil || len(h.Entries) != 2 {
		t.Fatalf("good header: %v", err)
	}
	// The first entry's slot: after magic, domain, signer, the slots, the
	// entry count, the type, the ID and the length.
	slotAt := 4 + 64 + 4 + 6 + len(owner.Data) + 6 + len(meta.Data) + 4 + 1 + 32 + 4
	if !bytes.Equal(good[slotAt-4:slotAt+2], []byte{10, 0, 0, 0, 0, 0}) {
		t.Fatalf("entry 0 at %d is not length 10, slot 0: % x", slotAt, good[slotAt-4:slotAt+2])
	}
	with := func(mod func(e []pack.Entry)) []byte {
		e := append([]pack.Entry(nil), ok...)
		mod(e)
		return header([]pack.Slot{owner, meta}, e)
	}
	cases := map[string]struct {
		b       []byte
		dataLen uint64
	}{
		"data area too short": {good, 19},
		"bad magic":           {append([]byte("CRH1"), good[4:]...), 20},
		"no signature":        {good[:len(good)-64], 20},
		"empty":               {nil, 20},
		"trailing byte":       {append(bytes.Clone(good), 0), 20},
		"truncated":           {good[:len(good)-1], 20},
		"unknown slot kind":   {header([]pack.Slot{{Kind: 3}}, nil), 0},
		"slot too large":      {header([]pack.Slot{{Kind: 1, Data: make([]byte, pack.MaxSlotSize+1)}}, nil), 0},
		"too many slots":      {binary.LittleEndian.AppendUint32(append([]byte("CRH3"), make([]byte, 64)...), pack.MaxSlots+1), 0},
		"entry count lies":    {append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(append([]byte("CRH3"), make([]byte, 64)...), 0), 2), make([]byte, 45)...), 100},
		"unknown type":        {with(func(e []pack.Entry) { e[0].Type = 4 }), 20},
		"type zero":           {with(func(e []pack.Entry) { e[0].Type = 0 }), 20},
		"tree type":           {with(func(e []pack.Entry) { e[0].Type = blob.Tree }), 20},
		"slot out of range":   {with(func(e []pack.Entry) { e[0].Slot = 2 }), 20},
		"zero length":         {with(func(e []pack.Entry) { e[0].Length = 0 }), 20},
		"blob too large":      {with(func(e []pack.Entry) { e[1].Length = pack.MaxBlobSize + 1 }), 1 << 30},
		"content under meta":  {with(func(e []pack.Entry) { e[0].Slot = 1 }), 20},
		"page under owner":    {with(func(e []pack.Entry) { e[1].Slot = 0 }), 20},
		"slot high byte":      {func() []byte { b := bytes.Clone(good); b[slotAt+1] = 1; return b }(), 20},
		"ends past 4 GiB":     {header([]pack.Slot{owner}, slices.Repeat([]pack.Entry{{Type: blob.Data, Length: pack.MaxBlobSize}}, 129)), 1 << 40},
	}
	for name, c := range cases {
		if _, err := pack.ParseHeader(c.b, c.dataLen); !errors.Is(err, pack.ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

// TestHeaderEntries: an entry is 39 bytes whatever the blob's size (the
// header's length says how many blobs a pack holds, nothing more), and
// offsets are derived: each blob starts where the one before ends.
func TestHeaderEntries(t *testing.T) {
	slots := []pack.Slot{{Kind: pack.SlotOwner, Data: []byte("k")}}
	one := header(slots, []pack.Entry{{Type: blob.Data, ID: blob.ID{1}, Length: 60}})
	for _, l := range []uint32{1, 600, 1 << 20} {
		two := header(slots, []pack.Entry{{Type: blob.Data, ID: blob.ID{1}, Length: 60}, {Type: blob.Data, ID: blob.ID{2}, Length: l}})
		if d := len(two) - len(one); d != 39 {
			t.Errorf("an entry of %d bytes costs %d header bytes, want 39", l, d)
		}
	}
	entries := []pack.Entry{{Type: blob.Data, ID: blob.ID{1}, Length: 600}, {Type: blob.Data, ID: blob.ID{2}, Offset: 600, Length: 5}}
	h, err := pack.ParseHeader(header(slots, entries), 605)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.Entries, entries) {
		t.Errorf("entries %+v, want %+v", h.Entries, entries)
	}
}

func TestIndexRoundTrip(t *testing.T) {
	k := newKeys(t)
	var packs []pack.IndexPack
	for range 3 {
		buf, _ := buildPack(t, k.writer, newSession(t, pack.SlotOwner, k.writer), newSession(t, pack.SlotMetadata, k.writer), testBlobs(k.owner))
		_, plain, _ := openPack(t, k.server, buf)
		var id blob.ID
		copy(id[:], buf) // any distinct name; the real one is SHA-256(buf)
		packs = append(packs, pack.IndexPack{Pack: id, Header: plain})
	}
	idx := pack.MarshalIndex(packs)
	if !bytes.HasPrefix(idx, []byte("CRI2")) || !bytes.Equal(idx[36:40], []byte{3, 0, 0, 0}) {
		t.Fatalf("index starts %q", idx[:8])
	}
	got, err := pack.ParseIndex(idx)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range got {
		// "index fragment = pack header", byte for byte.
		if p.Pack != packs[i].Pack || !bytes.Equal(p.Header, packs[i].Header) || !bytes.Equal(p.Parsed.Marshal(), packs[i].Header) {
			t.Fatalf("pack %d differs", i)
		}
	}
	if empty, err := pack.ParseIndex(pack.MarshalIndex(nil)); err != nil || len(empty) != 0 {
		t.Fatalf("empty index: %v", err)
	}
	// The fragment is sealed to the metadata identity: a writer cannot read
	// it back (R5).
	sealed, err := crypto.Seal(idx, k.writer.MetaRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.Open(sealed, k.writer.MetaIdentity, crypto.ErrNeedsMetadata); !errors.Is(err, crypto.ErrNeedsMetadata) {
		t.Fatalf("writer opening an index fragment: %v", err)
	}
	if plain, err := crypto.Open(sealed, k.server.MetaIdentity, crypto.ErrNeedsMetadata); err != nil || !bytes.Equal(plain, idx) {
		t.Fatalf("server opening an index fragment: %v", err)
	}

	dup := pack.MarshalIndex([]pack.IndexPack{packs[0], packs[0]})
	badHdr := pack.MarshalIndex([]pack.IndexPack{{Pack: blob.ID{9}, Header: []byte("CRH3")}})
	for name, b := range map[string][]byte{
		"duplicate pack": dup,
		"bad header":     badHdr,
		"bad magic":      append([]byte("CRI1"), idx[4:]...),
		"trailing":       append(bytes.Clone(idx), 0),
		"truncated":      idx[:len(idx)-1],
		"count lies":     append(binary.LittleEndian.AppendUint32(append([]byte("CRI2"), make([]byte, 32)...), 1000), make([]byte, 64)...),
		"too many packs": append(binary.LittleEndian.AppendUint32(append([]byte("CRI2"), make([]byte, 32)...), pack.MaxIndexPacks+1), make([]byte, 64)...),
		"empty":          nil,
		"no count":       append([]byte("CRI2"), make([]byte, 32+64)...),
		"short count":    append([]byte("CRI2\x00\x00"), make([]byte, 64)...),
	} {
		if _, err := pack.ParseIndex(b); !errors.Is(err, pack.ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

func TestHeaderSort(t *testing.T) {
	h := &pack.Header{Entries: []pack.Entry{{Offset: 30}, {Offset: 0}, {Offset: 10}}}
	h.Sort()
	for i, want := range []uint32{0, 10, 30} {
		if h.Entries[i].Offset != want {
			t.Fatalf("entries not sorted: %+v", h.Entries)
		}
	}
	if h.DataEnd() != 30 {
		t.Fatalf("DataEnd %d", h.DataEnd())
	}
}

// TestStreamWriter: a pack streamed to a sink is a pack like any other
// (same blobs at the same offsets, Padmé-padded, its header opens), and a
// sink error is kept and returned by Finish.
func TestStreamWriter(t *testing.T) {
	k := newKeys(t)
	content := newSession(t, pack.SlotOwner, k.writer)
	meta := newSession(t, pack.SlotMetadata, k.writer)
	blobs := testBlobs(k.owner)
	mem, _ := buildPack(t, k.writer, content, meta, blobs)

	var sink bytes.Buffer
	w := pack.NewStreamWriter(1<<20, &sink)
	for _, b := range blobs {
		s := content
		if b.typ == blob.ManifestPage {
			s = meta
		}
		sealed := s.sealer.Seal(nil, ad(k.writer, b.typ, b.id, &s.slot), b.data, true)
		w.Add(b.typ, b.id, sealed, w.AddSlot(s.slot))
	}
	out, wh, err := w.Finish(k.writer.MetaRecipient)
	if err != nil || out != nil {
		t.Fatalf("finish: %d bytes returned, %v", len(out), err)
	}
	buf := sink.Bytes()
	if uint64(len(buf)) != crypto.Padme(uint64(len(buf))) {
		t.Errorf("streamed pack of %d bytes is not a Padmé size", len(buf))
	}
	h, _, _ := openPack(t, k.server, buf)
	if !reflect.DeepEqual(h, wh) {
		t.Fatalf("parsed header %+v, want %+v", h, wh)
	}
	mh, _, _ := openPack(t, k.server, mem)
	for i, e := range h.Entries {
		if e.Offset != mh.Entries[i].Offset || e.Length != mh.Entries[i].Length {
			t.Errorf("entry %d at %d+%d, the in-memory writer put it at %d+%d", i, e.Offset, e.Length, mh.Entries[i].Offset, mh.Entries[i].Length)
		}
	}

	full := errors.New("disk full")
	fw := pack.NewStreamWriter(1<<20, &limitWriter{n: 10, err: full})
	s := content
	b := blobs[1] // sealed, more than the 10 bytes the sink takes
	fw.Add(b.typ, b.id, s.sealer.Seal(nil, ad(k.writer, b.typ, b.id, &s.slot), b.data, true), fw.AddSlot(s.slot))
	if !errors.Is(fw.Err(), full) {
		t.Fatalf("Err after a failed write: %v", fw.Err())
	}
	if _, _, err := fw.Finish(k.writer.MetaRecipient); !errors.Is(err, full) {
		t.Fatalf("Finish after a failed write: %v, want the sink's error", err)
	}
}

type limitWriter struct {
	n   int
	err error
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		n := l.n
		l.n = 0
		return n, l.err
	}
	l.n -= len(p)
	return len(p), nil
}

// A header and an index fragment verify only for their signer and their
// repository, and any change to a signed byte breaks the signature (R23).
func TestSignatures(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	repo := [32]byte{7}
	h := &pack.Header{Domain: blob.Domain{5}, Slots: []pack.Slot{{Kind: pack.SlotOwner, Data: []byte("k")}},
		Entries: []pack.Entry{{Type: blob.Data, ID: blob.ID{1}, Length: 10}}}
	h.Sign(repo, priv)
	if err := h.VerifySignature(repo); err != nil {
		t.Fatal(err)
	}
	parsed, err := pack.ParseHeader(h.Marshal(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Domain != h.Domain || parsed.Signer != h.Signer || parsed.VerifySignature(repo) != nil {
		t.Fatal("parsed header lost its domain, signer or signature")
	}
	if err := h.VerifySignature([32]byte{8}); err == nil {
		t.Fatal("header verified for another repository")
	}
	moved := *parsed
	moved.Domain = blob.Domain{6}
	if moved.VerifySignature(repo) == nil {
		t.Fatal("header verified with its domain changed")
	}
	moved = *parsed
	moved.Entries = []pack.Entry{{Type: blob.Data, ID: blob.ID{2}, Length: 10}}
	if moved.VerifySignature(repo) == nil {
		t.Fatal("header verified with an entry changed")
	}
	if (&pack.Header{}).VerifySignature(repo) == nil {
		t.Fatal("unsigned header verified")
	}

	ips := []pack.IndexPack{{Pack: blob.ID{3}, Header: h.Marshal()}}
	frag := pack.SignIndex(ips, repo, priv)
	signer, err := pack.IndexSigner(frag, repo)
	if err != nil || signer != blob.DomainOf(priv.Public().(ed25519.PublicKey)) {
		t.Fatalf("signer %x, %v", signer, err)
	}
	if got, err := pack.ParseIndex(frag); err != nil || len(got) != 1 || !bytes.Equal(got[0].Header, ips[0].Header) {
		t.Fatalf("signed index does not parse: %v", err)
	}
	if _, err := pack.IndexSigner(frag, [32]byte{8}); err == nil {
		t.Fatal("index verified for another repository")
	}
	forged := bytes.Clone(frag)
	copy(forged[4:36], other.Public().(ed25519.PublicKey))
	if _, err := pack.IndexSigner(forged, repo); err == nil {
		t.Fatal("index verified under a signer that did not sign it")
	}
	flipped := bytes.Clone(frag)
	flipped[50] ^= 1
	if _, err := pack.IndexSigner(flipped, repo); err == nil {
		t.Fatal("index verified with a byte changed")
	}
	if _, err := pack.IndexSigner(pack.MarshalIndex(ips), repo); err == nil {
		t.Fatal("unsigned index verified")
	}
}

// TestHeaderHidesTrees: a pack header records a tree blob as content, the
// same type as a data blob (docs/format.md §10), so the metadata identity
// that opens it cannot tell them apart; the owner still opens the tree
// with the header's entry alone and re-hashes it as a tree.
func TestHeaderHidesTrees(t *testing.T) {
	k := newKeys(t)
	blobs := testBlobs(k.owner)
	buf, _ := buildPack(t, k.writer, newSession(t, pack.SlotOwner, k.writer), newSession(t, pack.SlotMetadata, k.writer), blobs)
	h, _, _ := openPack(t, k.server, buf)
	trees := 0
	for i, e := range h.Entries {
		if blobs[i].typ == blob.Tree {
			trees++
		}
		want := blob.Data
		if blobs[i].typ == blob.ManifestPage {
			want = blob.ManifestPage
		}
		if e.Type != want {
			t.Errorf("entry %d (a %s blob) is recorded as %s, want %s", i, blobs[i].typ, e.Type, want)
		}
	}
	if trees == 0 {
		t.Fatal("the test pack has no tree")
	}
}
