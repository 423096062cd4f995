package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

// `fanseed refund` offline: the refund goes through the charge.refunded event, stored and
// applied as the webhook's are, the ledger books it, and what is left is printed; more than is
// left is refused naming --amount.
func TestRefundCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.NewURL(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	owner, err := catalog.CreateAccount(ctx, pool, catalog.SignUp{Email: "ria@example.com", Name: "Ria", Password: "correct horse battery",
		Role: catalog.RoleCreator, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	show, err := catalog.CreateShow(ctx, pool, owner.ID, catalog.ShowInput{Slug: "cli-refunds", Title: "CLI Refunds", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	dist, err := billing.DistributorParty(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	creator, err := billing.EnsureParty(ctx, pool, billing.PartyCreator, "Ria", "ria@example.com", &owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := billing.CreatePlan(ctx, pool, show.ID, billing.SourceAll, billing.FeePolicyNet, time.Unix(0, 0),
		[]billing.PlanLine{{PartyID: dist.ID, BasisPoints: 2000}, {PartyID: creator.ID, BasisPoints: 8000}}, nil); err != nil {
		t.Fatal(err)
	}
	svc := &billing.Service{DB: pool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := billing.NewJobClient(svc, billing.JobOptions{}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour)
	md := map[string]string{billing.MetaKind: billing.KindDonation, billing.MetaShowID: strconv.FormatInt(show.ID, 10)}
	payload := billing.EventJSON("evt_cli_pay", "checkout.session.completed", at, billing.CheckoutSessionObject("cs_cli",
		billing.ChargeObject("ch_cli", 5000, 0, "USD", at), "", 5000, "USD", md), nil, "")
	h, err := billing.ParseEventHeader(payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.StoreEvent(ctx, h, payload); err != nil {
		t.Fatal(err)
	}
	if err := svc.ApplyEvent(ctx, h.ID); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{"DATABASE_URL": dbURL, "LOG_LEVEL": "error"}
	fanseed := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"fanseed", "refund"}, args...), func(k string) string { return env[k] }, &out, io.Discard)
		return out.String(), err
	}
	out, err := fanseed("--charge", "ch_cli", "--amount", "12.50", "--reason", "asked by mail")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"12.50 USD of ch_cli sent", "re_test_fanseed_", "booked: 12.50 USD refunded of 50.00 USD, 37.50 USD left"} {
		if !strings.Contains(out, want) {
			t.Errorf("refund printed %q, lacking %q", out, want)
		}
	}
	var owed int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(p.amount), 0) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
		WHERE a.party_id = $1`, creator.ID).Scan(&owed); err != nil {
		t.Fatal(err)
	}
	if owed != -3000 { // 80% of the 37.50 left, a credit balance
		t.Errorf("creator's balance %d after the refund, want -3000", owed)
	}
	if _, err := fanseed("--charge", "ch_cli", "--amount", "40"); err == nil ||
		!strings.Contains(err.Error(), "--amount: 40.00 USD is more than the 37.50 USD left to refund on ch_cli") {
		t.Fatalf("over-refund: %v", err)
	}
	if _, err := fanseed("--amount", "1"); err == nil || !strings.Contains(err.Error(), "--charge") {
		t.Fatalf("no charge: %v", err)
	}
	if out, err := fanseed("--charge", "ch_cli"); err != nil || !strings.Contains(out, "37.50 USD of ch_cli sent") ||
		!strings.Contains(out, "0.00 USD left") {
		t.Fatalf("refund of the rest: %q, %v", out, err)
	}
	if out, err := fanseed("list"); err != nil || !strings.Contains(out, "ch_cli") || !strings.Contains(out, "50.00 USD  50.00 USD") ||
		!strings.Contains(out, "1 payments") {
		t.Fatalf("refund list: %q, %v", out, err)
	}
}
