package counters

import (
	"context"
	"errors"
	"log/slog"
	"testing"
)

type store map[string][3]int64

func (s store) AddCounters(_ context.Context, client string, requests, errs, bytesStored int64) error {
	if client == "gone" {
		return errors.New("no such client")
	}
	s[client] = [3]int64{requests, errs, bytesStored}
	return nil
}

func TestCountAndFlush(t *testing.T) {
	var c Counters
	c.Count("alice", false)
	c.Count("alice", true)
	c.Count("bob", false)
	c.Count("", true) // no client: not counted
	c.Count("gone", false)
	st := store{}
	used := func(client string) (int64, error) { return int64(len(client)), nil }
	c.Flush(context.Background(), st, used, slog.New(slog.DiscardHandler))
	if len(st) != 2 || st["alice"] != [3]int64{2, 1, 5} || st["bob"] != [3]int64{1, 0, 3} {
		t.Fatalf("flushed %v", st)
	}
	clear(st)
	c.Flush(context.Background(), st, used, slog.New(slog.DiscardHandler))
	if len(st) != 0 {
		t.Fatalf("a second flush wrote %v again", st)
	}
}
