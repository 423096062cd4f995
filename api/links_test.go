package api_test

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// hrefs lists the href of every link (<a>) of a page, as the browser reads them.
func hrefs(t *testing.T, page string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "a" {
			continue
		}
		for _, a := range n.Attr {
			if a.Key == "href" {
				out = append(out, a.Val)
			}
		}
	}
	return out
}

// linkTo is the first link of a page whose href contains part, or fails the test.
func linkTo(t *testing.T, page, part string) string {
	t.Helper()
	for _, h := range hrefs(t, page) {
		if strings.Contains(h, part) {
			return h
		}
	}
	t.Fatalf("no link containing %q on the page", part)
	return ""
}
