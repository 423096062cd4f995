package api

import (
	"strings"
	"unicode/utf8"
)

// csvText makes a text cell safe to open in a spreadsheet. A cell starting with =, +, -, @, a
// tab or a carriage return (or the full-width =, +, - and @ some spreadsheets also read) is
// taken for a formula, so a show, episode or party name such as =HYPERLINK(...) gets a leading
// apostrophe and stays text. Amounts and dates Fanseed formats itself are not passed through it.
func csvText(s string) string {
	if csvFormula(s) {
		return "'" + s
	}
	return s
}

// csvFormula reports whether a spreadsheet would take a text cell for a formula: the one rule
// for every CSV Fanseed writes (csvText, and csvRecords.Text for statements).
func csvFormula(s string) bool {
	if s == "" {
		return false
	}
	if s[0] < utf8.RuneSelf {
		return csvFormulaLead[s[0]]
	}
	for _, prefix := range []string{"＝", "＋", "－", "＠"} {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
