package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/billing/stripetest"
	"github.com/fanseed/fanseed/catalog"
)

// donationShow makes a USD show with a share plan, so it takes donations.
func donationShow(t *testing.T, ts *testServer, slug string) catalog.Show {
	t.Helper()
	ctx := context.Background()
	owner := ts.newUser(t, slug+"@example.com", catalog.RoleCreator)
	show, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: slug, Title: "Night Signals", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	dist, _ := billing.DistributorParty(ctx, ts.db)
	creator, _ := billing.EnsureParty(ctx, ts.db, billing.PartyCreator, "Maker", slug+"@example.com", &owner.ID)
	if _, err := billing.CreatePlan(ctx, ts.db, show.ID, billing.SourceAll, billing.FeePolicyNet, time.Now().Add(-time.Hour),
		[]billing.PlanLine{{PartyID: dist.ID, BasisPoints: 2500}, {PartyID: creator.ID, BasisPoints: 7500}}, nil); err != nil {
		t.Fatal(err)
	}
	return show
}

func jarClient(t *testing.T, follow bool) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

func getBody(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", u, resp.StatusCode)
	}
	return string(b)
}

// checkThanksPage checks that the thank-you address names the donation by its token, that the
// donor's browser sees the amount there, and that nobody else does: not another browser with the
// same address, and not the donor's browser with the sequential id.
func checkThanksPage(t *testing.T, ts *testServer, donor *http.Client, thanks *url.URL, amount string) {
	t.Helper()
	var id int64
	var token string
	if err := ts.db.QueryRow(context.Background(), `SELECT id, thanks_token FROM donations ORDER BY id DESC LIMIT 1`).Scan(&id, &token); err != nil {
		t.Fatal(err)
	}
	if got := thanks.Query().Get("donation"); got != token || len(token) < 32 {
		t.Fatalf("thank-you address %s names donation %q, want its token %q", thanks, got, token)
	}
	page := ts.URL + thanks.RequestURI()
	if body := getBody(t, donor, page); !strings.Contains(body, "Thank you!") || !strings.Contains(body, amount) {
		t.Errorf("the donor's browser does not see %s on its thank-you page:\n%s", amount, body)
	}
	if body := getBody(t, jarClient(t, true), page); !strings.Contains(body, "Thank you!") || strings.Contains(body, amount) {
		t.Errorf("another browser with the same address sees the amount:\n%s", body)
	}
	byID := ts.URL + thanks.Path + "?donation=" + strconv.FormatInt(id, 10)
	if body := getBody(t, donor, byID); strings.Contains(body, amount) {
		t.Errorf("the sequential id shows the amount:\n%s", body)
	}
	if body := getBody(t, jarClient(t, true), byID); strings.Contains(body, amount) {
		t.Errorf("the sequential id shows the amount to a stranger:\n%s", body)
	}
}

func TestDonateThanksOnlyForTheDonor(t *testing.T) {
	t.Parallel()
	t.Run("OfflineCheckout", func(t *testing.T) {
		t.Parallel()
		ts, _ := newMoneyServer(t)
		donationShow(t, ts, "offline-show")
		fan := jarClient(t, true)
		resp, err := fan.PostForm(ts.URL+"/s/offline-show/donate", url.Values{"amount": {"custom"}, "custom": {"37.00"}, "frequency": {"once"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.HasPrefix(resp.Request.URL.Path, "/checkout/test/") {
			t.Fatalf("donating landed on %s, want the test checkout", resp.Request.URL)
		}
		resp, err = fan.PostForm(resp.Request.URL.String(), url.Values{"action": {"pay"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Request.URL.Path != "/s/offline-show/donate/thanks" {
			t.Fatalf("paying landed on %s", resp.Request.URL)
		}
		checkThanksPage(t, ts, fan, resp.Request.URL, "37.00 USD")
	})
	t.Run("Stripe", func(t *testing.T) {
		t.Parallel()
		rec := &checkoutRecorder{}
		ts, _ := newMoneyServerWith(t, billing.NewStripe("sk_test_123", stripetest.URL(t), &http.Client{Transport: rec}))
		donationShow(t, ts, "stripe-show")
		fan := jarClient(t, false)
		resp, err := fan.PostForm(ts.URL+"/s/stripe-show/donate", url.Values{"amount": {"custom"}, "custom": {"41.00"}, "frequency": {"monthly"}, "email": {"fan@example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("donating: status %d, want a redirect to Stripe Checkout", resp.StatusCode)
		}
		success, err := url.Parse(rec.successURL())
		if err != nil || success.Host != strings.TrimPrefix(ts.URL, "http://") || success.Path != "/s/stripe-show/donate/thanks" {
			t.Fatalf("Checkout's success_url %q (%v), want this site's thank-you page", rec.successURL(), err)
		}
		checkThanksPage(t, ts, fan, success, "41.00 USD")
	})
}

// checkoutRecorder notes the success_url of the Checkout sessions created at Stripe.
type checkoutRecorder struct {
	mu      sync.Mutex
	success string
}

func (c *checkoutRecorder) successURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.success
}

func (c *checkoutRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.URL.Path == "/v1/checkout/sessions" {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		form, _ := url.ParseQuery(string(b))
		c.mu.Lock()
		c.success = form.Get("success_url")
		c.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}
