package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestFanManagesMonthlyFromFanPage is a monthly donor without their receipt: on the fan page
// they type their address and are emailed, through the outbox and SMTP, a link to each of
// their monthly donations to the show; the link opens the management page, which cancels the
// donation. The page answers the same for an address that gives nothing, which gets no email,
// and one address asking too often is turned away.
func TestFanManagesMonthlyFromFanPage(t *testing.T) {
	t.Parallel()
	env, smtpd := mailEnv(t)
	base, _ := startServe(t, env)
	send := sender(t, base)
	ninaWithShow(t, base, smtpd)
	fan := newClient()
	resp, _ := send(fan, "POST", "/s/night-signals/donate", url.Values{"amount": {"500"}, "frequency": {"monthly"}, "email": {"monthly@example.com"}})
	if !strings.HasPrefix(resp.Request.URL.Path, "/checkout/test/") {
		t.Fatalf("monthly donation not on the test checkout: %s", resp.Request.URL)
	}
	send(fan, "POST", resp.Request.URL.Path, url.Values{"action": {"pay"}})
	receipt := smtpd.Wait(t, "monthly@example.com", "Your receipt: 5.00 USD to Night Signals")

	// The fan page carries the form; the donate page links to its own page.
	if _, body := send(newClient(), "GET", "/s/night-signals", nil); !strings.Contains(body, `action="/s/night-signals/manage"`) {
		t.Fatal("the fan page has no form to ask for management links")
	}
	if _, body := send(newClient(), "GET", "/s/night-signals/donate", nil); !strings.Contains(body, `href="/s/night-signals/manage"`) {
		t.Error("the donate page does not link to managing a monthly donation")
	}
	visitor := newClient() // one address, as a donor and a prober are to the server here
	resp, body := send(visitor, "POST", "/s/night-signals/manage", url.Values{"email": {"not an address"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="manage-email"`) || !strings.Contains(body, `class="error"`) {
		t.Fatalf("a malformed address: status %d\n%s", resp.StatusCode, body)
	}
	resp, known := send(visitor, "POST", "/s/night-signals/manage", url.Values{"email": {"Monthly@Example.com"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(known, "Check your email") {
		t.Fatalf("asking for links: status %d\n%s", resp.StatusCode, known)
	}
	resp, unknown := send(visitor, "POST", "/s/night-signals/manage", url.Values{"email": {"nobody@example.com"}})
	if resp.StatusCode != http.StatusOK || strings.ReplaceAll(unknown, "nobody@example.com", "X") != strings.ReplaceAll(known, "Monthly@Example.com", "X") {
		t.Errorf("the page tells an address that gives monthly from one that does not:\n%s\n---\n%s", known, unknown)
	}
	m := smtpd.Wait(t, "monthly@example.com", "Manage your monthly donation to Night Signals")
	var links []string
	for _, l := range m.Links() {
		if strings.HasPrefix(l, base+"/donations/manage?token=") {
			links = append(links, l)
		}
	}
	if len(links) != 1 || !strings.Contains(m.Body, "5.00 USD a month") {
		t.Fatalf("want one management link for the 5.00 USD donation:\n%s", m.Body)
	}
	resp, body = send(newClient(), "GET", strings.TrimPrefix(links[0], base), nil)
	token := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || token == nil || !strings.Contains(body, "5.00 USD") || !strings.Contains(body, "<strong>paid</strong>") {
		t.Fatalf("the emailed link's page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = send(newClient(), "POST", "/donations/manage", url.Values{"token": {token[1]}, "action": {"cancel"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Your monthly donation is cancelled.") || !strings.Contains(body, "<strong>cancelled</strong>") {
		t.Fatalf("cancelling from the emailed link: %d\n%s", resp.StatusCode, body)
	}
	// The receipt's own link still opens the donation, now cancelled.
	for _, l := range receipt.Links() {
		if strings.HasPrefix(l, base+"/donations/manage?token=") {
			if _, body := send(newClient(), "GET", strings.TrimPrefix(l, base), nil); !strings.Contains(body, "<strong>cancelled</strong>") {
				t.Errorf("the receipt's link after cancelling:\n%s", body)
			}
		}
	}

	// Asking again soon sends nothing more; an address that gives nothing got nothing.
	send(visitor, "POST", "/s/night-signals/manage", url.Values{"email": {"monthly@example.com"}})
	time.Sleep(300 * time.Millisecond)
	for _, msg := range smtpd.Messages() {
		if strings.EqualFold(msg.To, "nobody@example.com") {
			t.Errorf("an address with no donation was emailed %q", msg.Subject)
		}
		if strings.HasPrefix(msg.Subject, "Manage your monthly donation") && msg.Body != m.Body {
			t.Errorf("a second message of links went out within %s:\n%s", "the window", msg.Body)
		}
	}
	// The same address asking again and again is turned away, whatever address it types.
	limited := false
	for i := range 10 {
		resp, body = send(visitor, "POST", "/s/night-signals/manage", url.Values{"email": {"probe" + string(rune('a'+i)) + "@example.com"}})
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = strings.Contains(body, "Too many requests")
			break
		}
	}
	if !limited {
		t.Error("ten more requests from one address in a row were all answered")
	}
	if resp, _ := send(newClient(), "GET", "/s/night-signals/manage", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("the form's own page: status %d", resp.StatusCode)
	}
}
