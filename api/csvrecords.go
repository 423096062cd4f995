package api

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fanseed/fanseed/billing"
)

// csvRecords builds CSV records in one reused buffer, byte for byte as encoding/csv's Writer
// writes them (comma, LF, a cell quoted when it holds a comma, quote, CR or LF or starts with
// a space), but with no []string per record and no string per cell: a statement can have a
// million rows. Every text cell goes through Text, which also keeps formulas out.
type csvRecords struct {
	buf  []byte
	open bool // the record has a cell, so the next one needs a comma
}

func (c *csvRecords) sep() {
	if c.open {
		c.buf = append(c.buf, ',')
	}
	c.open = true
}

// Text appends a text cell, quoted as encoding/csv quotes it. A cell a spreadsheet would read
// as a formula (it starts with =, +, -, @, a tab or a CR) gets a leading ' so that it is shown
// as text: titles and descriptions are typed by people. Numbers are not text cells.
func (c *csvRecords) Text(s string) {
	c.sep()
	if s == "" {
		return
	}
	formula := csvFormula(s)
	quote := false
	for i := 0; i < len(s); i++ {
		if csvSpecial[s[i]] {
			quote = true
			break
		}
	}
	if !quote && !formula {
		// encoding/csv also quotes a cell that starts with a space (a formula starts with ' now),
		// and \. alone.
		if s[0] < utf8.RuneSelf {
			quote = csvASCIISpace[s[0]] || s == `\.`
		} else {
			r, _ := utf8.DecodeRuneInString(s)
			quote = unicode.IsSpace(r)
		}
		if !quote {
			c.buf = append(c.buf, s...)
			return
		}
	}
	if quote {
		c.buf = append(c.buf, '"')
	}
	if formula {
		c.buf = append(c.buf, '\'')
	}
	if !quote {
		c.buf = append(c.buf, s...)
		return
	}
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		c.buf = append(c.buf, s[:i+1]...)
		c.buf = append(c.buf, '"')
		s = s[i+1:]
	}
	c.buf = append(c.buf, s...)
	c.buf = append(c.buf, '"')
}

// Empty appends an empty cell.
func (c *csvRecords) Empty() { c.sep() }

// Int appends a number cell.
func (c *csvRecords) Int(n int64) {
	c.sep()
	c.buf = strconv.AppendInt(c.buf, n, 10)
}

// Money appends an amount in minor units as a decimal number of cur.
func (c *csvRecords) Money(cur billing.Currency, minor int64) {
	c.sep()
	c.buf = cur.Append(c.buf, minor)
}

// Date appends t's day as 2006-01-02.
func (c *csvRecords) Date(t time.Time) {
	c.sep()
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		c.buf = t.AppendFormat(c.buf, time.DateOnly)
		return
	}
	c.buf = append(c.buf, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

// Clock appends t's time of day as 15:04:05.
func (c *csvRecords) Clock(t time.Time) {
	c.sep()
	h, m, s := t.Clock()
	c.buf = append(c.buf, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+m/10), byte('0'+m%10), ':',
		byte('0'+s/10), byte('0'+s%10))
}

// End ends the record.
func (c *csvRecords) End() {
	c.buf = append(c.buf, '\n')
	c.open = false
}

// Bytes by what they do to a text cell: anywhere, make it quoted; first, make it a formula
// or (ASCII spaces as unicode.IsSpace has them) quoted.
var csvSpecial, csvFormulaLead, csvASCIISpace [256]bool

func init() {
	for _, b := range []byte("\n\r\",") {
		csvSpecial[b] = true
	}
	for _, b := range []byte("=+-@\t\r") {
		csvFormulaLead[b] = true
	}
	for _, b := range []byte("\t\n\v\f\r ") {
		csvASCIISpace[b] = true
	}
}
