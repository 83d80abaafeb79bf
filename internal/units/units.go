package units

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrSize is wrapped by every parse error.
var ErrSize = errors.New("not a size")

const prefixes = "KMGTPE"

// ParseSize parses a byte size: a number (a decimal fraction is allowed)
// with an optional unit. The unit is B, or one of K, M, G, T, P, E
// followed by an optional "i" and an optional "B", in any case; all are
// powers of 1024. Blanks around the number and between it and the unit
// are allowed: "1048576", "500GiB", "500 GB", "1.5g", "2T".
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	u := strings.ToUpper(t)
	mult := 1.0
	u = strings.TrimSuffix(u, "B")
	if v, ok := strings.CutSuffix(u, "I"); ok {
		u = v
		if u == "" || !strings.ContainsRune(prefixes, rune(u[len(u)-1])) {
			return 0, fmt.Errorf("%w: %q (want e.g. 500GiB, 2G or a byte count)", ErrSize, s)
		}
	}
	if u != "" {
		if i := strings.IndexByte(prefixes, u[len(u)-1]); i >= 0 {
			mult = math.Pow(1024, float64(i+1))
			u = u[:len(u)-1]
		}
	}
	u = strings.TrimSpace(u)
	f, err := strconv.ParseFloat(u, 64)
	if err != nil || u == "" || strings.ContainsAny(u, "eEnNxX+") || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%w: %q (want e.g. 500GiB, 2G or a byte count)", ErrSize, s)
	}
	v := f * mult
	if v >= math.MaxUint64 {
		return 0, fmt.Errorf("%w: %q is too large", ErrSize, s)
	}
	return uint64(math.Round(v)), nil
}

// FormatSize renders n in IEC units with three significant digits or
// more: "512 B", "1.50 KiB", "265.1 MiB".
func FormatSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	if v >= 100 {
		return fmt.Sprintf("%.1f %ciB", v, prefixes[exp])
	}
	return fmt.Sprintf("%.2f %ciB", v, prefixes[exp])
}
