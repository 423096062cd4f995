package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// browserSignUp signs up in the browser with name and email, follows the page's link to log in
// (an unconfirmed account may), logs in and waits for the dashboard's link to a new show.
func browserSignUp(base, name, email string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(base + "/signup"),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "a long enough password"),
		chromedp.Click(chromedp.CSS("form button[type=submit]")),
		// Sign-up asks to confirm the address by email; an unconfirmed account logs in.
		chromedp.WaitVisible(chromedp.CSS(`#signup-sent a[href="/login"]`)),
		chromedp.Click(chromedp.CSS(`#signup-sent a[href="/login"]`)),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "a long enough password"),
		chromedp.Click(chromedp.CSS("form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/shows/new"]`)),
	}
}

// browserNewShow makes a show with title and slug in the browser, then opens its page from the
// dashboard.
func browserNewShow(base, title, slug string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(base + "/shows/new"),
		chromedp.SendKeys(chromedp.ID("title"), title),
		chromedp.SendKeys(chromedp.ID("slug"), slug),
		chromedp.Click(chromedp.CSS("form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("plan-form")),
		chromedp.Navigate(strings.TrimSuffix(base, "/") + "/dashboard"),
		chromedp.Click(chromedp.CSS(`ul.list a`)),
	}
}

// newBrowser starts headless Chromium (Debian's package, which .ci/test installs) for one test,
// with extra options (flags) when given.
func newBrowser(t *testing.T, width, height int, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	exec := "/usr/bin/chromium"
	if _, err := os.Stat(exec); err != nil {
		t.Fatalf("chromium is not installed at %s (bash .ci/test installs it): %v", exec, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exec),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	opts = append(opts, extra...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	// Whatever the Content-Security-Policy blocks on any page the test opens fails the test.
	var mu sync.Mutex
	var blocked []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*cdplog.EventEntryAdded); ok && e.Entry != nil && strings.Contains(e.Entry.Text, "Content Security Policy") {
			mu.Lock()
			blocked = append(blocked, e.Entry.URL+": "+e.Entry.Text)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range blocked {
			t.Errorf("blocked by the Content-Security-Policy: %s", b)
		}
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screenshotDir is where browser tests leave their screenshots: FANSEED_SCREENSHOTS, or a
// temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("FANSEED_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// noOverflow fails the test when the page is wider than the window.
func noOverflow(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if overflow {
		t.Errorf("%s scrolls sideways", page)
	}
}

// TestBrowserNewcomer is a newcomer in a real browser: signs up, creates a show, types a
// 75/25 plan (the live preview follows) and saves it, on a phone-sized and a desktop window.
func TestBrowserNewcomer(t *testing.T) {
	base, _ := startServe(t, map[string]string{"DATABASE_URL": dbtest.NewURL(t)})
	for _, width := range []int{375, 1280} {
		t.Run(strconv.Itoa(width)+"px", func(t *testing.T) {
			ctx := newBrowser(t, width, 900)
			email := "newcomer" + strconv.Itoa(width) + "@example.com"
			slug := "first-show-" + strconv.Itoa(width)
			err := chromedp.Do(ctx, append(browserSignUp(base, "New Comer", email),
				chromedp.Click(chromedp.CSS(`a[href="/shows/new"]`)),
				chromedp.WaitVisible(chromedp.ID("title")),
				chromedp.SendKeys(chromedp.ID("title"), "First Show"),
				chromedp.SendKeys(chromedp.ID("slug"), slug),
				chromedp.SendKeys(chromedp.ID("funding_goal"), "250"),
				chromedp.Click(chromedp.CSS("form button[type=submit]")),
				chromedp.WaitVisible(chromedp.ID("plan-form")),
			)...)
			if err != nil {
				t.Fatal(err)
			}
			planURL, err := chromedp.Run(ctx, chromedp.Location())
			if err != nil {
				t.Fatal(err)
			}
			noOverflow(t, ctx, "plan editor")
			distributor := chromedp.CSS(`input[name="percent"]`) // the first row is the distributor's
			// Retype the distributor's share: the live preview recomputes on the server.
			typeShare := func(v string) (total, creatorPart string) {
				t.Helper()
				err := chromedp.Do(ctx,
					chromedp.Focus(distributor),
					chromedp.Evaluate[chromedp.Void](`document.querySelector('input[name="percent"]').select()`),
					chromedp.SendKeys(distributor, v),
					chromedp.Sleep(700*time.Millisecond),
				)
				if err == nil {
					total, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("plan-total")))
				}
				if err == nil {
					creatorPart, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tbody tr:nth-child(2) td.preview`)))
				}
				if err != nil {
					t.Fatal(err)
				}
				return total, creatorPart
			}
			if total, _ := typeShare("30"); total != "105.00%" {
				t.Errorf("live total after typing 30 for the distributor = %q, want 105.00%%", total)
			}
			if total, part := typeShare("25"); total != "100.00%" || part != "7.50" {
				t.Errorf("live preview: total %q, creator's part of 10.00 %q; want 100.00%% and 7.50", total, part)
			}
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(screenshotDir(t), "plan-"+strconv.Itoa(width)+".png"), shot, 0o644)
			if err := chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`button[value=save]`)),
				chromedp.WaitVisible(chromedp.CSS(".flash")),
				chromedp.Navigate(strings.TrimSuffix(planURL, "/plan")),
			); err != nil {
				t.Fatal(err)
			}
			page, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
			if err != nil {
				t.Fatal(err)
			}
			if shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(screenshotDir(t), "show-"+strconv.Itoa(width)+".png"), shot, 0o644)
			noOverflow(t, ctx, "show page")
			for _, want := range []string{"First Show", "75.00%", "25.00%", "7.50", "2.50"} {
				if !strings.Contains(page, want) {
					t.Errorf("show page lacks %q:\n%s", want, page)
				}
			}
		})
	}
}
