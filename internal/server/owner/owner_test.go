package owner

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/restapi"
)

func TestOwnerNoncesBounded(t *testing.T) {
	var n nonces
	now := time.Unix(1e9, 0)
	for i := range maxNonces {
		if fresh, full := n.take(hex.EncodeToString([]byte{byte(i), byte(i >> 8)}), now); !fresh || full {
			t.Fatalf("nonce %d refused", i)
		}
	}
	if fresh, _ := n.take("0000", now); fresh {
		t.Fatal("a nonce seen was taken again")
	}
	if _, full := n.take("ffffff", now); !full {
		t.Fatal("more nonces than the bound")
	}
	later := now.Add(2*restapi.OwnerRequestSkew + time.Second)
	if fresh, full := n.take("ffffff", later); !fresh || full {
		t.Fatal("expired nonces were not dropped")
	}
}
