package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// viewerOf is the account as billing's statement rules see it.
func viewerOf(a *catalog.Account) billing.Viewer {
	return billing.Viewer{AccountID: a.ID, Email: a.Email, Admin: a.IsAdmin(), Partner: a.Role == catalog.RolePartner}
}

type statementsPage struct {
	layout
	Parties []billing.Party
	Period  string
}

// handleStatements lists the parties whose statements the account may read.
func (s *Server) handleStatements() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		parties, err := billing.StatementParties(r.Context(), s.db, viewerOf(accountFrom(r.Context())))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "statements", &statementsPage{layout: layout{Title: "Statements"}, Parties: parties,
			Period: billing.MonthRange(time.Now()).From.AddDate(0, -1, 0).Format("2006-01")})
	}
}

// loadStatementParty reads the party id and the range from a statement request and checks
// that the account may read that party's statement.
func (s *Server) loadStatementParty(r *http.Request, id string) (billing.Party, billing.Range, error) {
	partyID, err := strconv.ParseInt(id, 10, 64)
	if err != nil || partyID <= 0 {
		return billing.Party{}, billing.Range{}, fmt.Errorf("party %q: %w", id, billing.ErrNotFound)
	}
	party, err := billing.StatementParty(r.Context(), s.db, viewerOf(accountFrom(r.Context())), partyID)
	if err != nil {
		return billing.Party{}, billing.Range{}, err
	}
	q := r.URL.Query()
	rng, err := billing.ParseRange(q.Get("period"), q.Get("from"), q.Get("to"), time.Now())
	return party, rng, err
}

type statementPage struct {
	layout
	billing.Statement
	Period   string
	From, To string
}

// ExportURL is the statement's range in another format (csv or json).
func (p *statementPage) ExportURL(ext string) string {
	return fmt.Sprintf("/statements/%d.%s?", p.Party.ID, ext) + url.Values{"from": {p.From}, "to": {p.To}}.Encode()
}

// Money formats minor units in a currency, for the page.
func (p *statementPage) Money(minor int64, currency string) string {
	c, err := billing.LookupCurrency(currency)
	if err != nil {
		return strconv.FormatInt(minor, 10)
	}
	return c.Format(minor)
}

// Totals sums a section's lines, for the page's total rows.
func (p *statementPage) Totals(lines []billing.StatementLine) billing.StatementLine {
	return billing.Totals(lines)
}

// handleStatement is one party's statement: /statements/{party} as a printable page,
// {party}.csv as a CSV streamed row by row, {party}.json as JSON.
func (s *Server) handleStatement() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, format, _ := strings.Cut(chi.URLParam(r, "party"), ".")
		if format != "" && format != "csv" && format != "json" {
			s.fail(w, r, billing.ErrNotFound)
			return
		}
		party, rng, err := s.loadStatementParty(r, id)
		if err != nil {
			if format == "json" {
				s.apiError(w, r, err)
			} else {
				s.fail(w, r, err)
			}
			return
		}
		switch format {
		case "csv":
			s.streamStatementCSV(w, r, party, rng)
			return
		case "json":
			st, err := billing.BuildStatement(r.Context(), s.db, party, rng)
			if err != nil {
				s.apiError(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, statementJSONOf(st))
			return
		}
		st, err := billing.BuildStatement(r.Context(), s.db, party, rng)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "statement", &statementPage{
			layout:    layout{Title: "Statement · " + party.Name},
			Statement: st, Period: rng.Period(),
			From: rng.From.Format(time.DateOnly), To: rng.To.Format(time.DateOnly),
		})
	}
}

// csvFlushBytes is how much of the CSV goes out in one write: the response is flushed as it
// goes, so neither side holds the whole statement.
const csvFlushBytes = 64 << 10

// streamStatementCSV writes one row per ledger entry that touched the party, between an
// opening and a closing row per currency, flushing as it goes. An error half-way can only cut
// the response short; it is logged, and the missing closing row shows the file is incomplete.
func (s *Server) streamStatementCSV(w http.ResponseWriter, r *http.Request, party billing.Party, rng billing.Range) {
	name := fmt.Sprintf("statement-%d-%s-%s.csv", party.ID, rng.From.Format(time.DateOnly), rng.To.Format(time.DateOnly))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	c := csvRecords{buf: make([]byte, 0, csvFlushBytes+4<<10)}
	n := 0
	flush := func() error {
		if _, err := w.Write(c.buf); err != nil {
			return err
		}
		c.buf = c.buf[:0]
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	var cur billing.Currency
	for _, h := range []string{"date", "time", "entry", "kind", "show_id", "show", "source", "description", "gross", "fee",
		"share", "fee_absorbed", "amount", "balance", "currency"} {
		c.Text(h)
	}
	c.End()
	// The opening and closing rows: the day, empty cells up to the balance, and the currency.
	balanceRow := func(day time.Time, kind, description string, balance int64, currency string) {
		c.Date(day)
		c.Empty()
		c.Empty()
		c.Text(kind)
		c.Empty()
		c.Empty()
		c.Empty()
		c.Text(description)
		for range 5 {
			c.Empty()
		}
		c.Money(cur, balance)
		c.Text(currency)
		c.End()
	}
	err := billing.EachStatementEntry(r.Context(), s.db, party, rng,
		func(currency string, balance int64) error {
			cur, _ = billing.LookupCurrency(currency)
			balanceRow(rng.From, "opening", "Opening balance", balance, currency)
			return nil
		},
		func(e *billing.StatementEntry) error {
			t := e.OccurredAt.UTC()
			c.Date(t)
			c.Clock(t)
			c.Int(e.EntryID)
			c.Text(e.Kind)
			if e.ShowID != 0 {
				c.Int(e.ShowID)
			} else {
				c.Empty()
			}
			c.Text(e.ShowTitle)
			c.Text(e.Source)
			c.Text(e.Description)
			c.Money(cur, e.Gross)
			c.Money(cur, e.Fee)
			c.Money(cur, e.Share)
			c.Money(cur, e.FeeAbsorbed)
			c.Money(cur, e.Amount)
			c.Money(cur, e.Balance)
			c.Text(e.Currency)
			c.End()
			n++
			if len(c.buf) >= csvFlushBytes {
				return flush()
			}
			return nil
		},
		func(currency string, balance int64) error {
			balanceRow(rng.To, "closing", "Closing balance", balance, currency)
			return nil
		})
	if err == nil {
		err = flush()
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "statement csv cut short", "party_id", party.ID, "rows", n, "error", err,
			"request_id", requestID(r))
	}
}

// statementJSON is a statement in the JSON API: amounts are integers in minor units of the
// section's currency, positive when they add to what the party is owed.
type statementJSON struct {
	Party struct {
		ID   int64  `json:"id"`
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"party"`
	From        string         `json:"from"`
	To          string         `json:"to"`
	Granularity string         `json:"granularity"`
	Currencies  []currencyJSON `json:"currencies"`
}

type currencyJSON struct {
	Currency    string     `json:"currency"`
	Opening     int64      `json:"opening"`
	Closing     int64      `json:"closing"`
	Change      int64      `json:"change"`
	Sources     []lineJSON `json:"sources"`
	Adjustments []lineJSON `json:"adjustments"`
	Payouts     []lineJSON `json:"payouts"`
	Other       []lineJSON `json:"other"`
	Totals      struct {
		Sources     lineJSON `json:"sources"`
		Adjustments lineJSON `json:"adjustments"`
		Payouts     lineJSON `json:"payouts"`
		Other       lineJSON `json:"other"`
	} `json:"totals"`
}

type lineJSON struct {
	Day         string `json:"day,omitempty"`
	Kind        string `json:"kind,omitempty"`
	ShowID      int64  `json:"show_id,omitempty"`
	Show        string `json:"show,omitempty"`
	Source      string `json:"source,omitempty"`
	EntryID     int64  `json:"entry_id,omitempty"`
	Description string `json:"description,omitempty"`
	Count       int64  `json:"count"`
	Gross       int64  `json:"gross"`
	Fee         int64  `json:"fee"`
	Share       int64  `json:"share"`
	FeeAbsorbed int64  `json:"fee_absorbed"`
	Amount      int64  `json:"amount"`
}

// statementGranularity says what a line is, in the JSON as on the page.
const statementGranularity = "sources: one line per UTC day, show and source (donations or sponsorship) with the count of payments; " +
	"adjustments: one line per day, show, source and kind (refund, refund_failed, dispute, dispute_won); payouts and other adjustments: one line per ledger entry. " +
	"The CSV has one row per ledger entry."

func linesJSON(lines []billing.StatementLine) []lineJSON {
	out := make([]lineJSON, len(lines))
	for i, l := range lines {
		out[i] = lineJSONOf(l)
		out[i].Day = l.Day.Format(time.DateOnly)
	}
	return out
}

func lineJSONOf(l billing.StatementLine) lineJSON {
	return lineJSON{Kind: l.Kind, ShowID: l.ShowID, Show: l.ShowTitle, Source: l.Source, EntryID: l.EntryID,
		Description: l.Description, Count: l.Count, Gross: l.Gross, Fee: l.Fee, Share: l.Share, FeeAbsorbed: l.FeeAbsorbed,
		Amount: l.Amount}
}

func statementJSONOf(st billing.Statement) statementJSON {
	var out statementJSON
	out.Party.ID, out.Party.Kind, out.Party.Name = st.Party.ID, st.Party.Kind, st.Party.Name
	out.From, out.To = st.Range.From.Format(time.DateOnly), st.Range.To.Format(time.DateOnly)
	out.Granularity = statementGranularity
	out.Currencies = []currencyJSON{}
	for _, c := range st.Currencies {
		cj := currencyJSON{Currency: c.Currency, Opening: c.Opening, Closing: c.Closing, Change: c.Change(),
			Sources: linesJSON(c.Sources), Adjustments: linesJSON(c.Adjustments), Payouts: linesJSON(c.Payouts), Other: linesJSON(c.Other)}
		cj.Totals.Sources = lineJSONOf(billing.Totals(c.Sources))
		cj.Totals.Adjustments = lineJSONOf(billing.Totals(c.Adjustments))
		cj.Totals.Payouts = lineJSONOf(billing.Totals(c.Payouts))
		cj.Totals.Other = lineJSONOf(billing.Totals(c.Other))
		out.Currencies = append(out.Currencies, cj)
	}
	return out
}

// writeJSON encodes v with its Content-Type set before the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error":{"code":"internal","message":"Something went wrong on our side."}}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// statementSection is what the statement-lines template needs for one table.
type statementSection struct {
	Page  *statementPage
	Cur   string
	Lines []billing.StatementLine
	Kinds bool // refunds and disputes: show each line's kind
}

// Section bundles a table's data for the statement-lines template.
func (p *statementPage) Section(cur string, lines []billing.StatementLine, kinds bool) statementSection {
	return statementSection{Page: p, Cur: cur, Lines: lines, Kinds: kinds}
}
