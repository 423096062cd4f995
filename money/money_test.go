package money

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// formatByStrings is how Format was first written, kept as the reference Append must match.
func formatByStrings(c Currency, minor int64) string {
	neg := minor < 0
	u := uint64(minor)
	if neg {
		u = -u
	}
	s := strconv.FormatUint(u, 10)
	if c.Exponent > 0 {
		if len(s) <= c.Exponent {
			s = strings.Repeat("0", c.Exponent-len(s)+1) + s
		}
		s = s[:len(s)-c.Exponent] + "." + s[len(s)-c.Exponent:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func FuzzCurrencyAppend(f *testing.F) {
	for _, v := range []int64{0, 1, -1, 5, -5, 99, -99, 100, 1050, -1050, 12345, math.MaxInt64, math.MinInt64} {
		f.Add(v, "x,")
	}
	f.Fuzz(func(t *testing.T, minor int64, prefix string) {
		for _, c := range []Currency{{"USD", 2}, {"JPY", 0}, {"KWD", 3}, {"X19", 19}, {"X22", 22}} {
			code := c.Code
			want := formatByStrings(c, minor)
			if got := c.Format(minor); got != want {
				t.Fatalf("%s Format(%d) = %q, want %q", code, minor, got, want)
			}
			if got := string(c.Append([]byte(prefix), minor)); got != prefix+want {
				t.Fatalf("%s Append(%q, %d) = %q, want %q", code, prefix, minor, got, prefix+want)
			}
			if _, known := currencies[code]; known && minor >= 0 && minor <= math.MaxInt64/10000 {
				if back, err := c.Parse(want); err != nil || back != minor {
					t.Fatalf("%s Parse(%q) = %d, %v; want %d", code, want, back, err, minor)
				}
			}
		}
	})
}
