package billing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fanseed/fanseed/billing/stripetest"
)

// newService is a fixture with River's tables and a Service whose jobs are worked in the
// test; st is nil for offline test mode.
func newService(t *testing.T, st *Stripe) (fixture, *Service) {
	t.Helper()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := MigrateJobs(ctx, f.db); err != nil {
		t.Fatal(err)
	}
	svc := &Service{DB: f.db, Stripe: st, WebhookSecret: "whsec_test", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	jobs, err := NewJobClient(svc, JobOptions{Work: true})
	must(t, err)
	must(t, jobs.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		jobs.Stop(stopCtx)
	})
	return f, svc
}

// deliver stores an event as the webhook endpoint does and waits until it is applied (or
// parked waiting for another).
func deliver(t *testing.T, f fixture, svc *Service, payload []byte) {
	t.Helper()
	ev, err := ParseEventHeader(payload)
	must(t, err)
	_, err = svc.StoreEvent(context.Background(), ev, payload)
	must(t, err)
	waitIdle(t, f)
}

// waitIdle waits until no job is left to run, but those scheduled for later (a campaign's
// close at its deadline).
func waitIdle(t *testing.T, f fixture) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if count(t, f.db, `SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'discarded', 'cancelled')
			AND NOT (state = 'scheduled' AND scheduled_at > now() + interval '1 minute')`) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("jobs still running after 30s")
}

// When the event carries only the payment intent's id, the charge and its balance transaction
// are fetched from Stripe (stripe-mock here, whose fixture charge has a balance transaction of
// its own amount and fee), and that is what the ledger posts.
func TestPaymentFetchedFromStripe(t *testing.T) {
	t.Parallel()
	base := stripetest.URL(t)
	st := NewStripe("sk_test_123", base, nil)
	f, svc := newService(t, st)
	ctx := context.Background()
	createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, time.Unix(0, 0), lines([]int64{f.creator, f.distributor}, 7500, 2500))

	// What stripe-mock says, read here with a client of the test's own.
	want, err := st.chargeOfPaymentIntent(ctx, "pi_fetched")
	must(t, err)
	if want.BalanceTransaction == nil || want.BalanceTransaction.Amount <= 0 {
		t.Fatalf("stripe-mock charge has no balance transaction: %+v", want)
	}
	md := map[string]any{MetaKind: KindDonation, MetaShowID: strconv.FormatInt(f.show, 10)}
	sess := map[string]any{"id": "cs_fetch", "object": "checkout.session", "mode": "payment", "payment_status": "paid",
		"status": "complete", "payment_intent": "pi_fetched", "metadata": md}
	deliver(t, f, svc, EventJSON("evt_fetch", "checkout.session.completed", time.Now(), sess, nil, ""))

	cur := string(want.BalanceTransaction.Currency)
	got := balance(t, f.db, StripeClearing, upper(cur), 0)
	if got != want.BalanceTransaction.Amount {
		t.Fatalf("clearing = %d, want the balance transaction's %d", got, want.BalanceTransaction.Amount)
	}
	if n := count(t, f.db, `SELECT count(*) FROM journal_entries WHERE idempotency_key = $1`, "payment:"+want.ID); n != 1 {
		t.Fatalf("%d payment entries for %s", n, want.ID)
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// The Stripe client makes the requests stripe-mock accepts: Checkout in payment mode (submit
// type donate) and subscription mode, an Express account and its onboarding link.
func TestStripeClientAgainstMock(t *testing.T) {
	t.Parallel()
	st := NewStripe("sk_test_123", stripetest.URL(t), nil)
	ctx := context.Background()
	for _, monthly := range []bool{false, true} {
		id, url, err := st.CreateCheckout(ctx, Checkout{Monthly: monthly, Donate: !monthly, Amount: 1000, Currency: "USD",
			Name: "Donation", SuccessURL: "https://example.com/ok", CancelURL: "https://example.com/no", Reference: "donation-1",
			Metadata: map[string]string{MetaShowID: "1"}})
		if err != nil || id == "" || url == "" {
			t.Fatalf("checkout (monthly %v): %q %q %v", monthly, id, url, err)
		}
	}
	acct, err := st.CreateExpressAccount(ctx, "ann@example.com", 7)
	if err != nil || acct == "" {
		t.Fatalf("express account: %q %v", acct, err)
	}
	link, err := st.OnboardingLink(ctx, acct, "https://example.com/again", "https://example.com/back")
	if err != nil || link == "" {
		t.Fatalf("account link: %q %v", link, err)
	}
	// A request Stripe refuses (an unknown payment intent, on a server that is not Stripe) is an ErrStripe.
	down := NewStripe("sk_test_123", "http://127.0.0.1:1", nil)
	if _, err := down.chargeOfPaymentIntent(ctx, "pi_x"); !errors.Is(err, ErrStripe) {
		t.Fatalf("unreachable Stripe: %v", err)
	}
}

// recorder notes the Idempotency-Key of every transfer Stripe is asked to make, and counts
// the lists of transfers asked for.
type recorder struct {
	mu    sync.Mutex
	keys  []string
	lists int
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/v1/transfers" {
		r.mu.Lock()
		if req.Method == http.MethodPost {
			r.keys = append(r.keys, req.Header.Get("Idempotency-Key"))
		} else {
			r.lists++
		}
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// owedPayouts is a service whose Stripe calls go through transport (to stripe-mock), a payment
// of 100.00 split 60/15/25 with 4.00 of fees (creator 57.60, collaborator 14.40, distributor
// 24.00), and the creator and collaborator connected with payouts enabled.
func owedPayouts(t *testing.T, transport http.RoundTripper) (fixture, *Service) {
	t.Helper()
	st := NewStripe("sk_test_123", stripetest.URL(t), &http.Client{Transport: transport})
	f, svc := newService(t, st)
	plan := createPlan(t, f.db, f.show, SourceAll, FeePolicyNet, t0, lines([]int64{f.creator, f.collaborator, f.distributor}, 6000, 1500, 2500))
	pay(t, f, plan, "payment:ch_1", 10000, 400) // creator 5760, collaborator 1440, distributor 2400
	must(t, exec(f, `UPDATE parties SET stripe_account_id = 'acct_creator', payouts_enabled = true WHERE id = $1`, f.creator))
	must(t, exec(f, `UPDATE parties SET stripe_account_id = 'acct_collab', payouts_enabled = true WHERE id = $1`, f.collaborator))
	return f, svc
}

// A payout run that dies between Stripe's transfer and the database write is finished by the
// next run: the same idempotency key goes to Stripe again, and the party is paid (and posted)
// once.
func TestPayoutCrashRecovery(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f, svc := owedPayouts(t, rec)
	ctx := context.Background()
	must(t, SetPayoutThreshold(ctx, f.db, f.collaborator, "usd", ptr(int64(2000))))

	crash := errors.New("crash after the transfer")
	_, err := svc.RunPayouts(ctx, "2026-11", PayoutOptions{AfterTransfer: func(Payout, string) error { return crash }})
	if !errors.Is(err, crash) {
		t.Fatalf("run with a crash: %v", err)
	}
	// The payout was started before Stripe was called: the money is in transit, not owed.
	if got, transit := owed(t, f.db, f.creator, "USD"), balance(t, f.db, PayoutsInTransit, "USD", f.creator); got != 0 || transit != -5760 {
		t.Fatalf("after the crash the creator is owed %d with %d in transit, want 0 and 5760 in transit", got, -transit)
	}
	if got := balance(t, f.db, StripeClearing, "USD", 0); got != 10000 {
		t.Fatalf("after the crash clearing = %d, want 10000: the transfer is not recorded", got)
	}
	list, err := svc.RunPayouts(ctx, "2026-11", PayoutOptions{})
	must(t, err)
	if len(list) != 1 || list[0].PartyID != f.creator || list[0].Amount != 5760 || list[0].Status != "transferred" || list[0].StripeTransferID == nil {
		t.Fatalf("payouts = %+v, want one transferred payout of 5760 to the creator (the collaborator is under its threshold)", list)
	}
	want := "payout:" + strconv.FormatInt(list[0].ID, 10)
	if len(rec.keys) != 2 || rec.keys[0] != want || rec.keys[1] != want {
		t.Fatalf("transfer idempotency keys %q, want %q twice", rec.keys, want)
	}
	// Before the second attempt the run asked Stripe for the transfers of the period: a key
	// Stripe has forgotten must not pay twice.
	if rec.lists != 1 {
		t.Fatalf("%d lists of transfers asked for, want 1 before finishing the earlier run's payout", rec.lists)
	}
	if got := owed(t, f.db, f.creator, "USD"); got != 0 {
		t.Fatalf("after the payout the creator is owed %d", got)
	}
	if got, transit := balance(t, f.db, StripeClearing, "USD", 0), balance(t, f.db, PayoutsInTransit, "USD", f.creator); got != 10000-5760 || transit != 0 {
		t.Fatalf("clearing = %d, in transit %d; want %d and 0", got, transit, 10000-5760)
	}
	if totals, err := TotalsByCurrency(ctx, f.db); err != nil || len(totals) != 1 || totals[0].PaidOut != 5760 || totals[0].Gross != 10000 {
		t.Fatalf("admin totals %+v (%v), want 100.00 received and 57.60 paid out", totals, err)
	}
	// A third run pays nobody again.
	list, err = svc.RunPayouts(ctx, "2026-11", PayoutOptions{})
	must(t, err)
	if n := count(t, f.db, `SELECT count(*) FROM journal_entries WHERE kind = 'payout'`); len(list) != 1 || len(rec.keys) != 2 || n != 2 {
		t.Fatalf("third run: %d payouts, %d transfers, %d payout entries; want 1, 2 and 2 (started, transferred)", len(list), len(rec.keys), n)
	}

	// The transfer is reversed: the money is owed to the creator again, once however often
	// the event comes.
	tr := map[string]any{"id": *list[0].StripeTransferID, "object": "transfer", "amount": 5760, "amount_reversed": 5760,
		"currency": "usd", "reversed": true}
	ev := EventJSON("evt_rev", "transfer.reversed", time.Now(), tr, map[string]any{"amount_reversed": 0}, "")
	deliver(t, f, svc, ev)
	deliver(t, f, svc, EventJSON("evt_rev2", "transfer.reversed", time.Now(), tr, map[string]any{"amount_reversed": 0}, ""))
	if got := owed(t, f.db, f.creator, "USD"); got != 5760 {
		t.Fatalf("after the reversal the creator is owed %d, want 5760", got)
	}
	if n := count(t, f.db, `SELECT count(*) FROM payouts WHERE status = 'reversed'`); n != 1 {
		t.Fatalf("%d reversed payouts", n)
	}
	if totals, err := TotalsByCurrency(ctx, f.db); err != nil || len(totals) != 1 || totals[0].PaidOut != 0 {
		t.Fatalf("admin totals %+v (%v), want nothing paid out once the transfer was reversed", totals, err)
	}
}

func exec(f fixture, sql string, args ...any) error {
	_, err := f.db.Exec(context.Background(), sql, args...)
	return err
}
