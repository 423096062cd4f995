package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

// TestBrowserPartnerStatement: a partner created with `fanseed admin create-user -role partner`
// logs in, follows the dashboard to their statement for a month, downloads the CSV, and the
// CSV's balances and totals are the page's.
func TestBrowserPartnerStatement(t *testing.T) {
	dbURL := dbtest.NewURL(t)
	base, _ := startServe(t, map[string]string{"DATABASE_URL": dbURL})
	ctx := context.Background()
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("partner password 123\n"), 0o600)
	env := map[string]string{"DATABASE_URL": dbURL, "DATA_DIR": t.TempDir()}
	if err := run(ctx, []string{"fanseed", "admin", "create-user", "-email", "pat@example.com", "-name", "Pat Partner",
		"-role", "partner", "-password-file", pwFile}, func(k string) string { return env[k] }, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}

	// A show whose plan gives Pat (by email) 20%, with money in October 2026 and a refund.
	db, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	owner, err := catalog.CreateAccount(ctx, db, catalog.SignUp{Email: "maker@example.com", Name: "Maker", Password: "a long enough password"})
	if err != nil {
		t.Fatal(err)
	}
	show, err := catalog.CreateShow(ctx, db, owner.ID, catalog.ShowInput{Slug: "night-signals", Title: "Night Signals", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	dist, _ := billing.DistributorParty(ctx, db)
	maker, _ := billing.EnsureParty(ctx, db, billing.PartyCreator, "Maker", "maker@example.com", &owner.ID)
	pat, err := billing.EnsureParty(ctx, db, billing.PartyCollaborator, "Pat Partner", "pat@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	oct := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	plan, err := billing.CreatePlan(ctx, db, show.ID, billing.SourceAll, billing.FeePolicyNet, oct.Add(-24*time.Hour),
		[]billing.PlanLine{{PartyID: maker.ID, BasisPoints: 5500}, {PartyID: pat.ID, BasisPoints: 2000}, {PartyID: dist.ID, BasisPoints: 2500}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var refundable int64
	for i := 0; i < 9; i++ {
		id, err := billing.PostPayment(ctx, db, billing.Payment{Gross: int64(700 + 333*i), Fee: int64(30 + 11*i), Currency: "USD",
			OccurredAt: oct.Add(time.Duration(i*61) * time.Hour), Source: []string{billing.SourceDonations, billing.SourceSponsorship}[i%2],
			IdempotencyKey: fmt.Sprintf("payment:%d", i)}, plan)
		if err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			refundable = id
		}
	}
	if _, err := billing.PostReversal(ctx, db, billing.Reversal{EntryID: refundable, Kind: billing.EntryRefund, Amount: 500,
		OccurredAt: oct.AddDate(0, 0, 20), IdempotencyKey: "refund:1"}); err != nil {
		t.Fatal(err)
	}

	bctx := newBrowser(t, 1280, 900)
	downloads := t.TempDir()
	progress := chromedp.Events(bctx, browser.DownloadProgress)
	err = chromedp.Do(bctx,
		chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.ID("email"), "pat@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "partner password 123"),
		chromedp.Click(chromedp.CSS("form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("partner-statements")),
		chromedp.Click(chromedp.ID("partner-statements")),
		chromedp.WaitVisible(chromedp.ID("statement-parties")),
		chromedp.Navigate(fmt.Sprintf("%s/statements/%d?period=2026-10", base, pat.ID)),
		chromedp.WaitVisible(chromedp.ID("closing-USD")),
		// The Print button is shown by a script file (the policy allows no inline handler).
		chromedp.WaitVisible(chromedp.CSS("button[data-print]")),
	)
	if err != nil {
		t.Fatal(err)
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(s)
	}
	opening, closing, change := text("opening-USD"), text("closing-USD"), text("change-USD")
	sources, adjustments := text("sources-USD"), text("adjustments-USD")
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(90))
	if err == nil {
		os.WriteFile(filepath.Join(screenshotDir(t), "statement-1280.png"), shot, 0o644)
	}
	noOverflow(t, bctx, "statement page")
	if opening != "0.00" || closing == "0.00" || closing != change {
		t.Fatalf("page: opening %s, change %s, closing %s", opening, change, closing)
	}

	// Download the CSV with the page's link, as the partner would.
	if err := chromedp.Do(bctx,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: ptrTo(true)})
			return err
		}),
		chromedp.Click(chromedp.ID("csv")),
	); err != nil {
		t.Fatal(err)
	}
	var file string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			file = filepath.Join(downloads, ev.GUID)
			break
		}
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := billing.LookupCurrency("USD")
	sum := map[string]int64{}
	var csvOpening, csvClosing string
	for _, r := range records[1:] {
		switch r[3] {
		case "opening":
			csvOpening = r[13]
		case "closing":
			csvClosing = r[13]
		default:
			amount, err := cur.Parse(strings.TrimPrefix(r[12], "-"))
			if err != nil {
				t.Fatalf("CSV amount %q: %v", r[12], err)
			}
			if strings.HasPrefix(r[12], "-") {
				amount = -amount
			}
			sum[r[3]] += amount
			sum["all"] += amount
		}
	}
	if csvOpening != opening || csvClosing != closing {
		t.Errorf("CSV opening %s closing %s; page %s and %s", csvOpening, csvClosing, opening, closing)
	}
	for _, c := range []struct{ name, page string }{{"all", change}, {"payment", sources}, {"refund", adjustments}} {
		if got := cur.Format(sum[c.name]); got != c.page {
			t.Errorf("CSV %s amounts sum to %s, the page says %s", c.name, got, c.page)
		}
	}
	if n := len(records); n != 1+1+9+1+1 {
		t.Errorf("CSV has %d records, want header, opening, 9 payments, 1 refund, closing", n)
	}
	t.Logf("page and CSV agree: opening %s, received %s, refunds %s, closing %s (%s)", opening, sources, adjustments, closing,
		strconv.Itoa(len(records))+" records")

	// Pat asks to be paid only above 25.00 USD on the Get paid page; a typo is refused first.
	amount := chromedp.ID(fmt.Sprintf("amount-%d", pat.ID))
	submit := chromedp.CSS(fmt.Sprintf(`section[aria-labelledby="thresholds-%d"] form:last-of-type button[type=submit]`, pat.ID))
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/connect"),
		chromedp.WaitVisible(amount),
		chromedp.SendKeys(amount, "25,0O"),
		chromedp.Click(submit),
		chromedp.WaitVisible(chromedp.CSS(`p.error[role=alert]`)),
	); err != nil {
		t.Fatal(err)
	}
	if msg := cssText(t, bctx, chromedp.CSS(`p.error[role=alert]`)); !strings.HasPrefix(msg, "Threshold must be an amount") {
		t.Fatalf("refused threshold says %q", msg)
	}
	if err := chromedp.Do(bctx,
		chromedp.Clear(amount),
		chromedp.SendKeys(amount, "25"),
		chromedp.Click(submit),
		chromedp.WaitVisible(chromedp.CSS(`.flash, [role=status]`)),
	); err != nil {
		t.Fatal(err)
	}
	ths, err := billing.PayoutThresholds(ctx, db, pat.ID)
	if err != nil || len(ths) != 1 || ths[0] != (billing.PayoutThreshold{Currency: "USD", Amount: 2500, Own: true}) {
		t.Fatalf("Pat's thresholds after the form: %+v (%v), want USD 25.00 of Pat's own", ths, err)
	}
	if page := cssText(t, bctx, chromedp.CSS(`section[aria-labelledby="thresholds-`+strconv.FormatInt(pat.ID, 10)+`"] table`)); !strings.Contains(page, "25.00") {
		t.Fatalf("the thresholds table does not show 25.00:\n%s", page)
	}
	noOverflow(t, bctx, "get paid page")
}

// cssText is the trimmed text of the element sel finds.
func cssText(t *testing.T, ctx context.Context, sel chromedp.CSS) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(s)
}

func ptrTo[T any](v T) *T { return &v }
