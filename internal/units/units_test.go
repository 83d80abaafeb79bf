package units

import (
	"errors"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
	}{
		{"0", 0}, {"1048576", 1 << 20}, {"512B", 512}, {"512 b", 512},
		{"1K", 1024}, {"1k", 1024}, {"1KB", 1024}, {"1KiB", 1024}, {"1kib", 1024},
		{"2M", 2 << 20}, {"2MB", 2 << 20}, {"2MiB", 2 << 20},
		{"500G", 500 << 30}, {"500GB", 500 << 30}, {"500GiB", 500 << 30}, {"500 GiB", 500 << 30}, {" 500gb ", 500 << 30},
		{"1.5G", 3 << 29}, {"2T", 2 << 40}, {"2TB", 2 << 40}, {"1P", 1 << 50}, {"1E", 1 << 60},
	} {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "B", "GiB", "-1", "1X", "1iB", "ten", "1e3", "0x10", "NaN", "Inf", "1.5.5G", "+5", "20E"} {
		if n, err := ParseSize(in); !errors.Is(err, ErrSize) {
			t.Errorf("ParseSize(%q) = %d, %v; want ErrSize", in, n, err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, c := range []struct {
		in   uint64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.00 KiB"}, {1536, "1.50 KiB"},
		{265*(1<<20) + 100<<10, "265.1 MiB"}, {5 << 30, "5.00 GiB"}, {1 << 60, "1.00 EiB"},
	} {
		if got := FormatSize(c.in); got != c.want {
			t.Errorf("FormatSize(%d) = %q, want %q", c.in, got, c.want)
		}
	}
	// What is printed parses back to about the same size.
	for _, n := range []uint64{1536, 5 << 30, 123456789} {
		back, err := ParseSize(FormatSize(n))
		if err != nil || float64(back) < float64(n)*0.99 || float64(back) > float64(n)*1.01 {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
		}
	}
}
