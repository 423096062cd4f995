package main

import (
	"bytes"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// TestBrowserPodcastSettings is a creator in a real browser readying a show for podcast
// directories: a 1000x1000 cover is refused with the reason next to the artwork field, a
// 1400x1400 one is taken, and the feed settings chosen on the edit page reach the feed.
func TestBrowserPodcastSettings(t *testing.T) {
	base, _ := startServe(t, map[string]string{"DATABASE_URL": dbtest.NewURL(t)})
	dir := t.TempDir()
	cover := func(side int) string {
		var buf bytes.Buffer
		if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, side, side))); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "cover.png")
		if side < 1400 {
			path = filepath.Join(dir, "small.png")
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	small, big := cover(1000), cover(1400)
	ctx := newBrowser(t, 1000, 900)
	var refused string
	err := chromedp.Do(ctx, slices.Concat(browserSignUp(base, "Pia Podcaster", "pia@example.com"),
		browserNewShow(base, "Pod Show", "pod-show"), []chromedp.Action[chromedp.Void]{
			chromedp.WaitVisible(chromedp.ID("artwork")),
			chromedp.SetUploadFiles(chromedp.ID("artwork"), []string{small}),
			chromedp.Submit(chromedp.ID("artwork")),
			chromedp.WaitVisible(chromedp.CSS(`#artwork + p.error`)),
		})...)
	if err != nil {
		t.Fatal(err)
	}
	refused, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#artwork + p.error`)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "The image must be at least 1400x1400 pixels: this one is 1000x1000. 3000x3000 is recommended."; refused != want {
		t.Errorf("1000x1000 cover: the page says %q next to the field, want %q", refused, want)
	}
	err = chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.ID("artwork"), []string{big}),
		chromedp.Submit(chromedp.ID("artwork")),
		chromedp.WaitVisible(chromedp.CSS(`img.artwork`)),
		chromedp.Click(chromedp.CSS(`a[href$="/edit"]`)),
		chromedp.WaitVisible(chromedp.ID("podcast-feed")),
		chromedp.SetValue(chromedp.ID("language"), "fr-CA"),
		chromedp.SetValue(chromedp.ID("category"), "Science/Astronomy"),
		chromedp.SendKeys(chromedp.ID("owner_name"), "Pia"),
		chromedp.SendKeys(chromedp.ID("owner_email"), "pia@example.com"),
		chromedp.Click(chromedp.CSS(`input[name="explicit"]`)),
		chromedp.Click(chromedp.CSS(`input[name="locked"]`)),
		chromedp.Submit(chromedp.ID("language")),
		chromedp.WaitVisible(chromedp.CSS(`img.artwork`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(base + "/s/pod-show/podcast.rss")
	if err != nil {
		t.Fatal(err)
	}
	feed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`<language>fr-CA</language>`, `<itunes:category text="Science">`, `<itunes:category text="Astronomy">`,
		`<itunes:explicit>true</itunes:explicit>`, `<itunes:email>pia@example.com</itunes:email>`,
		`<podcast:locked owner="pia@example.com">yes</podcast:locked>`, `/s/pod-show/artwork"></itunes:image>`} {
		if !strings.Contains(string(feed), want) {
			t.Errorf("feed lacks %s:\n%s", want, feed)
		}
	}
}
