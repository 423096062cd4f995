package billing

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"
)

// decodeEntry reads the rows of entryQuery as PostgreSQL sends them: NULLs, signs and titles.
func TestDecodeEntry(t *testing.T) {
	at := time.Date(2026, 1, 15, 13, 7, 9, 123456000, time.UTC)
	stamp := make([]byte, 8)
	binary.BigEndian.PutUint64(stamp, uint64(at.UnixMicro()-postgresEpoch))
	row := func(cells ...string) [][]byte {
		v := [][]byte{stamp}
		for _, c := range cells {
			if c == "NULL" {
				v = append(v, nil)
			} else {
				v = append(v, []byte(c))
			}
		}
		return v
	}
	titles := map[int64]string{7: "Known Show"}
	var e StatementEntry
	// A payment of a known show: fee, share and amount are credits, absorbed a debit.
	must(t, decodeEntry(row("41", "payment", "7", "NULL", "donations", "NULL", "1999", "-88", "-956", "12", "-944"), &e, titles))
	want := StatementEntry{OccurredAt: at, EntryID: 41, Kind: EntryPayment, ShowID: 7, ShowTitle: "Known Show", Source: SourceDonations,
		Gross: 1999, Fee: 88, Share: 956, FeeAbsorbed: 12, Amount: 944}
	if e != want {
		t.Errorf("payment:\n got %+v\nwant %+v", e, want)
	}
	// A show the titles did not have sends its title, which is kept for its next rows.
	must(t, decodeEntry(row("42", "refund", "9", "New, Show", "sponsorship", "NULL", "-500", "0", "200", "NULL", "200"), &e, titles))
	if e.ShowTitle != "New, Show" || titles[9] != "New, Show" || e.FeeAbsorbed != 0 || e.Amount != -200 || e.Source != SourceSponsorship {
		t.Errorf("refund of a new show: %+v", e)
	}
	// A payout: no show, no source, a description.
	must(t, decodeEntry(row("43", "payout", "NULL", "NULL", "NULL", "Payout for 2026-01", "0", "0", "0", "NULL", "4000"), &e, titles))
	if e.ShowID != 0 || e.ShowTitle != "" || e.Source != "" || e.Description != "Payout for 2026-01" || e.Amount != -4000 {
		t.Errorf("payout: %+v", e)
	}
	must(t, decodeEntry(row("44", "payment", "7", "NULL", "donations", "NULL", "1", "0", "0", "NULL", "0"), &e, titles))
	if e.Description != "" || e.ShowTitle != "Known Show" {
		t.Errorf("a payment after the payout keeps no description: %+v", e)
	}

	for _, tt := range []struct {
		name string
		v    [][]byte
		want string
	}{
		{"ErrBadInt", row("4x", "payment", "7", "NULL", "donations", "NULL", "1", "0", "0", "NULL", "0"), "entry_id"},
		{"ErrNullAmount", row("4", "payment", "7", "NULL", "donations", "NULL", "1", "0", "0", "NULL", "NULL"), "amount"},
		{"ErrOverflow", row("4", "payment", "7", "NULL", "donations", "NULL", "9223372036854775808", "0", "0", "NULL", "0"), "gross"},
		{"ErrMinInt", row("4", "payment", "7", "NULL", "donations", "NULL", "0", "0", "0", "NULL", "-9223372036854775808"), "out of range"},
		{"ErrColumns", row("4", "payment"), "values"},
		{"ErrTextTime", append([][]byte{[]byte("2026-01-15 13:07:09+00")}, row("4", "payment", "7", "NULL", "donations", "NULL", "1", "0", "0", "NULL", "0")[1:]...), "binary timestamp"},
	} {
		if err := decodeEntry(tt.v, &e, titles); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error about %s", tt.name, err, tt.want)
		}
	}
	if n, err := textInt("x", []byte("-9223372036854775808")); err != nil || n != math.MinInt64 {
		t.Errorf("textInt(MinInt64) = %d, %v", n, err)
	}
}
