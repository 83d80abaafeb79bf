package trust

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairnbackup/cairn/internal/crypto"
)

// ErrFormat reports a malformed config or roster.
var ErrFormat = errors.New("malformed signed object")

// MaxSigned bounds a config or roster read from storage.
const MaxSigned = 4 << 20

// envelope: magic [4] | body len u32 | body (JSON) | Ed25519 signature [64]
func seal(magic, context string, body any, priv ed25519.PrivateKey) ([]byte, error) {
	js, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	b := append([]byte(magic), binary.LittleEndian.AppendUint32(nil, uint32(len(js)))...)
	b = append(b, js...)
	return append(b, crypto.Sign(priv, context, js)...), nil
}

func open(buf []byte, magic, context string, pub ed25519.PublicKey, out any) error {
	if len(buf) > MaxSigned {
		return fmt.Errorf("%w: %d bytes", ErrFormat, len(buf))
	}
	if len(buf) < 8+ed25519.SignatureSize || string(buf[:4]) != magic {
		return fmt.Errorf("%w: bad magic or truncated", ErrFormat)
	}
	l := binary.LittleEndian.Uint32(buf[4:])
	if uint64(l)+8+ed25519.SignatureSize != uint64(len(buf)) {
		return fmt.Errorf("%w: length %d does not match file of %d bytes", ErrFormat, l, len(buf))
	}
	body := buf[8 : 8+l]
	if err := crypto.Verify(pub, context, body, buf[8+l:]); err != nil {
		return fmt.Errorf("not signed by the pinned owner key: %w", err)
	}
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return nil
}
