package api

import "strings"

// csvText makes a text cell safe to open in a spreadsheet. A cell starting with =, +, -, @, a
// tab or a carriage return (or the full-width =, +, - and @ some spreadsheets also read) is
// taken for a formula, so a show, episode or party name such as =HYPERLINK(...) gets a leading
// apostrophe and stays text. Amounts and dates Fanseed formats itself are not passed through it.
func csvText(s string) string {
	for _, prefix := range []string{"=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠"} {
		if strings.HasPrefix(s, prefix) {
			return "'" + s
		}
	}
	return s
}
