package api

import (
	"bytes"
	"encoding/csv"
	"math"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing"
)

// csvRecords writes what encoding/csv writes for the same cells.
func FuzzCSVRecords(f *testing.F) {
	for _, s := range []string{"", "plain", "a,b", `say "hi"`, "two\nlines", "cr\rlf", " leading space", "\tleading tab",
		`\.`, "\u00a0nbsp", "é", "\xff", "trailing ", `"`, ",", "-1", "=SUM(A1)"} {
		f.Add(s, int64(-5), int64(1735689600))
	}
	usd, _ := billing.LookupCurrency("USD")
	f.Fuzz(func(t *testing.T, s string, minor, unix int64) {
		at := time.Unix(unix%(1<<40), 0).UTC()
		var want bytes.Buffer
		w := csv.NewWriter(&want)
		w.Write([]string{s, usd.Format(minor), s, at.Format(time.DateOnly), at.Format("15:04:05"), "", s})
		w.Write([]string{s})
		w.Flush()
		var c csvRecords
		c.Text(s)
		c.Money(usd, minor)
		c.Text(s)
		c.Date(at)
		c.Clock(at)
		c.Empty()
		c.Text(s)
		c.End()
		c.Text(s)
		c.End()
		if got := string(c.buf); got != want.String() {
			t.Fatalf("cells %q, %d, %s:\n got %q\nwant %q", s, minor, at, got, want.String())
		}
	})
}

func TestCSVRecordsNumbers(t *testing.T) {
	kwd, _ := billing.LookupCurrency("KWD")
	var c csvRecords
	c.Int(0)
	c.Int(-42)
	c.Int(math.MaxInt64)
	c.Money(kwd, -5)
	c.Money(billing.Currency{}, -1234) // an unknown currency: minor units as they are
	c.End()
	if got, want := string(c.buf), "0,-42,9223372036854775807,-0.005,-1234\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
