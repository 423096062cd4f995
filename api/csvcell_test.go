package api

import "testing"

func TestCSVText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`=HYPERLINK("http://evil.test","x")`, `'=HYPERLINK("http://evil.test","x")`},
		{"+1", "'+1"},
		{"-2", "'-2"},
		{"@x", "'@x"},
		{"\tTab", "'\tTab"},
		{"\rCR", "'\rCR"},
		{"＝1+1", "'＝1+1"},
		{"Night Signals", "Night Signals"},
		{"a=b", "a=b"},
		{"1-2", "1-2"},
		{"", ""},
		{"'quoted", "'quoted"},
	} {
		if got := csvText(tt.in); got != tt.want {
			t.Errorf("csvText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
