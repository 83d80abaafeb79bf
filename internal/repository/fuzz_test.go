package repository_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/crypto"
	"github.com/cairnbackup/cairn/internal/repository"
	"github.com/cairnbackup/cairn/internal/trust"
)

// FuzzPeekConfig: PeekConfig reads a config file from storage before any
// key is trusted. It never panics, and a config it accepts is well formed
// and verifies under the owner key it names. With signBody the input is
// the JSON body, signed here with a key the seeds name, so mutations reach
// the decoder behind the signature.
func FuzzPeekConfig(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	c := &trust.Config{
		Format: trust.FormatVersion, Seq: 1, RepoID: bytes.Repeat([]byte{1}, 32), Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Chunker: "fastcdc-gear-v1", ChunkMin: 256 << 10, ChunkAvg: 1 << 20, ChunkMax: 4 << 20,
		Compression: "zstd", PackSize: 16 << 20, Wrap: trust.WrapHybrid,
		OwnerRecipient: "age1pq1...", OwnerSignPub: pub, MetaRecipient: "age1...", DedupGen: 1,
	}
	good, err := trust.MarshalConfig(c, priv)
	if err != nil {
		f.Fatal(err)
	}
	body, _ := json.Marshal(c)
	f.Add(good, false)
	f.Add(body, true)
	f.Add([]byte(`{"owner_sign_pub":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`), true)
	f.Add([]byte("CRC1\x00\x00\x00\x00"), false)
	f.Fuzz(func(t *testing.T, b []byte, signBody bool) {
		if signBody {
			body := b
			b = append([]byte("CRC1"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
			b = append(b, body...)
			b = append(b, crypto.Sign(priv, crypto.SigConfig, body)...)
		}
		got, err := repository.PeekConfig(b)
		if err != nil {
			return
		}
		if got.Format != trust.FormatVersion || len(got.RepoID) != 32 || len(got.OwnerSignPub) != ed25519.PublicKeySize {
			t.Fatalf("accepted config %+v", got)
		}
		again, err := trust.ParseConfig(b, got.OwnerSignPub)
		if err != nil || !bytes.Equal(again.RepoID, got.RepoID) {
			t.Fatalf("accepted config does not verify under the key it names: %v", err)
		}
	})
}
