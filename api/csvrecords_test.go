package api

import (
	"bytes"
	"encoding/csv"
	"math"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing"
)

// csvRecords writes what encoding/csv writes for the same cells, text cells that would be
// formulas made text.
func FuzzCSVRecords(f *testing.F) {
	for _, s := range []string{"", "plain", "a,b", `say "hi"`, "two\nlines", "cr\rlf", " leading space", "\tleading tab",
		`\.`, "\u00a0nbsp", "é", "\xff", "trailing ", `"`, ",", "-1", "=SUM(A1)", "\r=1", "@a,b", "+\"1\""} {
		f.Add(s, int64(-5), int64(1735689600))
	}
	usd, _ := billing.LookupCurrency("USD")
	f.Fuzz(func(t *testing.T, s string, minor, unix int64) {
		at := time.Unix(unix%(1<<40), 0).UTC()
		var want bytes.Buffer
		w := csv.NewWriter(&want)
		w.Write([]string{csvText(s), usd.Format(minor), csvText(s), at.Format(time.DateOnly), at.Format("15:04:05"), "", csvText(s)})
		w.Write([]string{csvText(s)})
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

func TestCSVRecordsFormulas(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"=SUM(A1:A9)", "'=SUM(A1:A9)"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@cmd", "'@cmd"},
		{"\tx", "'\tx"},     // no longer starts with a space: not quoted
		{"\rx", "\"'\rx\""}, // holds a CR: quoted
		{`=HYPERLINK("http://x")`, `"'=HYPERLINK(""http://x"")"`},
		{"-1,2", `"'-1,2"`},
		{"a=b", "a=b"},
		{" =1", `" =1"`}, // a leading space is quoted, and a spreadsheet reads it as text
	} {
		var c csvRecords
		c.Text(tt.in)
		if got := string(c.buf); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Amounts stay numbers, negative or not.
	usd, _ := billing.LookupCurrency("USD")
	var c csvRecords
	c.Money(usd, -150)
	c.Int(-3)
	if got := string(c.buf); got != "-1.50,-3" {
		t.Errorf("numbers: %q", got)
	}
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
