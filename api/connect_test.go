package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// A party sets its payout threshold per currency on the Get paid page: a bad amount or
// currency is refused with a message naming the field and nothing changes; the default comes
// back on request; another account's party is not found.
func TestPayoutThresholdForm(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	ann := ts.newUser(t, "ann@example.com", catalog.RoleCreator)
	bob := ts.newUser(t, "bob@example.com", catalog.RoleCreator)
	party, err := billing.EnsureParty(ctx, ts.db, billing.PartyCreator, "Ann", "ann@example.com", &ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(party.ID, 10)
	set := func(u *user, form url.Values) (int, string) {
		t.Helper()
		form.Set("party", id)
		resp := ts.do(t, u, http.MethodPost, "/connect/threshold", form)
		defer resp.Body.Close()
		return resp.StatusCode, readBody(t, resp)
	}
	thresholds := func() []billing.PayoutThreshold {
		t.Helper()
		ths, err := billing.PayoutThresholds(ctx, ts.db, party.ID)
		if err != nil {
			t.Fatal(err)
		}
		return ths
	}

	if status, _ := set(&ann, url.Values{"currency": {"eur"}, "amount": {"25.50"}}); status != http.StatusSeeOther {
		t.Fatalf("setting 25.50 EUR answered %d", status)
	}
	if got := thresholds(); len(got) != 1 || got[0] != (billing.PayoutThreshold{Currency: "EUR", Amount: 2550, Own: true}) {
		t.Fatalf("thresholds %+v, want EUR 2550 of its own", got)
	}
	page := readBody(t, ts.do(t, &ann, http.MethodGet, "/connect?threshold=EUR", nil))
	if !strings.Contains(page, "Payout threshold saved.") || !strings.Contains(page, "25.50") || !strings.Contains(page, "Use the default") {
		t.Fatalf("the page does not show the saved threshold:\n%s", page)
	}
	for _, c := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"currency": {"EUR"}, "amount": {"lots"}}, "Threshold must be an amount from 0 to"},
		{url.Values{"currency": {"EUR"}, "amount": {"-5"}}, "Threshold must be an amount from 0 to"},
		{url.Values{"currency": {"EUR"}, "amount": {"99999999"}}, "Threshold must be an amount from 0 to"},
		{url.Values{"currency": {"XYZ"}, "amount": {"5"}}, "Currency: choose one from the list."},
	} {
		status, body := set(&ann, c.form)
		if status != http.StatusBadRequest || !strings.Contains(body, c.want) || !strings.Contains(body, `value="`+c.form.Get("amount")+`"`) {
			t.Fatalf("%v answered %d; want 400 with %q and the amount kept:\n%s", c.form, status, c.want, body)
		}
	}
	if status, _ := set(&bob, url.Values{"currency": {"EUR"}, "amount": {"1"}}); status != http.StatusNotFound {
		t.Fatalf("another account's party answered %d, want 404", status)
	}
	if got := thresholds(); len(got) != 1 || got[0].Amount != 2550 {
		t.Fatalf("refused forms changed the thresholds: %+v", got)
	}
	if status, _ := set(&ann, url.Values{"currency": {"EUR"}, "default": {"1"}}); status != http.StatusSeeOther {
		t.Fatalf("going back to the default answered %d", status)
	}
	if got := thresholds(); len(got) != 0 {
		t.Fatalf("after going back to the default: %+v, want none of its own", got)
	}
}
