package billing

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing/stripetest"
)

// stripeFront answers some transfer requests itself, as Stripe would, and passes the rest to
// stripe-mock: refuse names destinations whose transfers Stripe declines, fail makes Stripe
// answer 500 (the outcome unknown), and made is the list of transfers Stripe says exist.
type stripeFront struct {
	mu     sync.Mutex
	refuse map[string]bool
	fail   bool
	made   string // JSON of the data of GET /v1/transfers, "" to ask stripe-mock
	posts  []url.Values
}

func (f *stripeFront) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/v1/transfers" {
		f.mu.Lock()
		defer f.mu.Unlock()
		if req.Method == http.MethodPost {
			body, _ := io.ReadAll(req.Body)
			form, _ := url.ParseQuery(string(body))
			f.posts = append(f.posts, form)
			req.Body = io.NopCloser(bytes.NewReader(body))
			switch {
			case f.refuse[form.Get("destination")]:
				return stripeAnswer(req, http.StatusBadRequest, `{"error": {"type": "invalid_request_error", "code": "balance_insufficient",
					"message": "You have insufficient available funds in your Stripe account."}}`), nil
			case f.fail:
				return stripeAnswer(req, http.StatusInternalServerError, `{"error": {"type": "api_error", "message": "An unknown error occurred"}}`), nil
			}
		} else if f.made != "" {
			return stripeAnswer(req, http.StatusOK, `{"object": "list", "url": "/v1/transfers", "has_more": false, "data": [`+f.made+`]}`), nil
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

func stripeAnswer(req *http.Request, status int, body string) *http.Response {
	h := http.Header{"Content-Type": {"application/json"}, "Stripe-Should-Retry": {"false"}}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: req}
}

func (f *stripeFront) postCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.posts)
}

// When Stripe refuses one party's transfer, that payout is marked refused with Stripe's
// message, its money is owed to the party again, the run pays the others, and the next run
// pays the refused one with a payout of its own.
func TestRefusedTransferStrandsNoPayout(t *testing.T) {
	t.Parallel()
	front := &stripeFront{refuse: map[string]bool{"acct_creator": true}}
	f, svc := owedPayouts(t, front)
	ctx := context.Background()

	list, err := svc.RunPayouts(ctx, "2026-11", PayoutOptions{})
	must(t, err)
	status := map[int64]Payout{}
	for _, p := range list {
		status[p.PartyID] = p
	}
	if p := status[f.creator]; p.Status != "refused" || !strings.Contains(p.Failure, "insufficient available funds") {
		t.Fatalf("creator's payout %+v, want refused with Stripe's message", p)
	}
	if p := status[f.collaborator]; p.Status != "transferred" || p.Amount != 1440 {
		t.Fatalf("collaborator's payout %+v, want 14.40 transferred despite the other's refusal", p)
	}
	if got, transit := owed(t, f.db, f.creator, "USD"), balance(t, f.db, PayoutsInTransit, "USD", f.creator); got != 5760 || transit != 0 {
		t.Fatalf("after the refusal the creator is owed %d with %d in transit, want 5760 owed and none in transit", got, -transit)
	}

	front.mu.Lock()
	front.refuse = nil
	front.mu.Unlock()
	list, err = svc.RunPayouts(ctx, "2026-11", PayoutOptions{})
	must(t, err)
	var refused, paid int
	for _, p := range list {
		if p.PartyID == f.creator && p.Status == "refused" {
			refused++
		}
		if p.PartyID == f.creator && p.Status == "transferred" && p.Amount == 5760 {
			paid++
		}
	}
	if refused != 1 || paid != 1 {
		t.Fatalf("after the next run: %+v, want the refused payout and a new one of 57.60 transferred", list)
	}
	if got := owed(t, f.db, f.creator, "USD"); got != 0 {
		t.Fatalf("after the retry the creator is owed %d", got)
	}
}

// A payout left pending by a run whose transfer had an unknown outcome is finished by the next
// run without a second transfer when Stripe lists the one made for it, whatever became of the
// idempotency key.
func TestPendingPayoutFoundAtStripe(t *testing.T) {
	t.Parallel()
	front := &stripeFront{fail: true}
	st := NewStripe("sk_test_123", stripetest.URL(t), &http.Client{Transport: front})
	f, svc := newService(t, st)
	ctx := context.Background()
	plan := createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, t0, lines([]int64{f.creator, f.distributor}, 7500, 2500))
	pay(t, f, plan, "payment:ch_1", 10000, 400)
	must(t, exec(f, `UPDATE parties SET stripe_account_id = 'acct_creator', payouts_enabled = true WHERE id = $1`, f.creator))

	if _, err := svc.RunPayouts(ctx, "2026-11", PayoutOptions{}); !errors.Is(err, ErrStripe) {
		t.Fatalf("run while Stripe fails: %v, want ErrStripe", err)
	}
	var id int64
	must(t, f.db.QueryRow(ctx, `SELECT id FROM payouts WHERE status = 'pending'`).Scan(&id))
	posts := front.postCount()
	front.mu.Lock()
	front.fail = false
	front.made = `{"id": "tr_made", "object": "transfer", "amount": 7200, "currency": "usd", "destination": "acct_old",
		"transfer_group": "payouts-2026-11", "metadata": {"fanseed_payout_id": "` + strconv.FormatInt(id, 10) + `"}}`
	front.mu.Unlock()
	// The party's account changed meanwhile: the idempotency key would not recognise it.
	must(t, exec(f, `UPDATE parties SET stripe_account_id = 'acct_new' WHERE id = $1`, f.creator))
	list, err := svc.RunPayouts(ctx, "2026-11", PayoutOptions{})
	must(t, err)
	if len(list) != 1 || list[0].Status != "transferred" || list[0].StripeTransferID == nil || *list[0].StripeTransferID != "tr_made" {
		t.Fatalf("payouts %+v, want the pending one settled by the transfer Stripe lists", list)
	}
	if got := front.postCount(); got != posts {
		t.Fatalf("%d more transfers asked of Stripe, want none", got-posts)
	}
}

// Three-decimal currencies are paid out in whole multiples of 10 minor units, as Stripe
// requires; the rest stays owed.
func TestThreeDecimalPayout(t *testing.T) {
	t.Parallel()
	f, svc := newService(t, nil)
	ctx := context.Background()
	plan := createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, t0, lines([]int64{f.creator, f.distributor}, 7500, 2500))
	_, err := PostPayment(ctx, f.db, Payment{Gross: 20_000, Fee: 1_541, Currency: "KWD", OccurredAt: t0.Add(time.Hour),
		Source: SourceDonations, IdempotencyKey: "payment:ch_kwd"}, plan)
	must(t, err)
	owedBefore := owed(t, f.db, f.creator, "KWD") // 75% of 18.459: 13.844 (largest remainder)
	must(t, exec(f, `UPDATE parties SET stripe_account_id = 'acct_creator', payouts_enabled = true WHERE id = $1`, f.creator))
	list, err := svc.RunPayouts(ctx, "2026-11", PayoutOptions{})
	must(t, err)
	if len(list) != 1 || list[0].Amount%10 != 0 || list[0].Amount != owedBefore-owedBefore%10 {
		t.Fatalf("payouts %+v of %d owed, want one of %d", list, owedBefore, owedBefore-owedBefore%10)
	}
	if got := owed(t, f.db, f.creator, "KWD"); got != owedBefore%10 || got == 0 {
		t.Fatalf("left owed %d, want %d", got, owedBefore%10)
	}
	if _, err := CreateDonation(ctx, f.db, DonationInput{ShowID: f.show, Amount: 5_005, Currency: "KWD"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a KWD donation of 5.005: %v, want ErrInvalid", err)
	}
}
