package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// TestBrowserUpload is a creator in a real browser on `fanseed dev` (the control plane and two
// seedbox nodes): uploads a file on the episode page, watches the progress bar reach 100%, and
// sees the episode published with its torrent links.
func TestBrowserUpload(t *testing.T) {
	base, _ := startCommand(t, "dev", map[string]string{"DATABASE_URL": dbtest.NewURL(t)})
	file := filepath.Join(t.TempDir(), "pilot.mp4")
	if err := os.WriteFile(file, mediaFile(7, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t, 1000, 900)
	err := chromedp.Do(ctx, slices.Concat(browserSignUp(base, "Uma Uploader", "uma@example.com"),
		browserNewShow(base, "Upload Show", "upload-show"), []chromedp.Action[chromedp.Void]{
			chromedp.WaitVisible(chromedp.ID("ep-title")),
			chromedp.SendKeys(chromedp.ID("ep-title"), "Pilot"),
			chromedp.Submit(chromedp.ID("ep-title")),
			chromedp.WaitVisible(chromedp.CSS(`#uploader[data-ready="1"]`)),
			chromedp.SetUploadFiles(chromedp.ID("file"), []string{file}),
			// The upload moves at 1 MiB/s, so that the page can be watched while bytes move.
			chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
					return err
				}
				_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
					MatchedNetworkConditions: []*network.Conditions{{URLPattern: base + "/api/uploads/*", DownloadThroughput: -1, UploadThroughput: 1 << 20}}})
				return err
			}),
			chromedp.Click(chromedp.ID("upload-start")),
		})...)
	if err != nil {
		t.Fatal(err)
	}
	// While bytes move, the episode's badge says so.
	var badge, moving string
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		pct, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("upload-percent"), chromedp.AtLeast(0)))
		badge, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("episode-status")))
		if pct != "" && pct != "0%" && pct != "100%" {
			moving = pct
			break
		}
	}
	if moving == "" || badge != "uploading" {
		t.Errorf("at %q uploaded the episode's badge says %q, want uploading", moving, badge)
	}
	// The bar reaches 100% and the page follows the episode until the fleet publishes it.
	deadline := time.Now().Add(90 * time.Second)
	var percent, status string
	for time.Now().Before(deadline) {
		percent, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("upload-percent"), chromedp.AtLeast(0)))
		status, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("episode-status")))
		if status == "published" {
			break
		}
		time.Sleep(time.Second)
	}
	if status != "published" {
		msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("episode status %q, progress %q after 90 s:\n%s", status, percent, msg)
	}
	// The page reloads once published and shows the torrent links.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`a[href$=".torrent"]`))); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		os.WriteFile(filepath.Join(screenshotDir(t), "published.png"), shot, 0o644)
	}
}
