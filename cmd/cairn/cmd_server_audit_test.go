package main

import "testing"

func TestParseFraction(t *testing.T) {
	for in, want := range map[string]float64{"1/30": 1.0 / 30, "1": 1, "0.5": 0.5, " 2 / 4 ": 0.5, "3/3": 1} {
		got, err := parseFraction("fraction", in)
		if err != nil || got != want {
			t.Errorf("parseFraction(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "3/2", "1/0", "-1/30", "x", "1/x", "1.5"} {
		if _, err := parseFraction("fraction", in); err == nil {
			t.Errorf("parseFraction(%q) accepted", in)
		}
	}
}
