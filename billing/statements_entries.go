package billing

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// The CSV statement reads a million rows for a busy party's year, so its rows are decoded by
// hand from the bytes PostgreSQL sends: no value is allocated per row, and the formats are the
// ones PostgreSQL sends fastest. The time comes in binary (text would have PostgreSQL format a
// date and a time zone), everything else in text, which is the value itself for text columns
// and for integers costs PostgreSQL less than binary; and a NULL costs less than an empty
// description or a zero absorbed fee, which most rows have.
const entryQuery = `
	SELECT pe.occurred_at, pe.entry_id, pe.kind, pe.show_id,
	       CASE WHEN pe.show_id <> ALL($4) THEN (SELECT title FROM shows WHERE id = pe.show_id) END,
	       pe.source, NULLIF(pe.description, ''), pe.gross, pe.fee, pe.share, NULLIF(pe.absorbed, 0), pe.amount
	FROM party_entries pe
	WHERE pe.account_id = $1 AND pe.day BETWEEN $2 AND $3
	ORDER BY pe.day, pe.occurred_at, pe.entry_id`

var entryFormats = pgx.QueryResultFormats{pgx.BinaryFormatCode, pgx.TextFormatCode, pgx.TextFormatCode,
	pgx.TextFormatCode, pgx.TextFormatCode, pgx.TextFormatCode, pgx.TextFormatCode, pgx.TextFormatCode,
	pgx.TextFormatCode, pgx.TextFormatCode, pgx.TextFormatCode, pgx.TextFormatCode}

// eachEntry calls fn with each entry of one payable account in the range, the running balance
// starting at balance, and returns the closing balance. The titles of the shows the account
// had money from in summed days are read first; only a show missing from them (an entry of
// a recent day) has its title sent with each of its rows.
func eachEntry(ctx context.Context, db DBTX, account int64, currency string, r Range, balance int64,
	fn func(e *StatementEntry) error) (int64, error) {
	titles := map[int64]string{}
	rows, _ := db.Query(ctx, `SELECT id, title FROM shows WHERE id IN (
		SELECT DISTINCT show_id FROM party_days WHERE account_id = $1 AND day BETWEEN $2 AND $3)`, account, r.From, r.To)
	var id int64
	var title string
	if _, err := pgx.ForEachRow(rows, []any{&id, &title}, func() error { titles[id] = title; return nil }); err != nil {
		return 0, fmt.Errorf("show titles: %w", err)
	}
	known := make([]int64, 0, len(titles))
	for id := range titles {
		known = append(known, id)
	}

	rows, err := db.Query(ctx, entryQuery, entryFormats, account, r.From, r.To, known)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	if err := checkEntryFields(rows.FieldDescriptions()); err != nil {
		return 0, err
	}
	e := StatementEntry{Currency: currency}
	for rows.Next() {
		if err := decodeEntry(rows.RawValues(), &e, titles); err != nil {
			return 0, err
		}
		balance += e.Amount
		e.Balance = balance
		if err := fn(&e); err != nil {
			return 0, err
		}
	}
	return balance, rows.Err()
}

// checkEntryFields makes sure the rows come in the formats decodeEntry reads, which they do
// unless the connection was set to the simple protocol (all text).
func checkEntryFields(fields []pgconn.FieldDescription) error {
	if len(fields) != len(entryFormats) {
		return fmt.Errorf("statement rows have %d columns, want %d", len(fields), len(entryFormats))
	}
	for i, f := range fields {
		if f.Format != entryFormats[i] {
			return fmt.Errorf("statement rows: column %s came in format %d, want %d (the connection must use the extended protocol)",
				f.Name, f.Format, entryFormats[i])
		}
	}
	if fields[0].DataTypeOID != pgtype.TimestamptzOID {
		return fmt.Errorf("statement rows: column %s has type %d, want timestamptz", fields[0].Name, fields[0].DataTypeOID)
	}
	return nil
}

// postgresEpoch is 2000-01-01 UTC in microseconds since 1970: binary timestamps count from it.
const postgresEpoch = 946_684_800_000_000

// decodeEntry reads one row of entryQuery into e, keeping e's strings when the row repeats
// them, so that nothing is allocated for rows like the one before.
func decodeEntry(v [][]byte, e *StatementEntry, titles map[int64]string) error {
	if len(v) != len(entryFormats) {
		return fmt.Errorf("statement row has %d values, want %d", len(v), len(entryFormats))
	}
	if len(v[0]) != 8 {
		return errors.New("statement row: occurred_at is not a binary timestamp")
	}
	us := int64(binary.BigEndian.Uint64(v[0]))
	if us == math.MaxInt64 || us == math.MinInt64 || us > math.MaxInt64-postgresEpoch {
		return errors.New("statement row: occurred_at is infinite")
	}
	e.OccurredAt = time.UnixMicro(us + postgresEpoch).UTC()
	var err error
	if e.EntryID, err = textInt("entry_id", v[1]); err != nil {
		return err
	}
	e.Kind = internKind(v[2])
	showID := int64(0)
	if v[3] != nil {
		if showID, err = textInt("show_id", v[3]); err != nil {
			return err
		}
	}
	switch {
	case showID == 0:
		e.ShowTitle = ""
	case v[4] != nil: // a show not known when the rows were asked for
		if t, ok := titles[showID]; !ok || t != string(v[4]) {
			titles[showID] = string(v[4])
		}
		e.ShowTitle = titles[showID]
	case showID != e.ShowID:
		e.ShowTitle = titles[showID]
	}
	e.ShowID = showID
	switch string(v[5]) {
	case "":
		e.Source = ""
	case SourceDonations:
		e.Source = SourceDonations
	case SourceSponsorship:
		e.Source = SourceSponsorship
	default:
		if e.Source != string(v[5]) {
			e.Source = string(v[5])
		}
	}
	if e.Description != string(v[6]) {
		e.Description = string(v[6])
	}
	// Signed as StatementLine: the account's credits (negative in the ledger) are the party's gains.
	if e.Gross, err = textInt("gross", v[7]); err != nil {
		return err
	}
	if e.Fee, err = textInt("fee", v[8]); err != nil {
		return err
	}
	if e.Share, err = textInt("share", v[9]); err != nil {
		return err
	}
	e.FeeAbsorbed = 0
	if v[10] != nil {
		if e.FeeAbsorbed, err = textInt("absorbed", v[10]); err != nil {
			return err
		}
	}
	if e.Amount, err = textInt("amount", v[11]); err != nil {
		return err
	}
	if e.Fee == math.MinInt64 || e.Share == math.MinInt64 || e.Amount == math.MinInt64 {
		return errors.New("statement row: an amount is out of range")
	}
	e.Fee, e.Share, e.Amount = -e.Fee, -e.Share, -e.Amount
	return nil
}

// internKind is an entry kind as one of the constants, so that it costs no allocation.
func internKind(b []byte) string {
	switch string(b) {
	case EntryPayment:
		return EntryPayment
	case EntryRefund:
		return EntryRefund
	case EntryDispute:
		return EntryDispute
	case EntryDisputeWon:
		return EntryDisputeWon
	case EntryPayout:
		return EntryPayout
	case EntryAdjustment:
		return EntryAdjustment
	}
	return string(b)
}

// textInt reads a bigint PostgreSQL sent as text.
func textInt(column string, b []byte) (int64, error) {
	digits := b
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 19 {
		return 0, fmt.Errorf("statement row: %s %q is not a bigint", column, b)
	}
	var u uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("statement row: %s %q is not a bigint", column, b)
		}
		u = u*10 + uint64(c-'0')
	}
	if len(digits) < len(b) {
		if u > 1<<63 {
			return 0, fmt.Errorf("statement row: %s %q is not a bigint", column, b)
		}
		return -int64(u), nil
	}
	if u > math.MaxInt64 {
		return 0, fmt.Errorf("statement row: %s %q is not a bigint", column, b)
	}
	return int64(u), nil
}
