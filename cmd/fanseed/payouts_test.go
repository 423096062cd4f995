package main

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestOfflineMoneyPath is `fanseed serve` without a Stripe key: a fan donates through the
// clearly marked test checkout, which posts a signed event to the real webhook endpoint; the
// payment is split into the ledger; the creator connects a (test) account and
// `fanseed payouts run` pays the creator once, however often it runs.
func TestOfflineMoneyPath(t *testing.T) {
	t.Parallel()
	env, smtpd := mailEnv(t)
	dbURL := env["DATABASE_URL"]
	base, _ := startServe(t, env)
	send := sender(t, base)
	creator := ninaWithShow(t, base, smtpd)

	fan := newClient()
	resp, body := send(fan, "GET", "/s/night-signals/donate", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "Test mode") || !strings.Contains(body, "10.00") {
		t.Fatalf("donate page: %d\n%s", resp.StatusCode, body)
	}
	// A custom amount above the maximum is refused, keeping what was typed.
	resp, body = send(fan, "POST", "/s/night-signals/donate", url.Values{"amount": {"custom"}, "custom": {"20000"},
		"frequency": {"once"}, "display_name": {"Fan One"}})
	if resp.StatusCode != 400 || !strings.Contains(body, "from 1.00 to 10000.00 USD") || !strings.Contains(body, `value="Fan One"`) {
		t.Fatalf("too large a donation: %d\n%s", resp.StatusCode, body)
	}
	resp, body = send(fan, "POST", "/s/night-signals/donate", url.Values{"amount": {"custom"}, "custom": {"20.00"},
		"frequency": {"once"}, "display_name": {"Fan One"}, "message": {"Keep going"}, "email": {"fan.one@example.com"}})
	if !strings.HasPrefix(resp.Request.URL.Path, "/checkout/test/cs_test_fanseed_") || !strings.Contains(body, "TEST MODE") ||
		!strings.Contains(body, "0.88 USD") {
		t.Fatalf("not on the test checkout (test fee 2.9%% + 0.30 of 20.00 = 0.88): %s\n%s", resp.Request.URL, body)
	}
	resp, _ = send(fan, "POST", resp.Request.URL.Path, url.Values{"action": {"pay"}})
	thanks := resp.Request.URL.RequestURI()
	if !strings.HasPrefix(thanks, "/s/night-signals/donate/thanks") {
		t.Fatalf("after paying landed on %s", thanks)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body = send(fan, "GET", thanks, nil)
		if strings.Contains(body, "received") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("donation not received after 20s: %s", jobErrors(t, dbURL))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, body = send(fan, "GET", "/s/night-signals/donate", nil); !strings.Contains(body, "Fan One") || !strings.Contains(body, "Keep going") {
		t.Errorf("the donate page does not thank Fan One")
	}
	for _, state := range []string{"pending", "waiting", "alone"} {
		if v, ok := metricValue(t, base, `fanseed_stripe_events_unapplied{state="`+state+`"}`); !ok || v != 0 {
			t.Errorf("/metrics: %v (found %v) events %s, want 0", v, ok, state)
		}
	}

	// 20.00 less the 0.88 test fee is 19.12: 14.34 for Nina, 4.78 for the distributor.
	_, body = send(creator, "GET", "/connect", nil)
	m := regexp.MustCompile(`name="party" value="(\d+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no party to connect:\n%s", body)
	}
	if resp, _ = send(creator, "POST", "/connect", url.Values{"party": {m[1]}}); resp.StatusCode != 200 {
		t.Fatalf("connect: %d", resp.StatusCode)
	}
	// The donation was received this month: this month's payout pays it.
	period := time.Now().UTC().Format("2006-01")
	// The donor's receipt: amount, show, date.
	receipt := smtpd.Wait(t, "fan.one@example.com", "Your receipt: 20.00 USD to Night Signals")
	for _, want := range []string{"Amount: 20.00 USD", "Show: Night Signals (" + base + "/s/night-signals)", "Date: " + time.Now().UTC().Format("2006-01-02")} {
		if !strings.Contains(receipt.Body, want) {
			t.Errorf("receipt lacks %q:\n%s", want, receipt.Body)
		}
	}
	for range 2 {
		var out bytes.Buffer
		err := run(context.Background(), []string{"fanseed", "payouts", "run", "--period", period},
			func(k string) string { return env[k] }, &out, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "Nina") || !strings.Contains(out.String(), "14.34 USD") ||
			!strings.Contains(out.String(), "transferred") || !strings.Contains(out.String(), "1 payouts for "+period) {
			t.Fatalf("payouts run printed:\n%s", out.String())
		}
	}
	// Nina is told of her payout once, however often the run ran.
	notice := smtpd.Wait(t, "nina@example.com", "Payout sent: 14.34 USD for "+period)
	if !strings.Contains(notice.Body, "/statements/") {
		t.Errorf("payout notice:\n%s", notice.Body)
	}
	time.Sleep(200 * time.Millisecond)
	n := 0
	for _, m := range smtpd.Messages() {
		if strings.HasPrefix(m.Subject, "Payout sent") || strings.HasPrefix(m.Subject, "Your receipt") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d receipts and payout notices, want one of each", n)
	}

	// A monthly donation needs an address; its receipt links to a page that cancels it.
	resp, body = send(fan, "POST", "/s/night-signals/donate", url.Values{"amount": {"500"}, "frequency": {"monthly"}})
	if resp.StatusCode != 400 || !strings.Contains(body, "Email is required for a monthly donation") {
		t.Fatalf("monthly without an address: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = send(fan, "POST", "/s/night-signals/donate", url.Values{"amount": {"500"}, "frequency": {"monthly"}, "email": {"monthly@example.com"}})
	if !strings.HasPrefix(resp.Request.URL.Path, "/checkout/test/") {
		t.Fatalf("monthly donation not on the test checkout: %s", resp.Request.URL)
	}
	send(fan, "POST", resp.Request.URL.Path, url.Values{"action": {"pay"}})
	monthly := smtpd.Wait(t, "monthly@example.com", "Your receipt: 5.00 USD to Night Signals")
	manage := ""
	for _, l := range monthly.Links() {
		if strings.HasPrefix(l, base+"/donations/manage?token=") {
			manage = l
		}
	}
	if manage == "" || !strings.Contains(monthly.Body, "monthly donation") {
		t.Fatalf("monthly receipt without a management link:\n%s", monthly.Body)
	}
	resp, body = send(newClient(), "GET", strings.TrimPrefix(manage, base), nil)
	token := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(body)
	if resp.StatusCode != 200 || token == nil || !strings.Contains(body, "5.00 USD") {
		t.Fatalf("management page: %d\n%s", resp.StatusCode, body)
	}
	// Changing the amount: a bad one is refused on the page; a good one goes to the test checkout
	// as a new monthly donation, which replaces the old once it is paid.
	resp, body = send(newClient(), "POST", "/donations/manage", url.Values{"token": {token[1]}, "action": {"change"}, "amount": {"7.505"}})
	if resp.StatusCode != 400 || !strings.Contains(body, "Amount must be a number such as") {
		t.Fatalf("changing to 7.505: %d\n%s", resp.StatusCode, body)
	}
	changer := newClient()
	resp, _ = send(changer, "POST", "/donations/manage", url.Values{"token": {token[1]}, "action": {"change"}, "amount": {"7.50"}})
	if !strings.HasPrefix(resp.Request.URL.Path, "/checkout/test/") {
		t.Fatalf("changing the amount did not lead to the test checkout: %s", resp.Request.URL)
	}
	if _, body = send(newClient(), "GET", strings.TrimPrefix(manage, base), nil); !strings.Contains(body, "<strong>paid</strong>") {
		t.Fatalf("the old donation ended before the new one was paid:\n%s", body)
	}
	send(changer, "POST", resp.Request.URL.Path, url.Values{"action": {"pay"}})
	changed := smtpd.Wait(t, "monthly@example.com", "Your receipt: 7.50 USD to Night Signals")
	if _, body = send(newClient(), "GET", strings.TrimPrefix(manage, base), nil); !strings.Contains(body, "<strong>cancelled</strong>") {
		t.Fatalf("the old donation is not cancelled once the new amount is paid:\n%s", body)
	}
	manage = ""
	for _, l := range changed.Links() {
		if strings.HasPrefix(l, base+"/donations/manage?token=") {
			manage = l
		}
	}
	resp, body = send(newClient(), "GET", strings.TrimPrefix(manage, base), nil)
	token = regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(body)
	if resp.StatusCode != 200 || token == nil || !strings.Contains(body, "7.50 USD") {
		t.Fatalf("the new donation's management page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = send(newClient(), "POST", "/donations/manage", url.Values{"token": {token[1]}, "action": {"cancel"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "Your monthly donation is cancelled.") || !strings.Contains(body, "<strong>cancelled</strong>") {
		t.Fatalf("cancelling: %d\n%s", resp.StatusCode, body)
	}
	if _, body = send(newClient(), "GET", "/donations/manage?token=wrong", nil); !strings.Contains(body, "Link expired") {
		t.Errorf("a wrong management link:\n%s", body)
	}

	if err := run(context.Background(), []string{"fanseed", "payouts", "run", "--period", "November"},
		func(k string) string { return env[k] }, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--period") {
		t.Fatalf("a bad period: %v", err)
	}
}

func TestStripeConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"STRIPE_SECRET_KEY": "pk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"}, "STRIPE_SECRET_KEY: must start with sk_"},
		{map[string]string{"STRIPE_SECRET_KEY": "sk_test_x"}, "STRIPE_WEBHOOK_SECRET: is required"},
		{map[string]string{"STRIPE_API_BASE": "localhost:12111"}, "STRIPE_API_BASE:"},
		{map[string]string{"EVENT_WORKERS": "0"}, "EVENT_WORKERS:"},
	}
	for _, tt := range tests {
		tt.env["DATABASE_URL"] = "postgres://x/y"
		err := run(context.Background(), []string{"fanseed", "serve"}, func(k string) string { return tt.env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: error %v, want one containing %q", tt.env, err, tt.want)
		}
	}
}

// jobErrors describes the River jobs of a database, for failure messages.
func jobErrors(t *testing.T, dbURL string) string {
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		return err.Error()
	}
	defer conn.Close(context.Background())
	var out string
	conn.QueryRow(context.Background(), `SELECT coalesce(string_agg(kind || ' ' || state || ' ' || errors::text, E'\n'), 'no jobs')
		FROM river_job`).Scan(&out)
	return out
}
