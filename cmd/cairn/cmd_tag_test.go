package main

import (
	"slices"
	"testing"
)

func TestNewTags(t *testing.T) {
	for _, c := range []struct {
		old, set, add, remove []string
		setGiven              bool
		want                  []string
		changed               bool
	}{
		{old: []string{"a"}, add: []string{"b"}, want: []string{"a", "b"}, changed: true},
		{old: []string{"a", "b"}, add: []string{"b"}, want: []string{"a", "b"}},
		{old: []string{"a", "b"}, remove: []string{"a", "x"}, want: []string{"b"}, changed: true},
		{old: []string{"a"}, remove: []string{"x"}, want: []string{"a"}},
		{old: []string{"a"}, set: []string{"c", "d"}, setGiven: true, want: []string{"c", "d"}, changed: true},
		{old: []string{"a"}, setGiven: true, want: nil, changed: true},
		{old: nil, setGiven: true, want: nil},
		{old: []string{"a"}, add: []string{"b"}, remove: []string{"b"}, want: []string{"a"}},
	} {
		got, changed := newTags(c.old, c.set, c.add, c.remove, c.setGiven)
		if !slices.Equal(got, c.want) || changed != c.changed {
			t.Errorf("newTags(%v, set %v %v, add %v, remove %v) = %v, %v; want %v, %v", c.old, c.set, c.setGiven, c.add, c.remove, got, changed, c.want, c.changed)
		}
	}
	if got := splitTags([]string{"a,b", " c ,,a", ""}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("splitTags: %v", got)
	}
}
