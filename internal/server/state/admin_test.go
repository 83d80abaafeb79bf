package state

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAdmins(t *testing.T) {
	ctx := context.Background()
	st := openTest(t)
	if err := st.AddAdmin(ctx, Admin{Name: "ops", Hash: "h", Created: time.Unix(5, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddAdmin(ctx, Admin{Name: "ops", Hash: "x"}); !errors.Is(err, ErrAdminExists) {
		t.Fatalf("second add: %v", err)
	}
	if a, err := st.Admin(ctx, "ops"); err != nil || a.Hash != "h" {
		t.Fatalf("admin %+v %v", a, err)
	}
	if err := st.RemoveAdmin(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Admin(ctx, "ops"); !errors.Is(err, ErrNoAdmin) {
		t.Fatalf("removed admin: %v", err)
	}
	if err := st.RemoveAdmin(ctx, "ops"); !errors.Is(err, ErrNoAdmin) {
		t.Fatalf("remove twice: %v", err)
	}
}
