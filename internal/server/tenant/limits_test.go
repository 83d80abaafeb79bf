package tenant

import (
	"fmt"
	"testing"
	"time"
)

func TestAuthLimiter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := NewAuthLimiter(3, func() time.Time { return now })
	for range 3 {
		if ok, _ := a.Allowed("10.0.0.1"); !ok {
			t.Fatal("refused before the budget was spent")
		}
		a.Failed("10.0.0.1")
	}
	ok, wait := a.Allowed("10.0.0.1")
	if ok || wait <= 0 || wait > 20*time.Second {
		t.Fatalf("after 3 failures: allowed %v, wait %v", ok, wait)
	}
	if ok, _ := a.Allowed("10.0.0.2"); !ok {
		t.Fatal("another source refused")
	}
	now = now.Add(20 * time.Second) // one token back
	if ok, _ := a.Allowed("10.0.0.1"); !ok {
		t.Fatal("refused after a token came back")
	}
	// The table stays bounded.
	a.maxSources = 10
	for i := range 100 {
		a.Failed(fmt.Sprintf("192.0.2.%d", i))
	}
	if len(a.buckets) > 10 {
		t.Fatalf("%d sources kept, want at most 10", len(a.buckets))
	}
}

func TestUploadSlots(t *testing.T) {
	var u UploadSlots
	r1, ok1 := u.Take("alice", 2)
	_, ok2 := u.Take("alice", 2)
	_, ok3 := u.Take("alice", 2)
	_, okBob := u.Take("bob", 2)
	if !ok1 || !ok2 || ok3 || !okBob {
		t.Fatalf("takes: %v %v %v %v", ok1, ok2, ok3, okBob)
	}
	r1()
	r1() // twice is fine
	if _, ok := u.Take("alice", 2); !ok {
		t.Fatal("no slot after a release")
	}
	if _, ok := u.Take("alice", 2); ok {
		t.Fatal("a double release gave two slots back")
	}
}
